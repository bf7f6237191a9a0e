from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

async def fill_and_index(apps, schema_editor):
    """Copy each record's origin and modification time into its index row, then index what search sorts and
    filters by, so that a search reads only the narrow index rows, never the wide record rows of every match.
    The facets index covers every facet column: counting facets of thousands of matches reads only it."""
    await schema_editor.client.execute_script(
        "UPDATE record_index SET origin = (SELECT origin FROM record WHERE record.id = record_index.record_id),"
        " modified = (SELECT date_modified FROM record WHERE record.id = record_index.record_id);"
        "CREATE INDEX record_index_recent ON record_index (modified, record_id);"
        "CREATE INDEX record_index_origin ON record_index (origin);"
        "CREATE INDEX record_stored_at ON record (stored_at);"
        "CREATE INDEX record_index_facets ON record_index"
        " (record_id, type, level, language, license, free, mode, origin, modified);"
    )


class Migration(migrations.Migration):
    dependencies = [('models', '0005_delivery_claim_index')]

    initial = False

    operations = [
        ops.AddField(
            model_name='RecordIndex',
            name='modified',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='RecordIndex',
            name='origin',
            field=fields.CharField(default='', max_length=255),
        ),
        ops.RunPython(fill_and_index),
    ]
