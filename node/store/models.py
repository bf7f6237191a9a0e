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
