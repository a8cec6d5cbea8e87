"""Untrusted bodies (DESIGN §9): each bad body gets exactly its code, nothing is stored, never a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.conftest import ClientFactory
from tests.integration.support import MINIMAL_ORG, Instance, expect_problem, org, stored

Client = TestClient[Any, Any]
MIB = 1024 * 1024


def body(payload: Any = None, **fields: Any) -> bytes:
    doc = {
        "type": "organisation",
        "visibility": "public",
        "payload": MINIMAL_ORG if payload is None else payload,
    }
    doc.update(fields)
    return json.dumps(doc).encode()


def nested(depth: int) -> bytes:
    """A create body whose deepest container is at ``depth`` (the body object itself is depth 1)."""
    inner = "[" * (depth - 2) + "]" * (depth - 2)
    return b'{"type": "organisation", "payload": {"legal_name": "X", "keywords": ' + inner.encode() + b"}}"


MALFORMED = {
    "invalid JSON": b'{"type": "organisation",',
    "garbage": b"not json at all",
    "empty body": b"",
    "whitespace only": b"  \n ",
    "invalid UTF-8": b'{"type": "organisation", "payload": {"legal_name": "\xff\xfe"}}',
    "overlong UTF-8": b'{"type": "organisation", "payload": {"legal_name": "\xc0\xaf"}}',
    "duplicate keys": b'{"type": "organisation", "type": "expert", "payload": {}}',
    "duplicate keys in payload": body()[:-2] + b', "legal_name": "Twice"}}',
    "NaN": b'{"type": "organisation", "payload": {"sme": NaN}}',
    "Infinity": b'{"type": "organisation", "payload": {"sme": Infinity}}',
    "-Infinity": b'{"type": "organisation", "payload": {"sme": -Infinity}}',
    "nesting 65": nested(65),
    "nesting 10000": nested(10000),
    "trailing data": body() + b" {}",
    "byte order mark": b"\xef\xbb\xbf" + body(),
    "single quotes": b"{'type': 'organisation'}",
    "trailing comma": b'{"type": "organisation",}',
}

NOT_AN_OBJECT = {
    "array": b"[]",
    "string": b'"organisation"',
    "number": b"42",
    "null": b"null",
    "true": b"true",
}

SCHEMA_INVALID = {
    "unknown type": body(type="widget"),
    "type not a string": body(type=["organisation"]),
    "type missing": json.dumps({"payload": MINIMAL_ORG}).encode(),
    "unknown visibility": body(visibility="secret"),
    "visibility not a string": body(visibility=1),
    "payload missing": json.dumps({"type": "organisation"}).encode(),
    "payload not an object": body(payload=["x"]),
    "payload null": json.dumps({"type": "organisation", "payload": None}).encode(),
    "unknown top-level field": body(version=1),
    "unknown payload field": body(payload=org(favourite_colour="blue")),
    "nesting 64 is valid JSON": nested(64),
    "description too long": body(payload=org(description="x" * 801)),
    "wrong field type": body(payload=org(sme="yes")),
    "empty fields_of_activity": body(payload=org(fields_of_activity=[])),
}

CANONICALIZATION = {
    "integer 2^53": b'{"type": "organisation", "payload": {"legal_name": "X", "n": 9007199254740992}}',
    "integer -2^53": b'{"type": "organisation", "payload": {"legal_name": "X", "n": -9007199254740992}}',
    "huge integer": b'{"type": "organisation", "payload": {"legal_name": "X", "n": 1' + b"0" * 400 + b"}}",
    "lone high surrogate": b'{"type": "organisation", "payload": {"legal_name": "Cyber \\ud800 Lab"}}',
    "lone low surrogate": b'{"type": "organisation", "payload": {"legal_name": "\\udfff"}}',
    "surrogate in a key": b'{"type": "organisation", "payload": {"\\ud800": 1}}',
    "reversed pair": b'{"type": "organisation", "payload": {"legal_name": "\\udc00\\ud800"}}',
}


async def post(client: Client, node: Instance, data: bytes, **headers: str) -> Any:
    return await client.post(
        "/api/v1/records",
        data=data,
        headers={**node.auth("editor"), "Content-Type": "application/json", **headers},
    )


@pytest.mark.parametrize("name", list(MALFORMED))
async def test_malformed_json_is_400(client: Client, node: Instance, name: str) -> None:
    before = await stored()
    await expect_problem(await post(client, node, MALFORMED[name]), 400, "malformed_json")
    assert await stored() == before


@pytest.mark.parametrize("name", list(NOT_AN_OBJECT) + list(SCHEMA_INVALID))
async def test_json_but_not_a_valid_create_is_422_schema_invalid(
    client: Client, node: Instance, name: str
) -> None:
    data = NOT_AN_OBJECT.get(name) or SCHEMA_INVALID[name]
    before = await stored()
    problem = await expect_problem(await post(client, node, data), 422, "schema_invalid")
    assert problem["errors"] and all({"pointer", "message"} <= set(e) for e in problem["errors"])
    assert await stored() == before


@pytest.mark.parametrize("name", list(CANONICALIZATION))
async def test_unrepresentable_values_are_422_canonicalization_error(
    client: Client, node: Instance, name: str
) -> None:
    before = await stored()
    await expect_problem(await post(client, node, CANONICALIZATION[name]), 422, "canonicalization_error")
    assert await stored() == before


async def test_limits_of_safe_integers_and_valid_surrogate_pairs_are_accepted(
    client: Client, node: Instance
) -> None:
    """The boundaries: ±(2^53−1) is representable, a proper surrogate pair is one character (U+1F512)."""
    escaped = body(payload=org(legal_name="PLACEHOLDER")).replace(b"PLACEHOLDER", b"Cyber \\ud83d\\udd12 Lab")
    resp = await post(client, node, escaped)
    assert resp.status == 201, await resp.text()
    env = await resp.json()
    assert env["payload"]["legal_name"] == "Cyber \U0001f512 Lab"
    for version in (2**53 - 1, -(2**53 - 1)):
        data = json.dumps({"payload": MINIMAL_ORG, "version": version}).encode()
        resp = await client.put(f"/api/v1/records/{env['id']}", data=data, headers=node.auth("editor"))
        await expect_problem(resp, 409, "version_conflict")


async def test_put_bodies_follow_the_same_rules(client: Client, node: Instance) -> None:
    resp = await post(client, node, body())
    rid = (await resp.json())["id"]
    url = f"/api/v1/records/{rid}"
    headers = {**node.auth("editor"), "Content-Type": "application/json"}
    before = await stored()
    cases = [
        (b"", 400, "malformed_json"),
        (b'{"payload": {}, "version": 1, "version": 1}', 400, "malformed_json"),
        (b'{"payload": {"legal_name": NaN}, "version": 1}', 400, "malformed_json"),
        (b"[1]", 422, "schema_invalid"),
        (b'{"payload": {"legal_name": "\\ud800"}, "version": 1}', 422, "canonicalization_error"),
        (b'{"payload": {}, "version": 9007199254740993}', 422, "canonicalization_error"),
    ]
    for data, status, code in cases:
        await expect_problem(await client.put(url, data=data, headers=headers), status, code)
    assert await stored() == before


async def test_body_over_one_mib_is_413(client: Client, node: Instance) -> None:
    before = await stored()
    big = body(payload=org(description="x" * MIB))
    assert len(big) > MIB
    await expect_problem(await post(client, node, big), 413, "payload_too_large")

    # announced by Content-Length or not: the limit holds while streaming, too
    async def chunks() -> AsyncIterator[bytes]:
        yield big[: MIB // 2]
        yield big[MIB // 2 :]

    resp = await client.post("/api/v1/records", data=chunks(), headers={**node.auth("editor")})
    await expect_problem(resp, 413, "payload_too_large")
    rid_resp = await post(client, node, body())
    rid = (await rid_resp.json())["id"]
    resp = await client.put(f"/api/v1/records/{rid}", data=big, headers=node.auth("editor"))
    await expect_problem(resp, 413, "payload_too_large")
    after = await stored()
    assert after["records"] == before["records"] + 1 and after["versions"] == before["versions"] + 1


async def test_body_of_exactly_the_limit_is_read(app_client: ClientFactory, node: Instance) -> None:
    data = body()
    client = await app_client(node, max_body_bytes=str(len(data)))
    assert (await post(client, node, data)).status == 201
    await expect_problem(await post(client, node, data + b" "), 413, "payload_too_large")


async def test_anonymous_big_body_is_refused_before_reading(client: Client, node: Instance) -> None:
    resp = await client.post("/api/v1/records", data=body(payload=org(description="x" * (2 * MIB))))
    await expect_problem(resp, 401, "unauthenticated")


NO_500_BODIES = [
    *MALFORMED.values(),
    *NOT_AN_OBJECT.values(),
    *SCHEMA_INVALID.values(),
    *CANONICALIZATION.values(),
    b'{"type": "organisation", "payload": {"legal_name": 1e400}}',
    b'{"type": "organisation", "payload": {"legal_name": 1.5}}',
    b'{"type": "organisation", "payload": {"legal_name": "\\u0000"}}',
    b'{"type": "organisation", "payload": {"legal_name": "X", "membership": {"status": "revoked"}}}',
    b'{"type": "organisation", "payload": {"legal_name": "X", "contact": "not an object"}}',
    b'{"type": {"$ne": null}, "payload": {}}',
    b'{"type": "__proto__", "payload": {}}',
    body(payload=org(membership={"status": "registered"}, country=None)),
    body(payload=org(website="javascript:alert(1)")),
    body(payload=org(domains=["cry"] * 10000)),
    body(payload=org(legal_name="\u202e\ufeff\u0007 Lab")),
    body(payload=org(country="de")),
    body(payload=org(country="XX")),
]


@pytest.mark.parametrize("index", range(len(NO_500_BODIES)))
async def test_no_body_gets_a_500(client: Client, node: Instance, index: int) -> None:
    data = NO_500_BODIES[index]
    for method, url in (
        ("POST", "/api/v1/records"),
        ("PUT", "/api/v1/records/urn:ncc:DE:organisation:0b9e2c8e-4f0a-4f57-9d36-1c8f4c1d2a11"),
    ):
        for content_type in ("application/json", "text/plain", "application/x-www-form-urlencoded"):
            resp = await client.request(
                method, url, data=data, headers={**node.auth("admin"), "Content-Type": content_type}
            )
            text = await resp.text()
            assert resp.status < 500, text
            if resp.status >= 400:
                assert resp.headers["Content-Type"].startswith("application/problem+json"), text


async def test_nul_character_in_a_payload_is_schema_invalid(client: Client, node: Instance) -> None:
    """U+0000 is valid JSON and JCS, but PostgreSQL text cannot hold it: refused before it reaches SQL."""
    before = await stored()
    resp = await post(client, node, body(payload=org(legal_name="Cyber\x00Lab")))
    problem = await expect_problem(resp, 422, "schema_invalid")
    assert [e["pointer"] for e in problem["errors"]] == ["/payload/legal_name"], (problem["detail"], problem["errors"])
    assert await stored() == before
