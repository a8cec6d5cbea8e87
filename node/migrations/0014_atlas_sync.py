"""Per-organisation sync state of the ECCC Atlas connector (DESIGN §13), kept outside the envelope."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("ncc", "0006_fts_without_triggers")]

    initial = False

    operations = [
        ops.CreateModel(
            name="AtlasSync",
            fields=[
                ("record_id", fields.CharField(primary_key=True, unique=True, db_index=True, max_length=120)),
                ("atlas_uuid", fields.CharField(null=True, max_length=64)),
                ("state", fields.CharField(default="pending", max_length=16)),
                ("reason", fields.TextField(null=True, unique=False)),
                ("last_push", fields.CharField(null=True, max_length=20)),
                ("remote_changed", fields.CharField(null=True, max_length=64)),
                ("pushed_digest", fields.CharField(null=True, max_length=64)),
                ("pushed_version", fields.BigIntField(null=True)),
            ],
            options={"table": "atlas_sync", "app": "ncc", "pk_attr": "record_id"},
            bases=["Model"],
        ),
    ]
