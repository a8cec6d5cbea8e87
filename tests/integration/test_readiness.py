"""/readyz answers 503 while the database is unreachable and recovers when it is back (PostgreSQL:
the database stops accepting connections and every open one is terminated)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.integration.support import Instance, database_outage

pytestmark = pytest.mark.postgres


@pytest.fixture(params=["postgres"])
def db_url(request: pytest.FixtureRequest, pg_url: str) -> str:
    return pg_url



async def test_readyz_is_503_while_the_database_is_unreachable(client: Any, node: Instance) -> None:
    resp = await client.get("/readyz")
    assert resp.status == 200
    async with database_outage(node.db):
        resp = await client.get("/readyz")
        body = await resp.json()
        assert resp.status == 503, body
        assert body["status"] == "unavailable" and body["checks"]["database"].startswith("error")
        assert (await client.get("/healthz")).status == 200  # alive, just not ready
    for _ in range(50):  # the pool reconnects on its own
        resp = await client.get("/readyz")
        if resp.status == 200:
            break
        await asyncio.sleep(0.1)
    assert resp.status == 200
