from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_federation')]

    initial = False

    operations = [
        ops.CreateModel(
            name='IssuedCredential',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=255)),
                ('subject', fields.CharField(db_index=True, max_length=512)),
                ('document', fields.TextField(unique=False)),
                ('status_group', fields.IntField()),
                ('status_index', fields.IntField()),
                ('revoked', fields.BooleanField(default=False)),
                ('suspended', fields.BooleanField(default=False)),
                ('issued_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'issued_credential', 'app': 'models', 'unique_together': (('status_group', 'status_index'),), 'pk_attr': 'id', 'table_description': 'A credential this node issued: learner data, never federated, never listed to anyone.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StatusList',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('group', fields.IntField(db_index=True)),
                ('purpose', fields.CharField(max_length=16)),
                ('size', fields.IntField()),
                ('bits', fields.BinaryField()),
                ('credential', fields.TextField(null=True, unique=False)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'status_list', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One Bitstring Status List this node publishes (revocation or suspension), kept with its signed credential.'},
            bases=['Model'],
        ),
    ]
