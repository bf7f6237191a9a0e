from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Activity',
            fields=[
                ('seq', fields.BigIntField(generated=False, primary_key=True, unique=True, db_index=True)),
                ('type', fields.CharField(max_length=16)),
                ('object_iri', fields.CharField(db_index=True, max_length=512)),
                ('object_version', fields.IntField()),
                ('published', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'activity', 'app': 'models', 'pk_attr': 'seq', 'table_description': 'The outbox: one Create / Update / Delete per change of an own record, in sequence order.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CachedDidDocument',
            fields=[
                ('did', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=255)),
                ('document', fields.TextField(unique=False)),
                ('fetched_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'did_document', 'app': 'models', 'pk_attr': 'did', 'table_description': 'The last DID document fetched for a DID: mirrored records still verify while their origin is down.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Counter',
            fields=[
                ('name', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('value', fields.BigIntField(default=0)),
            ],
            options={'table': 'counter', 'app': 'models', 'pk_attr': 'name', 'table_description': 'Named sequence numbers: ``feed`` numbers the outbox, ``fanout`` marks how far it became deliveries.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Delivery',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('inbox', fields.CharField(db_index=True, max_length=512)),
                ('activity_id', fields.CharField(max_length=512)),
                ('body', fields.TextField(unique=False)),
                ('signature_scheme', fields.CharField(max_length=16)),
                ('state', fields.CharField(default='pending', db_index=True, max_length=12)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_status', fields.IntField(null=True)),
                ('last_error', fields.TextField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'delivery', 'app': 'models', 'unique_together': (('inbox', 'activity_id'),), 'pk_attr': 'id', 'table_description': 'One activity to POST to one inbox, claimed by a worker with a lease.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Follower',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('actor_id', fields.CharField(unique=True, max_length=512)),
                ('inbox', fields.CharField(max_length=512)),
                ('kind', fields.CharField(max_length=16)),
                ('since', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'follower', 'app': 'models', 'pk_attr': 'id', 'table_description': 'An actor that follows this node: an EduFed node (gets records) or a fediverse account (gets notes).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Peer',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('base_url', fields.CharField(unique=True, max_length=255)),
                ('host', fields.CharField(unique=True, max_length=255)),
                ('actor_id', fields.CharField(null=True, max_length=512)),
                ('inbox', fields.CharField(null=True, max_length=512)),
                ('outbox', fields.CharField(null=True, max_length=512)),
                ('name', fields.CharField(null=True, max_length=255)),
                ('software', fields.CharField(null=True, max_length=64)),
                ('state', fields.CharField(default='discovered', max_length=16)),
                ('hops', fields.IntField(default=0)),
                ('cursor', fields.BigIntField(default=0)),
                ('remote_head', fields.BigIntField(default=0)),
                ('last_sync', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_error', fields.TextField(null=True, unique=False)),
                ('refusals', fields.IntField(default=0)),
                ('discovered_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('checked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'peer', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Another node this one knows: discovered by gossip or added by an operator.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SeenActivity',
            fields=[
                ('activity_id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=512)),
                ('received_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'seen_activity', 'app': 'models', 'pk_attr': 'activity_id', 'table_description': 'Activity ids received in the replay window: a second copy is refused.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Record',
            name='mirrored_from',
            field=fields.CharField(null=True, max_length=255),
        ),
        ops.AlterModelOptions(
            name='RecordIndex',
            options={'table': 'record_index', 'app': 'models', 'indexes': [Index(fields=['latitude', 'longitude'])], 'pk_attr': 'record_id', 'table_description': 'Search fields of a live record, derived from its document and written in the same transaction.'},
        ),
    ]
