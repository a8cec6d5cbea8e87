"""Reads are not queued behind another task's write transaction (both backends).

Regression: on SQLite, tortoise's client ran every statement of the process on one connection under
one lock that a transaction holds until it commits, so while the hub wrote a feed page every search
(and the token check and node status it also reads) waited for the page to commit — seconds under
``python -m benchmarks.load``. ``node.storage.sqlite_engine`` reads outside transactions on a second
connection (WAL); PostgreSQL's pool already did the equivalent. The reads must also see exactly what
is committed: nothing of the open transaction, all of it once it commits.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tortoise.connection import connections
from tortoise.transactions import in_transaction

from node.search import SearchQuery
from node.services.search import SearchService
from node.storage import db, sql
from node.storage.hub_models import FederatedNode, PullState
from node.storage.sqlite_engine import ReaderSqliteClient, is_plain_select
from tests.integration.support import MINIMAL_ORG

#: Far longer than any read takes here, far shorter than the transaction is held open.
READ_DEADLINE_S = 5.0
PUBLIC = frozenset({"public"})


def envelope(name: str) -> dict[str, Any]:
    """A record envelope as the index sees it (indexing does not look at the signature)."""
    return {"ncc": 1, "id": f"urn:ncc:DE:organisation:{uuid.uuid4()}", "type": "organisation",
            "schema": "organisation/1", "origin": "DE", "version": 1, "issued_at": "2026-11-27T10:00:00Z",
            "visibility": "public", "deleted": False, "payload": {**MINIMAL_ORG, "legal_name": name}}


@pytest.fixture
def hub_instance(make_instance: Any) -> Any:
    """``ncc init --role hub`` (sync: the CLI runs its own event loop)."""
    return make_instance("", role="hub", tokens=())


@pytest.fixture
async def hub_db(hub_instance: Any) -> AsyncIterator[None]:
    """The hub's database opened in this task, as the hub process opens it."""
    ctx = await db.open_db(hub_instance.settings().db_url)
    try:
        yield
    finally:
        await db.close_db(ctx)


async def _hold_transaction(search: SearchService, name: str, opened: asyncio.Event,
                            release: asyncio.Event) -> None:
    """An ingest-like write: index a record in a transaction and keep it open until ``release``."""
    async with in_transaction() as conn:
        await search.index_many(conn, [envelope(name)])
        opened.set()
        await release.wait()


async def test_search_answers_while_an_ingest_transaction_is_open(hub_db: None) -> None:
    search = SearchService()
    async with in_transaction() as conn:
        await search.index_many(conn, [envelope("Committed Quantenlabor GmbH")])
    opened, release = asyncio.Event(), asyncio.Event()
    writer = asyncio.ensure_future(_hold_transaction(search, "Pending Quantenlabor GmbH", opened, release))
    try:
        await asyncio.wait_for(opened.wait(), READ_DEADLINE_S)
        # what GET /api/v1/search reads on a hub: the index, the nodes and their pull state
        result = await asyncio.wait_for(search.search(SearchQuery(q="quantenlabor", visibilities=PUBLIC)),
                                        READ_DEADLINE_S)
        assert [h.title for h in result.hits] == ["Committed Quantenlabor GmbH"]  # nothing uncommitted
        assert await asyncio.wait_for(FederatedNode.all().count(), READ_DEADLINE_S) == 0
        assert await asyncio.wait_for(PullState.all(), READ_DEADLINE_S) == []
        assert not writer.done()
    finally:
        release.set()
        await writer
    result = await search.search(SearchQuery(q="quantenlabor", visibilities=PUBLIC))
    assert sorted(h.title for h in result.hits) == ["Committed Quantenlabor GmbH", "Pending Quantenlabor GmbH"]


async def test_writes_outside_transactions_still_work_and_are_read_back(hub_db: None) -> None:
    conn = connections.get("default")
    await sql.execute(conn, "INSERT INTO counters (name, value) VALUES (?, ?)", ["load-test", 1])
    rows = await sql.fetch(conn, "UPDATE counters SET value = value + 1 WHERE name = ? RETURNING value", ["load-test"])
    assert rows == [{"value": 2}]
    assert await sql.fetch(conn, "SELECT value FROM counters WHERE name = ?", ["load-test"]) == [{"value": 2}]
    assert await sql.execute(conn, "SELECT value FROM counters WHERE name = ?", ["load-test"]) == 1


def test_only_plain_selects_go_to_the_reader() -> None:
    assert is_plain_select("SELECT 1")
    assert is_plain_select("  select doc FROM search_docs")
    for statement in ("UPDATE counters SET value = 1 RETURNING value", "INSERT INTO t VALUES (1)",
                      "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", "PRAGMA journal_mode", "BEGIN"):
        assert not is_plain_select(statement)


async def test_in_memory_sqlite_keeps_a_single_connection() -> None:
    client = ReaderSqliteClient(":memory:", connection_name="memory")
    await client.create_connection(with_db=True)
    try:
        await client.execute_script("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (7)")
        assert client._reader is None  # a second connection would open a different, empty database
        assert await client.execute_query_dict("SELECT v FROM t") == [{"v": 7}]
    finally:
        await client.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # SQLite's locking (PostgreSQL locks rows)
async def test_regression_a_transaction_that_reads_first_waits_for_another_writer(
        hub_instance: Any, hub_db: None) -> None:
    """Regression (``ncc hub mode`` beside a serving hub failed with "database is locked"): a transaction
    that reads, then writes, while another process commits in between. Deferred, its snapshot went stale
    and its first write failed at once; ``BEGIN IMMEDIATE`` makes the other writer wait its turn."""
    path = hub_instance.settings().db_url.removeprefix("sqlite://").split("?")[0]

    def other_process_writes() -> None:  # another process: its own connection, the default busy wait
        with sqlite3.connect(path, timeout=READ_DEADLINE_S) as other:
            other.execute("INSERT INTO counters (name, value) VALUES ('other', 1)")

    async with in_transaction() as conn:
        assert await sql.fetch(conn, "SELECT value FROM counters WHERE name = 'mine'") == []
        other = threading.Thread(target=other_process_writes)
        other.start()
        other.join(0.5)  # deferred: the other writer commits now, and our write below fails
        assert other.is_alive(), "the other writer committed inside our transaction"
        await sql.execute(conn, "INSERT INTO counters (name, value) VALUES ('mine', 1)")
    other.join(READ_DEADLINE_S)
    assert not other.is_alive()
    with sqlite3.connect(path) as check:
        names = check.execute("SELECT name FROM counters WHERE name IN ('mine', 'other') ORDER BY name")
        assert list(names) == [("mine",), ("other",)]
