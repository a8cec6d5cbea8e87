"""DESIGN §10: the hub records when it first received each record version (``hub_records.received_at``:
a version is accepted only if received while its key was valid), and quarantine evidence is capped
per line with the whole line's size and digest kept (``hub_quarantine.evidence_bytes`` /
``evidence_sha256``).

Rows that exist before this migration were received at an unknown time: ``received_at`` takes their
``issued_at`` (the rule they were accepted under), so ``ncc hub revoke-key --at T`` judges them as
before."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


async def fill_received_at(apps, schema_editor):  # type: ignore[no-untyped-def]
    await schema_editor.client.execute_script(
        "UPDATE hub_records SET received_at = issued_at WHERE received_at = '' OR received_at IS NULL")


class Migration(migrations.Migration):
    dependencies = [("ncc", "0009_erasures")]

    initial = False

    operations = [
        # nullable: SQLite cannot add a NOT NULL column without a database default to a table, and
        # tortoise's defaults are Python-side (regression: an upgraded hub holding records failed here)
        ops.AddField(model_name="HubRecord", name="received_at",
                     field=fields.CharField(max_length=20, null=True, default="")),
        ops.AddField(model_name="Quarantine", name="evidence_bytes",
                     field=fields.BigIntField(null=True, default=0)),
        ops.AddField(model_name="Quarantine", name="evidence_sha256",
                     field=fields.CharField(max_length=64, null=True, default="")),
        ops.RunPython(fill_received_at),
    ]
