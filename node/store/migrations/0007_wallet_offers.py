from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.fields.base import OnDelete


class Migration(migrations.Migration):
    dependencies = [('models', '0006_search_speed')]

    initial = False

    operations = [
        ops.CreateModel(
            name='WalletOffer',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('kind', fields.CharField(max_length=16)),
                ('reference', fields.CharField(null=True, unique=True, max_length=64)),
                ('credential', fields.TextField(unique=False)),
                ('formats', fields.CharField(max_length=128)),
                ('code_hash', fields.CharField(null=True, unique=True, max_length=64)),
                ('tx_code_hash', fields.CharField(null=True, max_length=64)),
                ('tx_failures', fields.IntField(default=0)),
                ('token_hash', fields.CharField(null=True, unique=True, max_length=64)),
                ('token_expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('challenge', fields.CharField(null=True, max_length=64)),
                ('result', fields.TextField(null=True, unique=False)),
                ('state', fields.CharField(default='pending', max_length=16)),
                ('expires_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'wallet_offer', 'app': 'models', 'pk_attr': 'id', 'table_description': "A credential waiting for a learner's wallet (OpenID4VCI offer or VC-API exchange): single-use, short-lived."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WalletIssuance',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('offer', fields.ForeignKeyField('models.WalletOffer', source_field='offer_id', db_constraint=True, to_field='id', related_name='issuances', on_delete=OnDelete.CASCADE)),
                ('format', fields.CharField(max_length=32)),
                ('credential_id', fields.CharField(null=True, max_length=255)),
                ('claimed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'wallet_issuance', 'app': 'models', 'unique_together': (('offer', 'format'),), 'pk_attr': 'id', 'table_description': 'One credential issued from an offer: each offered format is issued once.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WalletNonce',
            fields=[
                ('value', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('expires_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'wallet_nonce', 'app': 'models', 'pk_attr': 'value', 'table_description': 'A c_nonce from the nonce endpoint, consumed by one key proof.'},
            bases=['Model'],
        ),
    ]
