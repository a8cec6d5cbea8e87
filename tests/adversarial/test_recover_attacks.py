"""Hostile callers of the recovery routes (DESIGN §11): a node reads back only its own records, resumes
only its own feed, bad parameters are 400, people's tokens are 403; a feed whose head falls below the
hub's cursor is ``diverged`` and nothing of it is ingested. (A hub lying to ``ncc recover`` is
tests/integration/test_divergence.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from tests.adversarial.conftest import Hub, MakeFakeNode


async def test_a_node_reads_back_only_its_own_records(hub: Hub, fake_node: MakeFakeNode) -> None:
    de, fr = await fake_node("DE"), await fake_node("FR")
    de.serve(de.record(), de.record(visibility="network"))
    fr.serve(fr.record())
    results = await hub.sync()
    assert results["DE"]["ok"] and results["FR"]["ok"]

    resp = await hub.client.get("/federation/v1/records", headers=de.auth())
    assert resp.status == 200
    body = await resp.json()
    assert sorted(r["id"] for r in body["records"]) == sorted(rid for rid in await hub.held() if ":DE:" in rid)
    assert body["next_after"] is None
    resp = await hub.client.get("/federation/v1/records", headers=fr.auth(), params={"limit": "1"})
    assert [r["origin"] for r in (await resp.json())["records"]] == ["FR"]


@pytest.mark.parametrize("params", [
    {"after": "x"}, {"after": "urn:ncc:DE:organisation:'; DROP TABLE hub_records; --"},
    {"after": "urn:ncc:DE:organisation:\x00"}, {"limit": "0"}, {"limit": "abc"}, {"limit": "100000"},
])
async def test_bad_parameters_reading_back_are_400(hub: Hub, fake_node: MakeFakeNode, params: dict[str, str]) -> None:
    de = await fake_node("DE")
    resp = await hub.client.get("/federation/v1/records", headers=de.auth(), params=params)
    assert resp.status == 400 and (await resp.json())["code"] == "invalid_parameter"


async def test_people_cannot_read_back_or_resume(hub: Hub, fake_node: MakeFakeNode) -> None:
    await fake_node("DE")
    for method, path in (("GET", "/federation/v1/records"), ("POST", "/federation/v1/resume")):
        resp = await hub.client.request(method, path, headers=hub.admin())
        assert resp.status == 403 and (await resp.json())["code"] == "forbidden", path
        resp = await hub.client.request(method, path)
        assert resp.status == 401 and (await resp.json())["code"] == "unauthenticated", path


async def test_a_node_resumes_only_its_own_feed(hub: Hub, fake_node: MakeFakeNode) -> None:
    from node.storage.hub_models import PullState

    de, fr = await fake_node("DE"), await fake_node("FR")
    de.serve(de.record(), de.record())
    fr.serve(fr.record())
    await hub.sync()
    resp = await hub.client.post("/federation/v1/resume", headers=fr.auth())
    assert resp.status == 200
    assert await resp.json() == {"country": "FR", "epoch": 1, "cursor": 0}
    state = await PullState.get(country="DE")
    assert (state.cursor, state.epoch) == (2, 0)


async def test_a_feed_whose_head_falls_below_the_cursor_is_diverged_and_not_ingested(
        hub: Hub, fake_node: MakeFakeNode) -> None:
    """A node without the anchor check (404): the first page's trailer is the fallback."""
    de = await fake_node("DE")
    de.serve(de.record(), de.record(), de.record())
    assert (await hub.sync())["DE"]["ok"]
    before = await hub.held()
    de.lines = de.lines[:1]  # restored: head 1 < cursor 3 ...
    de.trailer_override = {"head": 1, "next": 3, "more": False}
    de.serve(de.record())  # ... then a write under an old sequence
    result = (await hub.sync())["DE"]
    assert not result["ok"] and "Diverged" in result["error"]
    assert await hub.held() == before
    nodes: list[dict[str, Any]] = await (await hub.client.get("/api/v1/nodes")).json()
    row = next(n for n in nodes if n["country"] == "DE")
    assert row["status"] == "diverged" and row["cursor"] == 3 and row["head"] == 1
