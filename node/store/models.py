"""Database tables of a node (tortoise-orm). The schema changes only through migrations in ``migrations/``."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Record(Model):
    """A signed record, own or mirrored, kept verbatim: ``document`` is exactly the JSON that was signed."""

    id = fields.BigIntField(primary_key=True)
    iri = fields.CharField(max_length=512, unique=True)
    local_id = fields.CharField(max_length=64, null=True, unique=True)  # set for this node's own records
    origin = fields.CharField(max_length=255, db_index=True)  # host[:port] of the record IRI
    type = fields.CharField(max_length=64)
    version = fields.IntField()
    date_modified = fields.DatetimeField()
    document = fields.TextField()
    deleted = fields.BooleanField(default=False)
    stored_at = fields.DatetimeField(auto_now=True)
    mirrored_from = fields.CharField(max_length=255, null=True)  # base URL of the peer that delivered it

    class Meta:
        table = "record"


class RecordIndex(Model):
    """Search fields of a live record, derived from its document and written in the same transaction."""

    record: fields.OneToOneRelation[Record] = fields.OneToOneField(
        "models.Record", related_name="index", on_delete=fields.CASCADE, primary_key=True
    )
    type = fields.CharField(max_length=64, db_index=True)
    name = fields.TextField()
    text = fields.TextField()
    language = fields.CharField(max_length=35, null=True)
    latitude = fields.FloatField(null=True)
    longitude = fields.FloatField(null=True)
    level = fields.CharField(max_length=64, null=True, db_index=True)
    license = fields.CharField(max_length=255, null=True, db_index=True)
    free = fields.BooleanField(null=True)
    mode = fields.CharField(max_length=64, null=True, db_index=True)
    tokens = fields.TextField(default="")  # search tokens, as node.catalog.tokens makes them; full-text indexed
    origin = fields.CharField(max_length=255, default="")  # copies of the record's columns, so that search
    modified = fields.DatetimeField(null=True)  # never reads the (wide) record rows of every match

    class Meta:
        table = "record_index"
        indexes = (("latitude", "longitude"),)


class RecordCategory(Model):
    """One category (SKOS concept IRI) of a live record."""

    id = fields.BigIntField(primary_key=True)
    record: fields.ForeignKeyRelation[Record] = fields.ForeignKeyField(
        "models.Record", related_name="categories", on_delete=fields.CASCADE
    )
    category = fields.CharField(max_length=512, db_index=True)

    class Meta:
        table = "record_category"
        unique_together = (("record", "category"),)


class Counter(Model):
    """Named sequence numbers: ``feed`` numbers the outbox, ``fanout`` marks how far it became deliveries."""

    # One-line docstrings only: tortoise turns them into SQL table comments.
    # ``feed`` is taken with a row lock inside the transaction that writes a record, so numbers commit in
    # order and a follower paging ``?after=N`` never skips one.

    name = fields.CharField(max_length=32, primary_key=True)
    value = fields.BigIntField(default=0)

    class Meta:
        table = "counter"


class Activity(Model):
    """The outbox: one Create / Update / Delete per change of an own record, in sequence order."""

    seq = fields.BigIntField(primary_key=True, generated=False)
    type = fields.CharField(max_length=16)
    object_iri = fields.CharField(max_length=512, db_index=True)
    object_version = fields.IntField()
    published = fields.DatetimeField()

    class Meta:
        table = "activity"


class Peer(Model):
    """Another node this one knows: discovered by gossip or added by an operator."""

    id = fields.BigIntField(primary_key=True)
    base_url = fields.CharField(max_length=255, unique=True)
    host = fields.CharField(max_length=255, unique=True)  # host[:port] of base_url: how requests name it
    actor_id = fields.CharField(max_length=512, null=True)
    inbox = fields.CharField(max_length=512, null=True)
    outbox = fields.CharField(max_length=512, null=True)
    name = fields.CharField(max_length=255, null=True)
    software = fields.CharField(max_length=64, null=True)
    state = fields.CharField(max_length=16, default="discovered")  # discovered|pending|following|refused|denied
    hops = fields.IntField(default=0)
    cursor = fields.BigIntField(default=0)  # last outbox sequence number applied
    remote_head = fields.BigIntField(default=0)  # highest sequence number seen at the peer
    last_sync = fields.DatetimeField(null=True)
    last_error = fields.TextField(null=True)
    refusals = fields.IntField(default=0)  # inbox requests from this peer that were refused
    discovered_at = fields.DatetimeField(auto_now_add=True)
    checked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "peer"


class Follower(Model):
    """An actor that follows this node: an EduFed node (gets records) or a fediverse account (gets notes)."""

    id = fields.BigIntField(primary_key=True)
    actor_id = fields.CharField(max_length=512, unique=True)
    inbox = fields.CharField(max_length=512)
    kind = fields.CharField(max_length=16)  # edufed | activitypub
    since = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "follower"


class Delivery(Model):
    """One activity to POST to one inbox, claimed by a worker with a lease."""

    # A worker that dies mid-delivery leaves its lease to expire, and another worker picks the row up.

    id = fields.BigIntField(primary_key=True)
    inbox = fields.CharField(max_length=512, db_index=True)
    activity_id = fields.CharField(max_length=512)
    body = fields.TextField()
    signature_scheme = fields.CharField(max_length=16)  # rfc9421 | cavage
    state = fields.CharField(max_length=12, default="pending", db_index=True)  # pending|delivering|done|failed
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(db_index=True)
    lease_until = fields.DatetimeField(null=True)
    last_status = fields.IntField(null=True)
    last_error = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "delivery"
        unique_together = (("inbox", "activity_id"),)


class SeenActivity(Model):
    """Activity ids received in the replay window: a second copy is refused."""

    activity_id = fields.CharField(max_length=512, primary_key=True)
    received_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "seen_activity"


class StatusList(Model):
    """One Bitstring Status List this node publishes (revocation or suspension), kept with its signed credential."""

    id = fields.CharField(max_length=64, primary_key=True)  # "{group}-{purpose}", e.g. "1-revocation"
    group = fields.IntField(db_index=True)  # lists of one group share the index of a credential
    purpose = fields.CharField(max_length=16)
    size = fields.IntField()
    bits = fields.BinaryField()  # uncompressed, bit 0 = left-most bit of the first byte
    credential = fields.TextField(null=True)  # the signed status list credential, re-signed on every change
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "status_list"


class IssuedCredential(Model):
    """A credential this node issued: learner data, never federated, never listed to anyone."""

    id = fields.CharField(max_length=255, primary_key=True)  # the credential id (urn:uuid:…)
    subject = fields.CharField(max_length=512, db_index=True)  # the learner's DID
    document = fields.TextField()
    status_group = fields.IntField()
    status_index = fields.IntField()
    revoked = fields.BooleanField(default=False)
    suspended = fields.BooleanField(default=False)
    issued_at = fields.DatetimeField()

    class Meta:
        table = "issued_credential"
        unique_together = (("status_group", "status_index"),)


class CachedDidDocument(Model):
    """The last DID document fetched for a DID: mirrored records still verify while their origin is down."""

    did = fields.CharField(max_length=255, primary_key=True)
    document = fields.TextField()
    fetched_at = fields.DatetimeField()

    class Meta:
        table = "did_document"


class WalletOffer(Model):
    """A credential waiting for a learner's wallet (OpenID4VCI offer or VC-API exchange): single-use, short-lived."""

    # Shared by every worker: codes, tokens and attempts live here, never in memory. Secrets (the
    # pre-authorized code, the transaction code, the access token) are kept only as SHA-256 hashes.

    id = fields.CharField(max_length=64, primary_key=True)  # random handle of the status / exchange URL
    kind = fields.CharField(max_length=16)  # openid4vci | exchange | presentation
    reference = fields.CharField(max_length=64, unique=True, null=True)  # SHA-256 of the credential_offer_uri handle
    credential = fields.TextField()  # the credential to issue (without subject id), or the presentation query
    formats = fields.CharField(max_length=128)  # the offered formats, comma-separated
    code_hash = fields.CharField(max_length=64, unique=True, null=True)  # pre-authorized code, or OpenID4VP state
    tx_code_hash = fields.CharField(max_length=64, null=True)
    tx_failures = fields.IntField(default=0)
    token_hash = fields.CharField(max_length=64, unique=True, null=True)
    token_expires_at = fields.DatetimeField(null=True)
    challenge = fields.CharField(max_length=64, null=True)  # an exchange's challenge, a presentation request's nonce
    result = fields.TextField(null=True)  # a presentation request's verdict, once the wallet answered
    state = fields.CharField(max_length=16, default="pending")  # pending | redeemed | dead
    expires_at = fields.DatetimeField(db_index=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "wallet_offer"


class WalletIssuance(Model):
    """One credential issued from an offer: each offered format is issued once."""

    id = fields.BigIntField(primary_key=True)
    offer: fields.ForeignKeyRelation[WalletOffer] = fields.ForeignKeyField(
        "models.WalletOffer", related_name="issuances", on_delete=fields.CASCADE
    )
    format = fields.CharField(max_length=32)
    credential_id = fields.CharField(max_length=255, null=True)  # null while it is being issued
    claimed_at = fields.DatetimeField()

    class Meta:
        table = "wallet_issuance"
        unique_together = (("offer", "format"),)


class WalletNonce(Model):
    """A c_nonce from the nonce endpoint, consumed by one key proof."""

    value = fields.CharField(max_length=64, primary_key=True)
    expires_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "wallet_nonce"
