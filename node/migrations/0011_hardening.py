"""Hardening (issue 20): user tokens remember the kid that signed them, portal sessions live
server-side, invitations can be cancelled and say whether they may replace an enrolled node."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("ncc", "0009_erasures")]

    initial = False

    operations = [
        ops.AddField(model_name="ApiToken", name="kid", field=fields.CharField(null=True, max_length=40)),
        ops.AddField(model_name="Invite", name="replace", field=fields.BooleanField(default=False)),
        ops.AddField(model_name="Invite", name="cancelled_at",
                     field=fields.CharField(null=True, max_length=20)),
        ops.CreateModel(
            name="PortalSession",
            fields=[
                ("id_hash", fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ("jti", fields.CharField(db_index=True, max_length=64)),
                ("created_at", fields.CharField(max_length=20)),
                ("expires_at", fields.BigIntField(db_index=True)),
            ],
            options={"table": "portal_sessions", "app": "ncc", "pk_attr": "id_hash"},
            bases=["Model"],
        ),
    ]
