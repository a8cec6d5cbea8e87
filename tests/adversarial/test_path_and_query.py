"""Hostile paths and query parameters: traversal in record ids, NUL characters in path parameters,
FTS5 / tsquery / SQL syntax in ``q``, garbage cursors and limits. Never a 5xx, nothing changed.
"""

from __future__ import annotations

import pytest

from tests.adversarial.conftest import Client, Hub, MakeFakeNode
from tests.integration.support import MINIMAL_ORG, Instance, expect_problem, stored

BOTH = pytest.mark.parametrize(
    "db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
UUID = "0b9e2c8e-4f0a-4f57-9d36-1c8f4c1d2a11"

#: Record ids in the path that must each be a plain 404 (percent-encoded as sent).
BAD_IDS = [
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "..",
    "%2e%2e",
    f"urn:ncc:DE:organisation:..%2F..%2F{UUID}",
    "urn:ncc:DE:organisation:..%2F..%2F..%2Fetc%2Fpasswd",
    f"urn:ncc:DE:organisation:{UUID}%00",
    f"urn:ncc:DE:organisation:{UUID}%0A",
    f"urn:ncc:DE:organisation:{UUID.upper()}",
    f"urn:ncc:de:organisation:{UUID}",
    f"urn:ncc:DE:Organisation:{UUID}",
    f"urn:ncc:DE:organisation:{UUID}'%20OR%20'1'%3D'1",
    "%00",
    "urn:ncc:DE:organisation:" + "a" * 2000,
    "%C0%AE%C0%AE%2F",  # overlong-UTF-8 "../"
    "%FF%FE",
]

#: Free text that is syntax to FTS5, to PostgreSQL tsquery, or to SQL — always just text here.
HOSTILE_Q = [
    '"', '"""', '"unterminated phrase', "NEAR(cyber lab)", "cyber NEAR/2 lab", "legal_name:cyber",
    "title:x OR 1", "cyber AND NOT lab", "OR", "AND", "NOT", "*", "cyber*", "^cyber", "(((", ")(", "{x}",
    "cyber & lab | !grid", "cyber:*", "cyber <-> lab", "!!", "'", "''", "'; DROP TABLE records; --",
    "%' OR '1'='1", "\\", "\\\\'", "-", "--", "/* x */", "_", "%", "\u0000", "a\u0000b", "\ud7ff", "🔐",
    "x" * 500, "é" * 500,
]

QUERY_PARAMS_400 = [
    {"limit": "abc"}, {"limit": "0"}, {"limit": "-1"}, {"limit": "1e3"}, {"limit": "9" * 40},
    {"cursor": "garbage"}, {"cursor": "eyJzIjotMX0"}, {"cursor": "%00"}, {"cursor": "a" * 5000},
    {"q": "x" * 501},
]


@BOTH
async def test_traversal_and_garbage_ids_at_the_node_are_404(client: Client, node: Instance) -> None:
    resp = await client.post("/api/v1/records", json={"type": "organisation", "payload": MINIMAL_ORG},
                             headers=node.auth("editor"))
    assert resp.status == 201
    before = await stored()
    for rid in BAD_IDS:
        path = f"/api/v1/records/{rid}"
        for method, kwargs in (("GET", {}), ("PUT", {"json": {"payload": MINIMAL_ORG, "version": 1}}),
                               ("DELETE", {})):
            resp = await client.request(method, path, headers=node.auth("editor"), **kwargs)
            assert resp.status == 404, (method, rid, resp.status, await resp.text())
            await expect_problem(resp, 404, "not_found")
    assert await stored() == before


@BOTH
async def test_traversal_and_nul_in_hub_paths_are_404(hub: Hub, fake_node: MakeFakeNode) -> None:
    """Record ids, node countries and key ids in the hub's paths. Regression: a NUL in ``{country}`` of
    ``POST /api/v1/nodes/{country}`` or in ``{kid}`` of ``POST /api/v1/keys/{kid}/revoke`` reached SQL and
    was a 500 on PostgreSQL (fixed in ``node/http/views/hub.py``: ``admin_node``, ``revoke_key``)."""
    await fake_node("DE")
    for rid in BAD_IDS:
        for headers in ({}, hub.instance.auth("analyst")):
            await expect_problem(await hub.client.get(f"/api/v1/records/{rid}", headers=headers), 404, "not_found")
    for country in ("%00", "D%00", "..%2FDE", "de", "DEU", "D'E", "%2e%2e"):
        resp = await hub.client.post(f"/api/v1/nodes/{country}", json={"status": "suspended"}, headers=hub.admin())
        await expect_problem(resp, 404, "not_found")
    for kid in ("%00", "DE:%00", "DE:..%2F..%2F", "DE:AAAAAAAAAAAAAAA%00", "hub:' OR 1=1 --", "x" * 300):
        resp = await hub.client.post(f"/api/v1/keys/{kid}/revoke", json={}, headers=hub.admin())
        await expect_problem(resp, 404, "not_found")
    nodes = await (await hub.client.get("/api/v1/nodes")).json()
    assert [(n["country"], n["enrollment"]) for n in nodes] == [("DE", "active")]
    from node.storage.hub_models import NodeKey

    assert await NodeKey.filter(revoked_at__not_isnull=True).count() == 0


@BOTH
async def test_regression_nul_in_the_quarantine_country_filter_is_400(hub: Hub, fake_node: MakeFakeNode) -> None:
    """Regression: the hub admin's ``?country=`` filter went to SQL unchecked: a NUL was a 500 on
    PostgreSQL. Fixed in ``node/http/views/federation.py:quarantine`` (two capitals, else 400)."""
    await fake_node("DE")
    for country in ("\u0000", "D\u0000", "' OR 1=1 --", "DEU", "D1"):
        resp = await hub.client.get("/federation/v1/quarantine", params={"country": country}, headers=hub.admin())
        await expect_problem(resp, 400, "invalid_parameter")
    for country in ("DE", "de", " De "):  # a person types a country in any case, as in search and the CLI
        assert (await hub.client.get("/federation/v1/quarantine", params={"country": country},
                                     headers=hub.admin())).status == 200


async def search_is_plain_text(client: Client, headers: dict[str, str]) -> None:
    for q in HOSTILE_Q:
        resp = await client.get("/api/v1/search", params={"q": q}, headers=headers)
        assert resp.status == 200, (q, await resp.text())
        body = await resp.json()
        assert isinstance(body["results"], list) and isinstance(body["total"], int)
    for q, must_find in (("cyber", True), ('"cyber lab"', True), ("cyber*", True), ("cyber AND lab", True),
                         ("'; DROP TABLE records; --", False)):
        resp = await client.get("/api/v1/search", params={"q": q}, headers=headers)
        assert ((await resp.json())["total"] > 0) is must_find, q
    for params in QUERY_PARAMS_400:
        await expect_problem(await client.get("/api/v1/search", params=params, headers=headers), 400,
                             "invalid_parameter")
    for params in ({"country": "\u0000"}, {"type": "../../etc"}, {"domain": "' OR 1=1"}, {"sector": "%"}):
        resp = await client.get("/api/v1/search", params=params, headers=headers)
        assert resp.status in (200, 400), (params, await resp.text())


@BOTH
async def test_fts_and_sql_syntax_in_q_at_the_node(client: Client, node: Instance) -> None:
    resp = await client.post("/api/v1/records", json={"type": "organisation", "payload": MINIMAL_ORG},
                             headers=node.auth("editor"))
    assert resp.status == 201
    before = await stored()
    await search_is_plain_text(client, {})
    await search_is_plain_text(client, node.auth("reader"))
    for params in QUERY_PARAMS_400[:-1]:
        await expect_problem(await client.get("/api/v1/records", params=params), 400, "invalid_parameter")
    assert await stored() == before


@BOTH
async def test_fts_and_sql_syntax_in_q_at_the_hub(hub: Hub, fake_node: MakeFakeNode) -> None:
    de = await fake_node("DE")
    de.serve(de.record())
    assert (await hub.sync())["DE"]["accepted"] == 1
    before = await hub.held()
    await search_is_plain_text(hub.client, {})
    await search_is_plain_text(hub.client, hub.instance.auth("analyst"))
    assert await hub.held() == before


@BOTH
async def test_regression_node_admin_body_that_is_not_an_object_is_422(hub: Hub, fake_node: MakeFakeNode) -> None:
    """Regression (found by the fuzz suite): ``POST /api/v1/nodes/{country}`` answered 400
    ``invalid_parameter`` for a JSON body that is not an object, or an unknown status/mode; DESIGN §9
    makes those 422 ``schema_invalid`` (with pointers). Nothing changes for the node."""
    await fake_node("DE")
    for body, pointers in (([], [""]), ("suspended", [""]), ({"status": "gone"}, ["/status"]),
                           ({"status": "active", "mode": 7}, ["/mode"]),
                           # a misspelt field was ignored (200, nothing changed)
                           ({"state": "suspended"}, ["/state"]), ({"status": "suspended", "extra": 1}, ["/extra"]),
                           ({}, [""])):
        resp = await hub.client.post("/api/v1/nodes/DE", json=body, headers=hub.admin())
        problem = await expect_problem(resp, 422, "schema_invalid")
        assert [e["pointer"] for e in problem["errors"]] == pointers
    nodes = await (await hub.client.get("/api/v1/nodes")).json()
    assert [(n["country"], n["enrollment"]) for n in nodes] == [("DE", "active")]


@BOTH
async def test_regression_key_revocation_body_is_checked_before_anything_is_revoked(
    hub: Hub, fake_node: MakeFakeNode
) -> None:
    """Regression (README walk-through): ``POST /api/v1/keys/{kid}/revoke`` with ``[]`` or with the CLI's
    option name ``{"at": …}`` revoked the key *at once* (the body was ignored), and ``"x"`` was a 409.
    A body must be an object of ``revoked_at`` alone, a timestamp: 422 ``schema_invalid`` otherwise, and
    the key stays valid."""
    de = await fake_node("DE")
    from node.storage.hub_models import NodeKey

    for body, pointers in (([], [""]), ("x", [""]), ({"at": "2026-01-01T00:00:00Z"}, ["/at"]),
                           ({"revoked_at": "yesterday"}, ["/revoked_at"]), ({"revoked_at": 5}, ["/revoked_at"])):
        resp = await hub.client.post(f"/api/v1/keys/{de.kid}/revoke", json=body, headers=hub.admin())
        problem = await expect_problem(resp, 422, "schema_invalid")
        assert [e["pointer"] for e in problem["errors"]] == pointers, body
    assert await NodeKey.filter(revoked_at__not_isnull=True).count() == 0
    resp = await hub.client.post(f"/api/v1/keys/{de.kid}/revoke", json={"revoked_at": "2026-01-01T00:00:00Z"},
                                 headers=hub.admin())
    assert resp.status == 200 and (await resp.json())["revoked_at"] == "2026-01-01T00:00:00Z"


@BOTH
async def test_regression_suspended_node_is_reported_stale(hub: Hub, fake_node: MakeFakeNode) -> None:
    """Regression (README walk-through): after ``POST /api/v1/nodes/DE {"status": "suspended"}`` the
    hub stops pulling DE, yet ``GET /api/v1/nodes`` and search results said ``ok`` until
    ``stale_after_s`` had passed. What the hub holds of a suspended node is stale at once."""
    de = await fake_node("DE")
    de.serve(de.record())
    assert (await hub.sync())["DE"]["ok"]

    async def status() -> tuple[str, str, str]:
        row = next(n for n in await (await hub.client.get("/api/v1/nodes")).json() if n["country"] == "DE")
        found = await (await hub.client.get("/api/v1/search")).json()
        return row["status"], row["enrollment"], found["nodes"]["DE"]

    assert await status() == ("ok", "active", "ok")
    resp = await hub.client.post("/api/v1/nodes/DE", json={"status": "suspended"}, headers=hub.admin())
    assert resp.status == 200
    assert await status() == ("stale", "suspended", "stale")
    resp = await hub.client.post("/api/v1/nodes/DE", json={"status": "active"}, headers=hub.admin())
    assert resp.status == 200 and (await hub.sync())["DE"]["ok"]
    assert await status() == ("ok", "active", "ok")


async def test_regression_request_line_or_header_over_the_limit_is_a_problem_document(
    client: Client, node: Instance
) -> None:
    """Regression (fuzz suite, 300 examples): a query string over aiohttp's 8190-byte request-line
    limit (many repeated filters) was refused by aiohttp before any handler ran, as ``text/plain`` —
    the one client error that was not RFC 9457. Same for an oversized header."""
    long_query = "&".join(f"country=X{i:05d}" for i in range(900))  # ~13 KB
    for path, headers in ((f"/api/v1/search?{long_query}", {}), ("/api/v1/search", {"X-Long": "y" * 9000})):
        resp = await client.get(path, headers=headers)
        assert resp.status == 400 and resp.content_type == "application/problem+json", await resp.text()
        body = await resp.json(content_type=None)
        assert body["code"] == "bad_request" and body["status"] == 400 and body["detail"]
    assert (await client.get("/healthz")).status == 200  # the server is fine


@BOTH
async def test_regression_sync_request_body_is_checked(hub: Hub, fake_node: MakeFakeNode) -> None:
    """Regression (black-box pass): ``POST /api/v1/sync`` ignored its body — ``garbage{`` and
    ``{"country": "ZZ"}`` both answered 200 and pulled every node. The body is optional; when given it
    is a JSON object ``{"country": "XX"}`` that pulls that node alone (as ``ncc sync --country``)."""
    de, fr = await fake_node("DE"), await fake_node("FR")
    de.serve(de.record())
    fr.serve(fr.record())
    bad = (("garbage{", 400, "malformed_json"), ("[]", 422, "schema_invalid"),
           ('{"countries": ["DE"]}', 422, "schema_invalid"), ('{"country": "de"}', 422, "schema_invalid"),
           ('{"country": 5}', 422, "schema_invalid"), ('{"country": "ZZ"}', 404, "not_found"))
    for body, status, code in bad:
        resp = await hub.client.post("/api/v1/sync", data=body, headers={**hub.admin(), "Content-Type": "application/json"})
        await expect_problem(resp, status, code)
    assert await hub.cursor("DE") == 0 and await hub.cursor("FR") == 0  # nothing was pulled
    resp = await hub.client.post("/api/v1/sync", json={"country": "DE"}, headers=hub.admin())
    assert resp.status == 200
    assert [r["country"] for r in (await resp.json())["results"]] == ["DE"]
    assert await hub.cursor("DE") == de.head and await hub.cursor("FR") == 0
    assert set(await hub.sync()) == {"DE", "FR"} and await hub.cursor("FR") == fr.head  # no body: all
