"""Sharing groups (DESIGN §15): the hub's groups, the anonymous copy of each directory, analysts'
groups on their tokens, and visibility columns wide enough for ``group:<name>`` (63 characters)."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

_WIDE = 72  # "group:" + 63, with room to spare


class Migration(migrations.Migration):
    dependencies = [("ncc", "0013_gatekeeper")]

    initial = False

    operations = [
        ops.CreateModel(
            name="HubGroup",
            fields=[
                ("name", fields.CharField(primary_key=True, unique=True, db_index=True, max_length=63)),
                ("countries", fields.TextField(unique=False)),
                ("created_at", fields.CharField(max_length=20)),
            ],
            options={"table": "hub_groups", "app": "ncc", "pk_attr": "name"},
            bases=["Model"],
        ),
        ops.AddField(model_name="DirectoryDoc", name="public_document", field=fields.TextField(null=True)),
        ops.AddField(model_name="ApiToken", name="groups", field=fields.TextField(null=True)),
        ops.AlterField(model_name="Record", name="visibility", field=fields.CharField(max_length=_WIDE)),
        ops.AlterField(
            model_name="RecordVersion", name="visibility", field=fields.CharField(max_length=_WIDE)
        ),
        ops.AlterField(model_name="HubRecord", name="visibility", field=fields.CharField(max_length=_WIDE)),
        ops.AlterField(model_name="LogEntry", name="visibility", field=fields.CharField(max_length=_WIDE)),
    ]
