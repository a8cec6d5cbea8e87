"""Search index tables (FTS5 on SQLite, tsvector + GIN on PostgreSQL), behind node.search."""

from tortoise import migrations
from tortoise.migrations import operations as ops


async def create_search(apps, schema_editor):  # type: ignore[no-untyped-def]
    from node.search import create_search_schema

    await create_search_schema(schema_editor.client)


class Migration(migrations.Migration):
    dependencies = [("ncc", "0002_hub")]

    operations = [ops.RunPython(create_search)]
