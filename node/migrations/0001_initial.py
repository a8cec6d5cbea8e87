from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='ApiToken',
            fields=[
                ('jti', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('role', fields.CharField(max_length=16)),
                ('subject', fields.CharField(max_length=200)),
                ('created_at', fields.CharField(max_length=20)),
                ('expires_at', fields.CharField(max_length=20)),
                ('revoked_at', fields.CharField(null=True, max_length=20)),
            ],
            options={'table': 'api_tokens', 'app': 'ncc', 'pk_attr': 'jti'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Counter',
            fields=[
                ('name', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('value', fields.BigIntField(default=0)),
            ],
            options={'table': 'counters', 'app': 'ncc', 'pk_attr': 'name'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='FeedEntry',
            fields=[
                ('record_id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=120)),
                ('seq', fields.BigIntField(unique=True)),
                ('envelope', fields.TextField(unique=False)),
            ],
            options={'table': 'feed', 'app': 'ncc', 'pk_attr': 'record_id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='NodeState',
            fields=[
                ('key', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('value', fields.TextField(unique=False)),
            ],
            options={'table': 'node_state', 'app': 'ncc', 'pk_attr': 'key'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Record',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=120)),
                ('type', fields.CharField(db_index=True, max_length=16)),
                ('origin', fields.CharField(max_length=2)),
                ('version', fields.IntField()),
                ('visibility', fields.CharField(max_length=8)),
                ('deleted', fields.BooleanField(default=False)),
                ('seq', fields.BigIntField(db_index=True)),
                ('issued_at', fields.CharField(max_length=20)),
                ('envelope', fields.TextField(unique=False)),
            ],
            options={'table': 'records', 'app': 'ncc', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RecordVersion',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('record_id', fields.CharField(db_index=True, max_length=120)),
                ('version', fields.IntField()),
                ('seq', fields.BigIntField(unique=True)),
                ('visibility', fields.CharField(max_length=8)),
                ('deleted', fields.BooleanField(default=False)),
                ('issued_at', fields.CharField(max_length=20)),
                ('digest', fields.CharField(max_length=64)),
                ('envelope', fields.TextField(null=True, unique=False)),
            ],
            options={'table': 'record_versions', 'app': 'ncc', 'unique_together': (('record_id', 'version'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SeenJti',
            fields=[
                ('jti', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=128)),
                ('expires_at', fields.BigIntField(db_index=True)),
            ],
            options={'table': 'seen_jtis', 'app': 'ncc', 'pk_attr': 'jti'},
            bases=['Model'],
        ),
    ]
