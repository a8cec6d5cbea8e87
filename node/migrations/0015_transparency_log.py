"""The hub's transparency log (DESIGN §14): entries, stored subtree hashes and the log state.

Records held before this wave (and the directories signed so far) are logged here, once, in the order
they were ingested: ``node.storage.translog.backfill`` (no key needed; the first tree head is signed
when asked for)."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


async def start_log(apps, schema_editor):  # type: ignore[no-untyped-def]
    from node.storage.translog import backfill

    await backfill(schema_editor.client)


class Migration(migrations.Migration):
    dependencies = [("ncc", "0014_atlas_sync")]

    initial = False

    operations = [
        ops.CreateModel(
            name="LogEntry",
            fields=[
                ("index", fields.BigIntField(primary_key=True, unique=True, db_index=True)),
                ("origin", fields.CharField(null=True, db_index=True, max_length=2)),
                ("record_id", fields.CharField(null=True, max_length=120)),
                ("version", fields.BigIntField(null=True)),
                ("visibility", fields.CharField(max_length=16)),
                ("entry", fields.TextField(unique=False)),
            ],
            options={"table": "hub_log", "app": "ncc", "unique_together": (("record_id", "version"),),
                     "pk_attr": "index"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="LogNode",
            fields=[
                ("key", fields.BigIntField(primary_key=True, unique=True, db_index=True)),
                ("hash", fields.CharField(max_length=64)),
            ],
            options={"table": "hub_log_nodes", "app": "ncc", "pk_attr": "key"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="LogState",
            fields=[
                ("id", fields.IntField(primary_key=True, unique=True, db_index=True)),
                ("size", fields.BigIntField(default=0)),
                ("frontier", fields.TextField(default="[]", unique=False)),
                ("head", fields.TextField(null=True, unique=False)),
            ],
            options={"table": "hub_log_state", "app": "ncc", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.RunPython(start_log),
    ]
