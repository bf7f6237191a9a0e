from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

async def create_full_text_index(apps, schema_editor):
    """The full-text index over record_index.tokens: FTS5 on SQLite, a generated tsvector with GIN on PostgreSQL.

    The tokens are made by the node (node/catalog/tokens.py), so both databases index the same words.
    """
    client = schema_editor.client
    if client.capabilities.dialect == "sqlite":
        await client.execute_script(
            "CREATE VIRTUAL TABLE record_fts USING fts5(tokens, tokenize = 'unicode61 remove_diacritics 0');"
        )
    else:
        await client.execute_script(
            "ALTER TABLE record_index ADD COLUMN tsv tsvector "
            "GENERATED ALWAYS AS (to_tsvector('simple', tokens)) STORED;"
            "CREATE INDEX record_index_tsv ON record_index USING GIN (tsv);"
        )


class Migration(migrations.Migration):
    dependencies = [('models', '0003_credentials')]

    initial = False

    operations = [
        ops.AddField(
            model_name='RecordIndex',
            name='free',
            field=fields.BooleanField(null=True),
        ),
        ops.AddField(
            model_name='RecordIndex',
            name='level',
            field=fields.CharField(null=True, db_index=True, max_length=64),
        ),
        ops.AddField(
            model_name='RecordIndex',
            name='license',
            field=fields.CharField(null=True, db_index=True, max_length=255),
        ),
        ops.AddField(
            model_name='RecordIndex',
            name='mode',
            field=fields.CharField(null=True, db_index=True, max_length=64),
        ),
        ops.AddField(
            model_name='RecordIndex',
            name='tokens',
            field=fields.TextField(default='', unique=False),
        ),
        ops.RunPython(create_full_text_index),
    ]
