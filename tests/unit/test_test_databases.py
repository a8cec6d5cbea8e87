"""The suite's test databases (tests/conftest.py): a recycled PostgreSQL database is the template again.

A migrated database a test has finished with is emptied and handed to the next test of the same
process (``_Recycled``) instead of being dropped and cloned anew. These tests hold that promise to the
bytes it is about: every row of every table gone, every sequence back at its start, the migration
history untouched — and a database whose schema a test changed is dropped, never handed out. And the
SQLite template folders of killed test processes do not pile up in the temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests import conftest


@pytest.fixture
def _needs_postgres() -> None:
    problem = conftest.pg_problem()
    if problem:
        pytest.skip(problem)
    if not conftest._Recycled.ENABLED:
        pytest.skip("NCC_TEST_FRESH_DB=1: every test gets a fresh clone")


async def _query(url: str, *statements: str) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return [await conn.fetch(statement) for statement in statements]
    finally:
        await conn.close()


def _oid(name: str) -> int | None:
    rows = asyncio.run(_query(conftest.PG_ADMIN_URL, f"SELECT oid FROM pg_database WHERE datname = '{name}'"))[0]
    return int(rows[0][0]) if rows else None


def _recycle(name: str) -> tuple[str, str]:
    """Give ``name`` back and take the next migrated database (waits for the emptying)."""
    conftest.drop_pg_database(name)
    conftest._RECYCLED.dirty.join()
    return conftest.make_pg_database(migrated=True)


@pytest.mark.postgres
@pytest.mark.usefixtures("_needs_postgres")
def test_a_recycled_database_has_no_row_and_fresh_sequences() -> None:
    name, url = conftest.make_pg_database(migrated=True)
    oid = _oid(name)
    asyncio.run(_query(
        url,
        "INSERT INTO node_state (key, value) VALUES ('recycled-canary', 'Recyclewort')",
        "INSERT INTO mail_outbox (kind, created_at, to_name, to_addr, subject, body, state, attempts, "
        "next_attempt_at) VALUES ('k', 'now', 'Recyclewort', 'a@example.eu', 'Recyclewort', 'Recyclewort', "
        "'pending', 0, 'now')",
        "SELECT nextval('hub_quarantine_id_seq')",
    ))
    again, url = _recycle(name)
    try:
        assert _oid(again) == oid, "the emptied database was not handed to the next test"
        # under a new name: a process keeps state per database name (the search accelerator)
        assert again != name and _oid(name) is None
        tables, sequences, history = asyncio.run(_query(
            url,
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'tortoise_migrations'",
            "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'",
            "SELECT count(*) FROM tortoise_migrations",
        ))
        counts = asyncio.run(_query(url, *[f'SELECT count(*) FROM "{row[0]}"' for row in tables]))
        assert {row[0]: count[0][0] for row, count in zip(tables, counts, strict=True)} == {
            row[0]: 0 for row in tables}
        assert len(tables) > 20 and all(row["last_value"] is None for row in sequences)  # never called
        assert history[0][0] > 0  # the migrations stay applied
    finally:
        conftest.drop_pg_database(again)


@pytest.mark.postgres
@pytest.mark.usefixtures("_needs_postgres")
def test_a_database_whose_schema_changed_is_dropped_not_recycled() -> None:
    name, url = conftest.make_pg_database(migrated=True)
    asyncio.run(_query(url, "CREATE TABLE left_behind (x int)"))
    conftest.drop_pg_database(name)
    conftest._RECYCLED.dirty.join()
    conftest._DROPPER.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        left = asyncio.run(_query(conftest.PG_ADMIN_URL,
                                  f"SELECT count(*) FROM pg_database WHERE datname = '{name}'"))[0][0][0]
        if not left:
            break
        time.sleep(0.1)
    assert not left, f"{name} (schema changed by its test) was kept"
    assert name not in list(conftest._RECYCLED.ready.queue)


def test_sqlite_templates_of_dead_test_processes_are_removed() -> None:
    """A test process killed with SIGKILL (``test_no_leftovers`` does it on purpose) leaves its SQLite
    template folder in the temporary directory; the next process that makes one removes it, never the
    folder of a process still alive."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead = Path(tempfile.mkdtemp(prefix=f"ncc-sqlite-tpl-{int(gone.stdout)}-"))
    alive = Path(tempfile.mkdtemp(prefix=f"ncc-sqlite-tpl-{os.getpid()}-"))
    (dead / "template.db").write_bytes(b"x")
    try:
        conftest._remove_stale_sqlite_templates()
        assert not dead.exists() and alive.exists()
    finally:
        alive.rmdir()
