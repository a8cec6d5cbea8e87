"""The gatekeeper (DESIGN §12): applications, the history side table, the mail outbox."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("ncc", "0009_erasures")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Application",
            fields=[
                ("id", fields.CharField(primary_key=True, unique=True, db_index=True, max_length=36)),
                ("status", fields.CharField(default="unconfirmed", max_length=16)),
                ("created_at", fields.CharField(db_index=True, max_length=20)),
                ("confirmed_at", fields.CharField(null=True, max_length=20)),
                ("client_key", fields.CharField(db_index=True, max_length=64)),
                ("email_key", fields.CharField(db_index=True, max_length=64)),
                ("name", fields.CharField(max_length=200)),
                ("email", fields.CharField(max_length=254)),
                ("visibility", fields.CharField(max_length=8)),
                ("body", fields.TextField(unique=False)),
                ("record_id", fields.CharField(null=True, db_index=True, max_length=120)),
                ("proposal", fields.TextField(null=True, unique=False)),
                ("proposed_at", fields.CharField(null=True, max_length=20)),
            ],
            options={"table": "applications", "app": "ncc", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="VersionEvent",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("record_id", fields.CharField(db_index=True, max_length=120)),
                ("version", fields.BigIntField()),
                ("at", fields.CharField(max_length=20)),
                ("actor", fields.CharField(max_length=200)),
                ("actor_kind", fields.CharField(max_length=16)),
                ("decision", fields.CharField(null=True, max_length=16)),
                ("ground", fields.CharField(null=True, max_length=64)),
                ("note", fields.TextField(null=True, unique=False)),
                ("changed", fields.TextField(default="[]", unique=False)),
            ],
            options={"table": "version_events", "app": "ncc",
                     "unique_together": (("record_id", "version"),), "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="MailMessage",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("kind", fields.CharField(db_index=True, max_length=16)),
                ("created_at", fields.CharField(db_index=True, max_length=20)),
                ("to_name", fields.CharField(default="", max_length=200)),
                ("to_addr", fields.CharField(max_length=254)),
                ("subject", fields.CharField(max_length=300)),
                ("body", fields.TextField(unique=False)),
                ("state", fields.CharField(default="pending", db_index=True, max_length=8)),
                ("attempts", fields.IntField(default=0)),
                ("next_attempt_at", fields.CharField(max_length=20)),
                ("last_error", fields.CharField(null=True, max_length=300)),
                ("sent_at", fields.CharField(null=True, max_length=20)),
                ("record_id", fields.CharField(null=True, db_index=True, max_length=120)),
                ("application_id", fields.CharField(null=True, max_length=36)),
            ],
            options={"table": "mail_outbox", "app": "ncc", "pk_attr": "id"},
            bases=["Model"],
        ),
    ]
