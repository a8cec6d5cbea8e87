"""Search change log (``search_changes``): written with every index write, read by the accelerator."""

from tortoise import migrations
from tortoise.migrations import operations as ops


async def create_search_changes(apps, schema_editor):  # type: ignore[no-untyped-def]
    from node.search import backend_for

    client = schema_editor.client
    # Same DDL on both dialects apart from the autoincrement column; see node/search/sql.py.
    backend = backend_for(client.capabilities.dialect, accelerated=False)
    await backend.create_changes(client)  # type: ignore[attr-defined]


class Migration(migrations.Migration):
    dependencies = [("ncc", "0003_search")]

    operations = [ops.RunPython(create_search_changes)]
