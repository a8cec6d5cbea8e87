"""Node records API (DESIGN §3, §7, §9): create, read, update, delete, list — on both backends."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from schemas import SCHEMA_DIR
from tests.integration.support import (
    CONTACT,
    MINIMAL_ORG,
    Instance,
    expect_problem,
    org,
    stored,
    verify_envelope,
)

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
TIMESTAMP = re.compile(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")

Client = TestClient[Any, Any]


async def create(
    client: Client,
    node: Instance,
    payload: dict[str, Any] | None = None,
    visibility: str | None = "public",
    rtype: str = "organisation",
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": rtype, "payload": MINIMAL_ORG if payload is None else payload}
    if visibility is not None:
        body["visibility"] = visibility
    resp = await client.post("/api/v1/records", json=body, headers=node.auth("editor"))
    assert resp.status == 201, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def test_editor_creates_organisation_signed_envelope(client: Client, node: Instance) -> None:
    resp = await client.post(
        "/api/v1/records",
        json={"type": "organisation", "visibility": "public", "payload": MINIMAL_ORG},
        headers=node.auth("editor"),
    )
    assert resp.status == 201, await resp.text()
    assert resp.content_type == "application/json"
    env = await resp.json()
    assert set(env) == {
        "ncc",
        "id",
        "type",
        "schema",
        "origin",
        "version",
        "issued_at",
        "visibility",
        "deleted",
        "payload",
        "sig",
    }
    assert env["ncc"] == 1
    assert re.fullmatch(rf"urn:ncc:DE:organisation:{UUID}", env["id"]), env["id"]
    assert env["type"] == "organisation" and env["schema"] == "organisation/1" and env["origin"] == "DE"
    assert env["version"] == 1 and env["deleted"] is False and env["visibility"] == "public"
    assert TIMESTAMP.match(env["issued_at"])
    assert env["payload"] == MINIMAL_ORG
    assert env["sig"]["alg"] == "Ed25519"
    assert re.fullmatch(r"DE:[A-Za-z0-9_-]{16}", env["sig"]["kid"])
    assert re.fullmatch(r"[A-Za-z0-9_-]{86}", env["sig"]["value"])  # 64 bytes, unpadded base64url
    verify_envelope(env, node.key)
    assert resp.headers["Location"] == f"/api/v1/records/{env['id']}"
    # what the editor reads back is exactly what was signed
    got = await client.get(f"/api/v1/records/{env['id']}", headers=node.auth("reader"))
    assert got.status == 200
    assert await got.json() == env
    assert await stored() == {"records": 1, "versions": 1, "feed": 1, "seq": 1}


def example(rtype: str) -> dict[str, Any]:
    """The schema's example payload of ``rtype`` (an organisation re-homed to DE)."""
    payload: dict[str, Any] = json.loads((SCHEMA_DIR / "examples" / f"{rtype}.json").read_text())
    if rtype == "organisation":
        payload["country"] = "DE"
        payload["address"]["country"] = "DE"
    return payload


@pytest.mark.parametrize("rtype", ["organisation", "expert", "project", "facility"])
async def test_every_record_type_is_created_by_admin_too(client: Client, node: Instance, rtype: str) -> None:
    resp = await client.post(
        "/api/v1/records", json={"type": rtype, "payload": example(rtype)}, headers=node.auth("admin")
    )
    assert resp.status == 201, await resp.text()
    env = await resp.json()
    assert re.fullmatch(rf"urn:ncc:DE:{rtype}:{UUID}", env["id"])
    assert env["schema"] == f"{rtype}/1"
    # experts are personal data: national unless asked otherwise; the rest default to public
    assert env["visibility"] == ("national" if rtype == "expert" else "public")
    verify_envelope(env, node.key)


async def test_expert_shared_beyond_the_node_needs_consent(client: Client, node: Instance) -> None:
    expert = example("expert")
    resp = await client.post(
        "/api/v1/records",
        json={"type": "expert", "visibility": "public", "payload": expert},
        headers=node.auth("editor"),
    )
    assert resp.status == 201, await resp.text()  # consent scope "public" covers it
    before = await stored()
    refused = {**expert, "consent": {**expert["consent"], "given": False}}
    network_only = {**expert, "consent": {**expert["consent"], "scope": "network"}}
    # regression: an expert without a consent object (or without a country) was schema_invalid
    bare = {"name": "Jane Doe"}
    cases = (("public", refused), ("network", refused), ("public", network_only), ("public", bare), ("network", bare))
    for visibility, payload in cases:
        resp = await client.post(
            "/api/v1/records",
            json={"type": "expert", "visibility": visibility, "payload": payload},
            headers=node.auth("editor"),
        )
        await expect_problem(resp, 422, "consent_missing")
    assert await stored() == before
    for visibility, payload in (("national", refused), ("network", network_only), ("national", bare)):
        resp = await client.post(
            "/api/v1/records",
            json={"type": "expert", "visibility": visibility, "payload": payload},
            headers=node.auth("editor"),
        )
        assert resp.status == 201, await resp.text()


async def test_unknown_vocabulary_id_is_schema_invalid_with_pointer(client: Client, node: Instance) -> None:
    before = await stored()
    resp = await client.post(
        "/api/v1/records",
        json={
            "type": "organisation",
            "visibility": "public",
            "payload": org(subdomains=["cry.10", "cry.999"]),
        },
        headers=node.auth("editor"),
    )
    body = await expect_problem(resp, 422, "schema_invalid")
    pointers = [e["pointer"] for e in body["errors"]]
    assert "/payload/subdomains/1" in pointers, pointers  # pointers lead into the request body
    assert all(isinstance(e["message"], str) for e in body["errors"])
    resp = await client.post(
        "/api/v1/records",
        json={"type": "organisation", "payload": org(sectors=["sec.nonsense"])},
        headers=node.auth("editor"),
    )
    body = await expect_problem(resp, 422, "schema_invalid")
    assert [e["pointer"] for e in body["errors"]] == ["/payload/sectors/0"], body
    assert await stored() == before


async def test_organisation_of_another_country_is_refused(client: Client, node: Instance) -> None:
    resp = await client.post(
        "/api/v1/records",
        json={"type": "organisation", "payload": org(country="FR")},
        headers=node.auth("editor"),
    )
    await expect_problem(resp, 422, "schema_invalid")
    assert (await stored())["records"] == 0


async def test_put_with_current_version_bumps_it_other_versions_conflict(
    client: Client, node: Instance
) -> None:
    env = await create(client, node)
    rid = env["id"]
    new_payload = org(description="Post-quantum cryptography and grid security.")
    resp = await client.put(
        f"/api/v1/records/{rid}", json={"payload": new_payload, "version": 1}, headers=node.auth("editor")
    )
    assert resp.status == 200, await resp.text()
    v2 = await resp.json()
    assert v2["id"] == rid and v2["version"] == 2 and v2["payload"] == new_payload
    verify_envelope(v2, node.key)
    before = await stored()
    for stale in (1, 3, 0, 99):
        resp = await client.put(
            f"/api/v1/records/{rid}",
            json={"payload": MINIMAL_ORG, "version": stale},
            headers=node.auth("editor"),
        )
        await expect_problem(resp, 409, "version_conflict")
    assert await stored() == before
    got = await (await client.get(f"/api/v1/records/{rid}", headers=node.auth("reader"))).json()
    assert got == v2
    # visibility may change with the payload
    resp = await client.put(
        f"/api/v1/records/{rid}",
        json={"payload": new_payload, "version": 2, "visibility": "network"},
        headers=node.auth("admin"),
    )
    assert resp.status == 200
    assert (await resp.json())["version"] == 3 and (await resp.json())["visibility"] == "network"


async def test_membership_workflow_cannot_be_skipped_by_dropping_the_membership(
    client: Client, node: Instance
) -> None:
    """Regression (README walk-through): registered → revoked, then a PUT *without* ``membership``
    (accepted: nothing to check), then one with ``registered`` (accepted: from nothing) undid a
    revocation in two steps. A status, once set, can only change along the Art. 8(4) workflow; a PUT
    leaving ``membership`` out keeps it (DESIGN §12). Editors may not touch it at all (403: decisions
    are the assessors'); admins may, along the workflow, as ``ncc import`` brings in a registry."""
    member = {"status": "registered", "assessed_at": "2026-01-01T00:00:00Z"}
    resp = await client.post("/api/v1/records", json={"type": "organisation", "payload": org(membership=member)},
                             headers=node.auth("admin"))
    assert resp.status == 201, await resp.text()
    rid, version = (await resp.json())["id"], 1

    async def put(payload: dict[str, object], role: str = "admin") -> Any:
        return await client.put(f"/api/v1/records/{rid}", json={"payload": payload, "version": version},
                                headers=node.auth(role))

    revoked = {**member, "status": "revoked", "ground": "security-reasons"}
    await expect_problem(await put(org(membership=revoked), "editor"), 403, "forbidden")
    resp = await put(org(membership=revoked))
    assert resp.status == 200, await resp.text()
    version = 2
    before = await stored()
    await expect_problem(await put(org(membership={**member, "status": "registered"})), 422, "invalid_transition")
    assert await stored() == before
    resp = await put(org(), "editor")  # left out: kept
    assert resp.status == 200 and (await resp.json())["payload"]["membership"] == revoked
    version = 3
    resp = await put(org(membership={**member, "status": "applied"}))  # re-applying is the way back
    assert resp.status == 200, await resp.text()


async def test_put_validates_like_create(client: Client, node: Instance) -> None:
    rid = (await create(client, node))["id"]
    before = await stored()
    cases = [
        ({"payload": org(subdomains=["nope"]), "version": 1}, 422, "schema_invalid"),
        ({"payload": MINIMAL_ORG}, 422, "schema_invalid"),  # version missing
        ({"version": 1}, 422, "schema_invalid"),  # payload missing
        ({"payload": MINIMAL_ORG, "version": "1"}, 422, "schema_invalid"),
        ({"payload": MINIMAL_ORG, "version": True}, 422, "schema_invalid"),
        ({"payload": MINIMAL_ORG, "version": 1, "visibility": "secret"}, 422, "schema_invalid"),
        ({"payload": MINIMAL_ORG, "version": 1, "type": "expert"}, 422, "schema_invalid"),
        ({"payload": [], "version": 1}, 422, "schema_invalid"),
    ]
    for body, status, code in cases:
        resp = await client.put(f"/api/v1/records/{rid}", json=body, headers=node.auth("editor"))
        await expect_problem(resp, status, code)
    assert await stored() == before


async def test_delete_publishes_signed_tombstone_then_gone(client: Client, node: Instance) -> None:
    env = await create(client, node)
    rid = env["id"]
    resp = await client.delete(f"/api/v1/records/{rid}", headers=node.auth("editor"))
    assert resp.status == 200, await resp.text()
    tomb = await resp.json()
    assert tomb["deleted"] is True and tomb["version"] == 2 and tomb["payload"] == {"reason": "withdrawn"}
    assert tomb["id"] == rid and tomb["visibility"] == "public"
    verify_envelope(tomb, node.key)
    for headers in (node.auth("reader"), node.auth("admin"), {}):
        await expect_problem(await client.get(f"/api/v1/records/{rid}", headers=headers), 410, "gone")
    before = await stored()
    await expect_problem(
        await client.delete(f"/api/v1/records/{rid}", headers=node.auth("editor")), 410, "gone"
    )
    resp = await client.put(
        f"/api/v1/records/{rid}", json={"payload": MINIMAL_ORG, "version": 2}, headers=node.auth("editor")
    )
    await expect_problem(resp, 410, "gone")
    assert await stored() == before
    listed = await (await client.get("/api/v1/records", headers=node.auth("reader"))).json()
    assert listed["records"] == []


async def test_delete_reasons(client: Client, node: Instance) -> None:
    for reason in ("withdrawn", "erased", "revoked"):
        rid = (await create(client, node))["id"]
        resp = await client.delete(f"/api/v1/records/{rid}?reason={reason}", headers=node.auth("admin"))
        assert resp.status == 200
        assert (await resp.json())["payload"] == {"reason": reason}
    rid = (await create(client, node))["id"]
    before = await stored()
    resp = await client.delete(f"/api/v1/records/{rid}?reason=bored", headers=node.auth("admin"))
    await expect_problem(resp, 400, "invalid_parameter")
    assert await stored() == before


async def test_erased_purges_older_versions(client: Client, node: Instance) -> None:
    from node.storage.models import RecordVersion

    rid = (await create(client, node, org(contact=CONTACT)))["id"]
    resp = await client.delete(f"/api/v1/records/{rid}?reason=erased", headers=node.auth("admin"))
    assert resp.status == 200
    versions = await RecordVersion.filter(record_id=rid).order_by("version")
    assert [v.version for v in versions] == [1, 2]
    assert versions[0].envelope is None and versions[0].digest
    assert versions[1].envelope is not None


async def test_unknown_and_malformed_ids_are_not_found(client: Client, node: Instance) -> None:
    missing = "urn:ncc:DE:organisation:0b9e2c8e-4f0a-4f57-9d36-1c8f4c1d2a11"
    for rid in (
        missing,
        "nonsense",
        "urn:ncc:DE:widget:0b9e2c8e-4f0a-4f57-9d36-1c8f4c1d2a11",
        "%F0%9F%92%A9",
    ):
        await expect_problem(await client.get(f"/api/v1/records/{rid}"), 404, "not_found")
        resp = await client.put(
            f"/api/v1/records/{rid}", json={"payload": MINIMAL_ORG, "version": 1}, headers=node.auth("editor")
        )
        await expect_problem(resp, 404, "not_found")
        await expect_problem(
            await client.delete(f"/api/v1/records/{rid}", headers=node.auth("editor")), 404, "not_found"
        )
    assert (await stored())["records"] == 0


async def test_anonymous_reader_gets_redacted_unsigned_public_record(client: Client, node: Instance) -> None:
    env = await create(client, node, org(contact=CONTACT))
    assert env["payload"]["contact"] == CONTACT  # the writer's answer is complete
    resp = await client.get(f"/api/v1/records/{env['id']}")
    assert resp.status == 200
    shown = await resp.json()
    assert "sig" not in shown
    assert "contact" not in shown["payload"]
    assert shown["redacted"] == ["/payload/contact"]
    assert shown["payload"] == MINIMAL_ORG
    assert {k: v for k, v in shown.items() if k not in ("payload", "redacted")} == {
        k: v for k, v in env.items() if k not in ("payload", "sig")
    }
    # token holders see the signed original
    full = await (await client.get(f"/api/v1/records/{env['id']}", headers=node.auth("reader"))).json()
    assert full == env
    verify_envelope(full, node.key)
    # a record without restricted fields still says what was removed: nothing
    plain = await create(client, node)
    shown = await (await client.get(f"/api/v1/records/{plain['id']}")).json()
    assert "sig" not in shown and shown["redacted"] == []
    # the anonymous list is redacted the same way
    listed = await (await client.get("/api/v1/records")).json()
    assert len(listed["records"]) == 2
    for rec in listed["records"]:
        assert "sig" not in rec and "contact" not in rec["payload"]


async def test_national_and_network_records_invisible_to_anonymous(client: Client, node: Instance) -> None:
    national = await create(client, node, visibility="national")
    network = await create(client, node, visibility="network")
    public = await create(client, node, visibility="public")
    for env in (national, network):
        await expect_problem(await client.get(f"/api/v1/records/{env['id']}"), 404, "not_found")
        got = await client.get(f"/api/v1/records/{env['id']}", headers=node.auth("reader"))
        assert got.status == 200 and await got.json() == env
    anon = await (await client.get("/api/v1/records")).json()
    assert [r["id"] for r in anon["records"]] == [public["id"]]
    reader = await (await client.get("/api/v1/records", headers=node.auth("reader"))).json()
    assert {r["id"] for r in reader["records"]} == {national["id"], network["id"], public["id"]}
    # national versions never enter the feed
    from node.storage.models import FeedEntry

    assert {f.record_id for f in await FeedEntry.all()} == {network["id"], public["id"]}


async def test_dropping_to_national_publishes_withdrawn_tombstone_first(
    client: Client, node: Instance
) -> None:
    from node.storage.models import FeedEntry, RecordVersion

    rid = (await create(client, node))["id"]
    resp = await client.put(
        f"/api/v1/records/{rid}",
        json={"payload": MINIMAL_ORG, "version": 1, "visibility": "national"},
        headers=node.auth("editor"),
    )
    assert resp.status == 200
    env = await resp.json()
    # one change, one version (DESIGN §3; regression: the national version was 3, the tombstone 2): the
    # feed publishes version 2 as a withdrawn tombstone, the node keeps the national version 2
    assert env["version"] == 2 and env["visibility"] == "national"
    versions = await RecordVersion.filter(record_id=rid).order_by("version")
    assert [(v.version, v.deleted, v.visibility) for v in versions] == [(1, False, "public"), (2, False, "national")]
    tomb = json.loads((await FeedEntry.get(record_id=rid)).envelope)
    assert (tomb["version"], tomb["deleted"], tomb["visibility"], tomb["payload"]) == (
        2, True, "public", {"reason": "withdrawn"})
    verify_envelope(tomb, node.key)
    await expect_problem(await client.get(f"/api/v1/records/{rid}"), 404, "not_found")
    resp = await client.put(f"/api/v1/records/{rid}", json={"payload": MINIMAL_ORG, "version": 2,
                                                            "visibility": "public"}, headers=node.auth("editor"))
    assert resp.status == 200 and (await resp.json())["version"] == 3  # and back: the feed holds version 3
    assert json.loads((await FeedEntry.get(record_id=rid)).envelope)["version"] == 3


async def test_list_pages_with_cursor_and_filters_by_type(client: Client, node: Instance) -> None:
    ids = [(await create(client, node, org(legal_name=f"Org {i}")))["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        url = "/api/v1/records?type=organisation&limit=2" + (f"&cursor={cursor}" if cursor else "")
        resp = await client.get(url, headers=node.auth("reader"))
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        pages += 1
        seen += [r["id"] for r in page["records"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(ids))  # newest change first, no duplicates, nothing skipped
    empty = await (await client.get("/api/v1/records?type=expert", headers=node.auth("reader"))).json()
    assert empty == {"records": [], "next_cursor": None}


async def test_list_invalid_parameters(client: Client, node: Instance) -> None:
    await create(client, node)
    bad_cursors = [
        b'{"s":-1}',
        b"null",
        b"[]",
        b'{"s":"1"}',
        b'{"s":18e99}',
        b'{"s":true}',
        b"{}",
        b'{"s":18446744073709551615}',
        b'{"s":9223372036854775808}',
        b"\xff\xfe",
    ]
    cursors = ["cursor=" + base64.urlsafe_b64encode(c).decode().rstrip("=") for c in bad_cursors]
    for query in [
        "limit=abc",
        "limit=0",
        "limit=-1",
        "limit=1001",
        "limit=1.5",
        "limit=99999999999999999999999",
        "limit=%00",
        "cursor=garbage!!",
        "cursor=%25%25",
        "cursor=a",
        "type=widget",
        *cursors,
    ]:
        resp = await client.get(f"/api/v1/records?{query}", headers=node.auth("reader"))
        body = await expect_problem(resp, 400, "invalid_parameter")
        assert body["parameter"] in ("limit", "cursor", "type"), body
