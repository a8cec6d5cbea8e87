"""Divergence detection (DESIGN §11): the hub remembers the last record it ingested from each node (its
anchor), whether the node has diverged, its feed epoch and the node instance that enrolled; a node
keeps the ``withdrawn`` tombstones its feed published. Anchors of nodes pulled before this migration
are filled from the records the hub holds (the one with the highest feed sequence up to the cursor)."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


async def fill_anchors(apps, schema_editor):  # type: ignore[no-untyped-def]
    from node.storage import sql

    client = schema_editor.client
    for state in await sql.fetch(client, "SELECT country, cursor FROM hub_pull_state WHERE cursor > 0"):
        rows = await sql.fetch(
            client,
            "SELECT id, version, digest, node_seq FROM hub_records WHERE origin = ? AND node_seq <= ?"
            " ORDER BY node_seq DESC LIMIT 1",
            [state["country"], state["cursor"]],
        )
        if rows:
            r = rows[0]
            await sql.execute(
                client,
                "UPDATE hub_pull_state SET anchor_seq = ?, anchor_id = ?, anchor_version = ?, anchor_digest = ?"
                " WHERE country = ?",
                [r["node_seq"], r["id"], r["version"], r["digest"], state["country"]],
            )


class Migration(migrations.Migration):
    dependencies = [("ncc", "0015_transparency_log")]

    initial = False

    operations = [
        ops.AddField(model_name="PullState", name="anchor_seq", field=fields.BigIntField(null=True)),
        ops.AddField(model_name="PullState", name="anchor_id", field=fields.CharField(max_length=120, null=True)),
        ops.AddField(model_name="PullState", name="anchor_version", field=fields.BigIntField(null=True)),
        ops.AddField(model_name="PullState", name="anchor_digest", field=fields.CharField(max_length=64, null=True)),
        ops.AddField(model_name="PullState", name="diverged_at", field=fields.CharField(max_length=20, null=True)),
        ops.AddField(model_name="PullState", name="diverged_reason", field=fields.TextField(null=True)),
        ops.AddField(model_name="PullState", name="epoch", field=fields.IntField(default=0)),
        ops.AddField(model_name="PullState", name="instance", field=fields.CharField(max_length=64, null=True)),
        ops.CreateModel(
            name="FeedWithdrawal",
            fields=[
                ("seq", fields.BigIntField(primary_key=True, unique=True, db_index=True)),
                ("record_id", fields.CharField(db_index=True, max_length=120)),
                ("version", fields.BigIntField()),
                ("digest", fields.CharField(max_length=64)),
            ],
            options={"table": "feed_withdrawals", "app": "ncc", "pk_attr": "seq"},
            bases=["Model"],
        ),
        ops.RunPython(fill_anchors),
    ]
