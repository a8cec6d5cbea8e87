"""Record versions are 64-bit: the protocol allows versions up to 2^53 - 1, and a record the hub
cannot store would block its node's feed."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

async def widen_search_version(apps, schema_editor):  # type: ignore[no-untyped-def]
    """search_docs is created by node.search (raw DDL), so its column is altered here (SQLite
    integers are 64-bit already)."""
    client = schema_editor.client
    if client.capabilities.dialect == "postgres":
        await client.execute_script("ALTER TABLE search_docs ALTER COLUMN version TYPE BIGINT")


class Migration(migrations.Migration):
    dependencies = [('ncc', '0004_search_changes')]

    initial = False

    operations = [
        ops.AlterField(
            model_name='HubRecord',
            name='version',
            field=fields.BigIntField(),
        ),
        ops.AlterField(
            model_name='Quarantine',
            name='version',
            field=fields.BigIntField(null=True),
        ),
        ops.AlterField(
            model_name='Record',
            name='version',
            field=fields.BigIntField(),
        ),
        ops.AlterField(
            model_name='RecordVersion',
            name='version',
            field=fields.BigIntField(),
        ),
        ops.RunPython(widen_search_version),
    ]
