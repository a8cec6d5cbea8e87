from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('ncc', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='DirectoryDoc',
            fields=[
                ('serial', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('issued_at', fields.CharField(max_length=20)),
                ('document', fields.TextField(unique=False)),
            ],
            options={'table': 'hub_directories', 'app': 'ncc', 'pk_attr': 'serial'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='FederatedNode',
            fields=[
                ('country', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=2)),
                ('url', fields.CharField(max_length=500)),
                ('status', fields.CharField(default='active', max_length=16)),
                ('mode', fields.CharField(default='replicate', max_length=16)),
                ('enrolled_at', fields.CharField(max_length=20)),
            ],
            options={'table': 'hub_nodes', 'app': 'ncc', 'pk_attr': 'country'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='HubRecord',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=120)),
                ('origin', fields.CharField(db_index=True, max_length=2)),
                ('type', fields.CharField(max_length=16)),
                ('version', fields.IntField()),
                ('visibility', fields.CharField(max_length=8)),
                ('deleted', fields.BooleanField(default=False)),
                ('digest', fields.CharField(max_length=64)),
                ('issued_at', fields.CharField(max_length=20)),
                ('envelope', fields.TextField(unique=False)),
                ('node_seq', fields.BigIntField()),
                ('quarantined', fields.BooleanField(default=False)),
            ],
            options={'table': 'hub_records', 'app': 'ncc', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Invite',
            fields=[
                ('jti', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('country', fields.CharField(max_length=2)),
                ('created_at', fields.CharField(max_length=20)),
                ('expires_at', fields.CharField(max_length=20)),
                ('used_at', fields.CharField(null=True, max_length=20)),
            ],
            options={'table': 'hub_invites', 'app': 'ncc', 'pk_attr': 'jti'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='NodeKey',
            fields=[
                ('kid', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('country', fields.CharField(db_index=True, max_length=2)),
                ('public_key', fields.CharField(max_length=64)),
                ('not_before', fields.CharField(max_length=20)),
                ('not_after', fields.CharField(null=True, max_length=20)),
                ('revoked_at', fields.CharField(null=True, max_length=20)),
            ],
            options={'table': 'hub_node_keys', 'app': 'ncc', 'pk_attr': 'kid'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PullState',
            fields=[
                ('country', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=2)),
                ('cursor', fields.BigIntField(default=0)),
                ('head', fields.BigIntField(default=0)),
                ('last_success', fields.CharField(null=True, max_length=20)),
                ('last_attempt', fields.CharField(null=True, max_length=20)),
                ('consecutive_failures', fields.IntField(default=0)),
                ('last_error', fields.TextField(null=True, unique=False)),
                ('lease_owner', fields.CharField(null=True, max_length=64)),
                ('lease_until', fields.BigIntField(default=0)),
            ],
            options={'table': 'hub_pull_state', 'app': 'ncc', 'pk_attr': 'country'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Quarantine',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('country', fields.CharField(db_index=True, max_length=2)),
                ('record_id', fields.CharField(null=True, max_length=200)),
                ('version', fields.IntField(null=True)),
                ('node_seq', fields.BigIntField(null=True)),
                ('code', fields.CharField(max_length=40)),
                ('detail', fields.TextField(unique=False)),
                ('envelope', fields.TextField(unique=False)),
                ('received_at', fields.CharField(max_length=20)),
            ],
            options={'table': 'hub_quarantine', 'app': 'ncc', 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
