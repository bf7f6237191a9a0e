from tortoise import migrations
from tortoise.migrations import operations as ops


async def create_open_delivery_index(apps, schema_editor):
    """A partial index over the deliveries still to send, so a claim never walks the finished ones (kept for
    a month as a record of what happened). SQLite and PostgreSQL both support partial indexes."""
    await schema_editor.client.execute_script(
        "CREATE INDEX delivery_open ON delivery (next_attempt_at, id) WHERE state IN ('pending', 'delivering');"
    )


class Migration(migrations.Migration):
    dependencies = [('models', '0004_search')]

    initial = False

    operations = [
        ops.RunPython(create_open_delivery_index),
    ]
