"""Regression tests for what the fault suite found when PostgreSQL restarts under a running instance
(tests/e2e/test_faults.py::test_postgres_restarted_under_the_hub_mid_ingest).

The outage is made the way test_readiness does it: the instance's database stops accepting
connections and every open one is terminated (the client side of a restart), then it is let back.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from tortoise.connection import connections
from tortoise.transactions import in_transaction

from node.storage import db
from tests.integration.support import MINIMAL_ORG, Instance, database_outage

pytestmark = pytest.mark.postgres


@pytest.fixture(params=["postgres"])
def db_url(request: pytest.FixtureRequest, pg_url: str) -> str:
    return pg_url



async def test_requests_during_a_database_outage_are_503_not_500(client: Any, node: Instance) -> None:
    """Found by the fault suite: while PostgreSQL restarted, every request that needed the database
    was a 500 ``internal_error`` (logged as an unhandled error); it is a 503 ``unavailable`` with
    ``Retry-After``, as ``/readyz`` says meanwhile, and the next request after the outage works."""
    create = {"type": "organisation", "visibility": "public", "payload": MINIMAL_ORG}
    assert (await client.get("/api/v1/records", headers=node.auth("reader"))).status == 200
    async with database_outage(node.db):
        for resp in (await client.get("/api/v1/records", headers=node.auth("reader")),
                     await client.post("/api/v1/records", json=create, headers=node.auth("editor"))):
            body = await resp.json()
            assert (resp.status, body["code"]) == (503, "unavailable"), body
            assert resp.headers["Retry-After"].isdigit()
            assert resp.content_type == "application/problem+json"
    for _ in range(50):  # the pool reconnects on its own
        resp = await client.post("/api/v1/records", json=create, headers=node.auth("editor"))
        if resp.status == 201:
            break
        await asyncio.sleep(0.1)
    assert resp.status == 201, await resp.text()


async def test_failed_connection_release_restores_the_task_connection(
    node: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the fault suite: when returning a transaction's connection to the pool failed (the
    server went away mid-transaction), tortoise left the task pointing at the released connection,
    so every later query of that task failed with "connection has been released back to the pool"
    — the hub could not even record the failed pull. node.storage.transactions restores it."""
    ctx = await db.open_db(node.settings().db_url)
    try:
        await connections.get("default").execute_query("SELECT 1")  # (the pool is made on first use)
        pool = connections.get("default")._pool
        real_release = type(pool).release
        failures: list[int] = []

        async def release_then_fail(self: Any, connection: Any, *, timeout: float | None = None) -> None:
            await real_release(self, connection, timeout=timeout)  # returned (asyncpg terminated it) …
            failures.append(1)
            raise asyncpg.exceptions.InternalClientError("cannot switch to state 15; another operation is in progress")

        monkeypatch.setattr(type(pool), "release", release_then_fail)
        with pytest.raises(asyncpg.exceptions.InternalClientError):
            async with in_transaction() as conn:
                await conn.execute_query("SELECT 1")
        monkeypatch.setattr(type(pool), "release", real_release)
        assert failures == [1]
        # … and this task's next query gets a connection of its own, not the released one
        _, rows = await connections.get("default").execute_query("SELECT 41 + 1 AS answer")
        assert rows[0]["answer"] == 42
        async with in_transaction() as conn:
            _, rows = await conn.execute_query("SELECT 1 AS one")
        assert rows[0]["one"] == 1
    finally:
        await db.close_db(ctx)


async def test_regression_an_app_whose_database_is_gone_stops_promptly(app_client: Any, node: Instance) -> None:
    """A PostgreSQL database dropped under a serving app: the app's stop (every job's stop, the last
    erasure purge, the pool's close) is still prompt. The CI hang this guards against needed the drop to
    land while a job was mid-query (its cancellation was then swallowed); the loops' stop event and
    bounded wait that fix it are proven deterministically in tests/unit/node/test_background_stop.py."""
    from tests.conftest import drop_pg_database, make_pg_database

    name, url = await asyncio.to_thread(make_pg_database, True)
    try:
        client = await app_client(node, db=url)
        assert (await client.get("/api/v1/records")).status == 200
    finally:
        # at once, while the jobs' first runs (purges, notifier) are under way; returns when DROP DATABASE …
        # WITH (FORCE) has run: the database is gone
        await asyncio.to_thread(drop_pg_database, name, now=True)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await client.close()  # the app's cleanup: every job's stop, the last erasure purge, the pool's close
    assert loop.time() - started < 30
