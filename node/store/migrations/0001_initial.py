from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='Record',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('iri', fields.CharField(unique=True, max_length=512)),
                ('local_id', fields.CharField(null=True, unique=True, max_length=64)),
                ('origin', fields.CharField(db_index=True, max_length=255)),
                ('type', fields.CharField(max_length=64)),
                ('version', fields.IntField()),
                ('date_modified', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('document', fields.TextField(unique=False)),
                ('deleted', fields.BooleanField(default=False)),
                ('stored_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'record', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A signed record, own or mirrored, kept verbatim: ``document`` is exactly the JSON that was signed.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RecordCategory',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('record', fields.ForeignKeyField('models.Record', source_field='record_id', db_constraint=True, to_field='id', related_name='categories', on_delete=OnDelete.CASCADE)),
                ('category', fields.CharField(db_index=True, max_length=512)),
            ],
            options={'table': 'record_category', 'app': 'models', 'unique_together': (('record', 'category'),), 'pk_attr': 'id', 'table_description': 'One category (SKOS concept IRI) of a live record.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RecordIndex',
            fields=[
                ('record', fields.OneToOneField('models.Record', source_field='record_id', primary_key=True, db_index=True, db_constraint=True, to_field='id', related_name='index', on_delete=OnDelete.CASCADE)),
                ('type', fields.CharField(db_index=True, max_length=64)),
                ('name', fields.TextField(unique=False)),
                ('text', fields.TextField(unique=False)),
                ('language', fields.CharField(null=True, max_length=35)),
                ('latitude', fields.FloatField(null=True)),
                ('longitude', fields.FloatField(null=True)),
            ],
            options={'table': 'record_index', 'app': 'models', 'indexes': [Index(fields=['latitude', 'longitude'])], 'pk_attr': 'record_id', 'table_description': 'Search fields of a live record, derived from its document and written in the same transaction.'},
            bases=['Model'],
        ),
    ]
