"""SQLite's FTS5 index is written by the search backend's own statements, no longer by row triggers
(FTS5 flushed its pending terms after every trigger statement: 3× the cost of an ingest page). The
schema function is idempotent and drops the triggers; on PostgreSQL it changes nothing."""

from tortoise import migrations
from tortoise.migrations import operations as ops


async def drop_fts_triggers(apps, schema_editor):  # type: ignore[no-untyped-def]
    from node.search import create_search_schema

    await create_search_schema(schema_editor.client)


class Migration(migrations.Migration):
    dependencies = [("ncc", "0005_bigint_versions")]

    operations = [ops.RunPython(drop_fts_triggers)]
