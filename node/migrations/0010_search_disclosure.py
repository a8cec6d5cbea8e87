"""Default deny for data held before this wave (DESIGN §11): every search document is rebuilt with a
public and a restricted part.

Until now a document's text could hold fields the schema does not mark public (the address's
country, unknown fields' vocabulary ids), and nothing restricted could be searched by the readers
who may see it. The search tables are re-created (SQLite's FTS5 table gains the ``frest`` column,
which a virtual table cannot ``ALTER``) and exactly the records indexed before are indexed again
from their stored envelopes, so anonymous matches, snippets and facets use public fields only from
the first query after the upgrade. The in-process accelerator rebuilds (its change log restarts).
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

BATCH = 500


async def _rows(conn: Any, text: str, values: list[Any] | None = None) -> list[Any]:
    from node.storage.sql import placeholders

    _, rows = await conn.execute_query(placeholders(conn, text), values or [])
    return list(rows)


async def reindex(apps, schema_editor):  # type: ignore[no-untyped-def]
    import orjson

    from node.search import backend_for, create_search_schema, document_from_envelope
    from schemas import load_vocabularies

    conn = schema_editor.client
    dialect = conn.capabilities.dialect
    await conn.execute_query("DROP TABLE IF EXISTS search_reindex")
    await conn.execute_query("CREATE TABLE search_reindex AS SELECT doc, id FROM search_docs")
    for table in ("search_fts", "search_tags", "search_counts", "search_changes", "search_docs"):
        if table == "search_fts" and dialect != "sqlite":
            continue
        await conn.execute_query(f"DROP TABLE IF EXISTS {table}")
    if dialect == "sqlite":
        await conn.execute_query("DELETE FROM sqlite_sequence WHERE name IN ('search_docs', 'search_changes')")
    await create_search_schema(conn)
    backend = backend_for(dialect, accelerated=False)
    vocabularies = load_vocabularies()
    last = -1
    while True:
        batch = await _rows(conn, "SELECT doc, id FROM search_reindex WHERE doc > ? ORDER BY doc LIMIT ?",
                            [last, BATCH])
        if not batch:
            break
        last = int(batch[-1][0])
        ids = [str(row[1]) for row in batch]
        marks = ", ".join("?" for _ in ids)
        envelopes: list[str] = []
        for table in ("records", "hub_records"):
            envelopes += [str(row[0]) for row in await _rows(
                conn, f"SELECT envelope FROM {table} WHERE id IN ({marks}) AND deleted = ?", [*ids, False])]
        docs = []
        for text in envelopes:
            try:
                doc = document_from_envelope(orjson.loads(text), vocabularies)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # not a record envelope (never indexed as such): nothing to rebuild
            if doc is not None:
                docs.append(doc)
        if docs:
            await backend.upsert(conn, docs)
    await conn.execute_query("DROP TABLE search_reindex")


class Migration(migrations.Migration):
    dependencies = [("ncc", "0008_divergence")]

    operations = [ops.RunPython(reindex)]
