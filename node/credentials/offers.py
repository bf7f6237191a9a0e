"""Credentials waiting for a learner's wallet: offers (OpenID4VCI) and exchanges (VC-API), kept in the database.

Why the database: several workers serve one node, and a wallet's requests may reach any of them, so every code,
token, nonce and attempt count lives in a row; a worker killed mid-flow loses nothing the wallet can still finish.
Every step that may happen only once (redeeming a code, consuming a nonce, issuing a format, completing an
exchange) is one conditional UPDATE or INSERT whose row count says who won. Secrets are kept only as SHA-256.
"""

from __future__ import annotations

import copy
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError

from node.credentials.datamodel import credential_version
from node.credentials.issuance import CredentialIssuer, CredentialRefused, check_request, is_open_badge
from node.errors import BadRequest
from node.store.models import WalletIssuance, WalletNonce, WalletOffer
from node.store.records import Store

DEFAULT_EXPIRES_IN = 3600
MIN_EXPIRES_IN = 60
MAX_EXPIRES_IN = 30 * 24 * 3600
TOKEN_SECONDS = 300
NONCE_SECONDS = 300
MAX_TX_FAILURES = 5
STALE_CLAIM = timedelta(seconds=60)  # a format claimed this long ago and still not issued: its worker died
PURGE_AFTER = timedelta(days=1)  # expired rows are kept a day for the status URL, then deleted
# A learner's wallet DID stands in for the subject while an offer's credential is checked: the real one comes
# from the wallet's key proof or DID authentication.
PLACEHOLDER_SUBJECT = "did:key:z6MkjuyH6MzowPAaVKARypyz5xKo6162Y6QEoM457rfKDx3R"


def secret_hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def handle() -> str:
    """A random, unguessable handle or secret (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def now_utc() -> datetime:
    return datetime.now(UTC)


def check_template(credential: Any, issuer_did: str) -> dict[str, Any]:
    """The credential of an offer, checked now as ``POST /credentials/issue`` would check it, so that a bad one is
    refused to the registrar rather than to the learner's wallet; its subject id is the wallet's, set later."""
    if not isinstance(credential, dict):
        raise BadRequest("credential must be a JSON object", field="credential")
    subject = credential.get("credentialSubject")
    if isinstance(subject, dict) and "id" in subject:
        raise BadRequest("credentialSubject.id is set by the wallet", field="credentialSubject.id",
                         detail="the learner's wallet key becomes the subject; leave the id out")
    # what the wallet metadata promises (protocol section 16.3): a VC 2.0 Open Badges credential
    if credential_version(credential) != 2 or not is_open_badge(credential):
        raise CredentialRefused("Wallets are offered VC 2.0 Open Badges credentials", field="type",
                                detail="type must include OpenBadgeCredential or AchievementCredential, first "
                                       "@context VC 2.0")
    check_request(bind_subject(credential, PLACEHOLDER_SUBJECT), issuer_did)
    return credential


def bind_subject(credential: dict[str, Any], subject_id: str) -> dict[str, Any]:
    """A copy of ``credential`` whose subject is ``subject_id`` (the wallet's DID)."""
    bound = copy.deepcopy(credential)
    subject = bound.get("credentialSubject")
    bound["credentialSubject"] = {"id": subject_id, **(subject if isinstance(subject, dict) else {})}
    return bound


def expires_in(body: dict[str, Any]) -> int:
    value = body.get("expiresIn", DEFAULT_EXPIRES_IN)
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_EXPIRES_IN <= value <= MAX_EXPIRES_IN:
        raise BadRequest(f"expiresIn must be a whole number of seconds from {MIN_EXPIRES_IN} to {MAX_EXPIRES_IN}",
                         detail=str(value), field="expiresIn")
    return value


@dataclass(frozen=True)
class OfferState:
    """What the status URL tells: ``pending``, ``redeemed`` or ``expired``, and the credentials issued."""

    state: str
    expires_at: datetime
    credentials: list[dict[str, str]]
    reason: str | None = None


class Offers:
    """The table of offers and exchanges, behind methods that each do one atomic step."""

    def __init__(self, store: Store, issuer: CredentialIssuer) -> None:
        self.store = store
        self.issuer = issuer

    async def create(self, *, kind: str, credential: dict[str, Any], formats: list[str], seconds: int,
                     reference: str | None = None, code: str | None = None, tx_code: str | None = None,
                     challenge: str | None = None) -> WalletOffer:
        moment = now_utc()
        with self.store.bound():
            await self._purge(moment)
            return await WalletOffer.create(
                id=handle(), kind=kind, reference=secret_hash(reference) if reference else None,
                credential=json.dumps(credential, ensure_ascii=False), formats=",".join(formats),
                code_hash=secret_hash(code) if code else None, tx_code_hash=secret_hash(tx_code) if tx_code else None,
                challenge=challenge, expires_at=moment + timedelta(seconds=seconds), created_at=moment,
            )

    @staticmethod
    async def _purge(moment: datetime) -> None:
        """Forget offers a day after they expired and nonces once they expired: nothing grows without bound."""
        await WalletOffer.filter(expires_at__lt=moment - PURGE_AFTER).delete()
        await WalletNonce.filter(expires_at__lt=moment).delete()

    async def get(self, offer_id: str, kind: str) -> WalletOffer | None:
        with self.store.bound():
            return await WalletOffer.get_or_none(id=offer_id, kind=kind)

    async def by_reference(self, reference: str) -> WalletOffer | None:
        with self.store.bound():
            return await WalletOffer.get_or_none(reference=secret_hash(reference))

    async def by_code(self, code: str) -> WalletOffer | None:
        with self.store.bound():
            return await WalletOffer.get_or_none(code_hash=secret_hash(code))

    async def by_token(self, token: str) -> WalletOffer | None:
        with self.store.bound():
            return await WalletOffer.get_or_none(token_hash=secret_hash(token))

    async def state(self, offer: WalletOffer) -> OfferState:
        with self.store.bound():
            issued = await WalletIssuance.filter(offer_id=offer.id, credential_id__isnull=False).order_by("id")
        credentials = [{"format": row.format, "id": str(row.credential_id)} for row in issued]
        if credentials:
            return OfferState("redeemed", offer.expires_at, credentials)
        if offer.state == "dead":
            return OfferState("expired", offer.expires_at, [], "too many wrong transaction codes")
        if offer.expires_at <= now_utc():
            return OfferState("expired", offer.expires_at, [])
        return OfferState("pending", offer.expires_at, [])

    async def count_tx_failure(self, offer: WalletOffer) -> int:
        """One more wrong transaction code; the fifth kills the offer. Returns the failures so far."""
        with self.store.bound():
            row = await WalletOffer.get(id=offer.id)
            failures = row.tx_failures + 1
            # conditional on the count read, so that concurrent wrong guesses each count
            while not await WalletOffer.filter(id=offer.id, tx_failures=row.tx_failures).update(
                tx_failures=failures, **({"state": "dead"} if failures >= MAX_TX_FAILURES else {})
            ):
                row = await WalletOffer.get(id=offer.id)
                failures = row.tx_failures + 1
            return failures

    async def redeem_code(self, offer: WalletOffer, token: str) -> bool:
        """Trade the pre-authorized code for an access token, once: false when another request already did."""
        moment = now_utc()
        with self.store.bound():
            won = await WalletOffer.filter(
                id=offer.id, state="pending", token_hash__isnull=True, tx_failures__lt=MAX_TX_FAILURES,
                expires_at__gt=moment,
            ).update(token_hash=secret_hash(token), token_expires_at=moment + timedelta(seconds=TOKEN_SECONDS))
        return bool(won)

    async def new_nonce(self) -> str:
        value = handle()
        with self.store.bound():
            await WalletNonce.create(value=value, expires_at=now_utc() + timedelta(seconds=NONCE_SECONDS))
        return value

    async def consume_nonce(self, value: str) -> bool:
        """True once for a nonce this node handed out and that has not expired."""
        with self.store.bound():
            return bool(await WalletNonce.filter(value=value, expires_at__gt=now_utc()).delete())

    async def claim(self, offer: WalletOffer, fmt: str) -> WalletIssuance | None:
        """The right to issue ``fmt`` of ``offer``; None when it was issued (or is being issued) already."""
        with self.store.bound():
            for _ in range(2):
                try:
                    return await WalletIssuance.create(offer_id=offer.id, format=fmt, claimed_at=now_utc())
                except IntegrityError:
                    # a claim whose worker died before issuing is taken over; a live or finished one is not
                    if not await WalletIssuance.filter(offer_id=offer.id, format=fmt, credential_id__isnull=True,
                                                       claimed_at__lt=now_utc() - STALE_CLAIM).delete():
                        return None
        return None

    async def release(self, claim: WalletIssuance) -> None:
        """Give a claim back when issuing failed, so that the wallet may try again."""
        with self.store.bound():
            await WalletIssuance.filter(id=claim.id, credential_id__isnull=True).delete()

    async def issue(self, offer: WalletOffer, claim: WalletIssuance, subject_id: str) -> dict[str, Any]:
        """Issue the offer's credential to ``subject_id`` through the node's issuer and record its id."""
        try:
            credential = await self.issuer.issue(bind_subject(json.loads(offer.credential), subject_id))
        except BaseException:
            await self.release(claim)
            raise
        with self.store.bound():
            await WalletIssuance.filter(id=claim.id).update(credential_id=credential["id"])
            await WalletOffer.filter(id=offer.id).update(state="redeemed")
        return credential

    async def record_result(self, offer: WalletOffer, result: dict[str, Any]) -> bool:
        """Keep a presentation request's verdict, once and before the request expires."""
        with self.store.bound():
            return bool(await WalletOffer.filter(id=offer.id, state="pending", expires_at__gt=now_utc()).update(
                state="redeemed", result=json.dumps(result, ensure_ascii=False)))
