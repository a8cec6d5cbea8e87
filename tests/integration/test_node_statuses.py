"""A search answer's ``nodes`` at the hub (read with one query for every search) says of each node
exactly what ``GET /api/v1/nodes`` says, whatever the node's state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from federation.timefmt import format_timestamp
from node.storage.hub_models import FederatedNode, PullState

EXPECTED = {
    "AT": "ok",            # pulled a minute ago
    "BE": "stale",         # enrolled, never pulled (no pull state)
    "CZ": "stale",         # suspended: not pulled, whatever its last pull
    "DK": "diverged",      # holds no longer what the hub ingested
    "EE": "unreachable",   # three failed pulls in a row
    "FI": "stale",         # last success an hour ago (stale_after_s 1800)
    "GR": "stale",         # a pull state without any success
}


@pytest.fixture
def hub(make_instance: Any) -> Any:
    return make_instance("", role="hub", tokens=())


async def test_search_answers_tell_each_nodes_status_as_the_node_list_does(hub: Any, app_client: Any) -> None:
    client = await app_client(hub)
    now = datetime.now(UTC).replace(microsecond=0)
    recent, old = format_timestamp(now - timedelta(minutes=1)), format_timestamp(now - timedelta(hours=1))
    for country in EXPECTED:
        await FederatedNode.create(country=country, url=f"https://{country.lower()}.example", enrolled_at=old,
                                   status="suspended" if country == "CZ" else "active")
    await PullState.create(country="AT", last_success=recent)
    await PullState.create(country="CZ", last_success=recent)
    await PullState.create(country="DK", last_success=recent, diverged_at=recent, diverged_reason="anchor_missing")
    await PullState.create(country="EE", last_success=recent, consecutive_failures=3, last_error="connect_failed")
    await PullState.create(country="FI", last_success=old)
    await PullState.create(country="GR", consecutive_failures=1)

    search = await client.get("/api/v1/search")
    assert search.status == 200
    listed = await client.get("/api/v1/nodes")
    assert listed.status == 200
    assert (await search.json())["nodes"] == EXPECTED
    assert {n["country"]: n["status"] for n in await listed.json()} == EXPECTED
