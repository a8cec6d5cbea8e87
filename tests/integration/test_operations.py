"""Operations endpoints and the one error shape (DESIGN §7), on both backends."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.integration.support import Instance, expect_problem

Client = TestClient[Any, Any]


async def test_healthz_readyz_metrics(client: Client) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200 and await resp.json() == {"status": "ok"}
    resp = await client.get("/readyz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok", "checks": {"database": "ok", "key": "ok"}}
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.content_type == "text/plain"
    text = await resp.text()
    assert "ncc_http_request_duration_seconds" in text and 'route="/healthz"' in text


async def test_openapi_is_served(client: Client) -> None:
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    assert (await resp.json())["openapi"].startswith("3.1.")


async def test_unknown_route_and_wrong_method_are_problems(client: Client, node: Instance) -> None:
    await expect_problem(await client.get("/nowhere"), 404, "not_found")
    await expect_problem(await client.get("/api/v1/records/"), 404, "not_found")
    resp = await client.patch("/api/v1/records", json={}, headers=node.auth("admin"))
    await expect_problem(resp, 405, "method_not_allowed")
    assert "GET" in resp.headers["Allow"] and "POST" in resp.headers["Allow"]


async def test_request_id_is_echoed_or_made(client: Client) -> None:
    resp = await client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert resp.headers["X-Request-Id"] == "abc-123"
    resp = await client.get("/nowhere", headers={"X-Request-Id": "<script>"})
    rid = resp.headers["X-Request-Id"]
    assert rid != "<script>" and rid.isalnum()
    assert (await resp.json())["request_id"] == rid
