"""/readyz answers 503 while the database is unreachable and recovers when it is back (PostgreSQL:
the database stops accepting connections and every open one is terminated)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from tests.conftest import PG_ADMIN_URL
from tests.integration.support import Instance

pytestmark = pytest.mark.postgres


@pytest.fixture(params=["postgres"])
def db_url(request: pytest.FixtureRequest, pg_url: str) -> str:
    return pg_url


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def test_readyz_is_503_while_the_database_is_unreachable(client: Any, node: Instance) -> None:
    name = node.db.rsplit("/", 1)[1].split("?", 1)[0]
    resp = await client.get("/readyz")
    assert resp.status == 200
    await _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    try:
        await _admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        resp = await client.get("/readyz")
        body = await resp.json()
        assert resp.status == 503, body
        assert body["status"] == "unavailable" and body["checks"]["database"].startswith("error")
        assert (await client.get("/healthz")).status == 200  # alive, just not ready
    finally:
        await _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    for _ in range(50):  # the pool reconnects on its own
        resp = await client.get("/readyz")
        if resp.status == 200:
            break
        await asyncio.sleep(0.1)
    assert resp.status == 200
