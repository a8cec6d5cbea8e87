"""Hostile request bodies (DESIGN §9) at the node's ``POST /api/v1/records`` (as an editor) and the hub's
``POST /federation/v1/enroll`` (unauthenticated, so the first thing the internet reaches): the exact
status and code, nothing stored, never a 5xx.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.adversarial.conftest import Client, Hub, MakeFakeNode, org_payload
from tests.adversarial.test_enroll_attacks import hub_state
from tests.integration.support import MINIMAL_ORG, Instance, expect_problem, stored

MIB = 1024 * 1024


def create(payload: Any = None, **fields: Any) -> bytes:
    doc = {"type": "organisation", "visibility": "public", "payload": MINIMAL_ORG if payload is None else payload}
    doc.update(fields)
    return json.dumps(doc).encode()


def nested(depth: int) -> bytes:
    """A create body whose deepest container is at ``depth``."""
    inner = "[" * (depth - 2) + "]" * (depth - 2)
    return b'{"type": "organisation", "payload": {"legal_name": "X", "keywords": ' + inner.encode() + b"}}"


def in_name(raw_json_value: bytes) -> bytes:
    """A valid create body whose ``legal_name`` is the given raw JSON text."""
    return create().replace(b'"Cyber Lab GmbH"', raw_json_value, 1)


#: name → (body bytes, status, code). The same bytes are tried on the hub's enroll endpoint.
HOSTILE: dict[str, tuple[bytes, int, str]] = {
    "10k-deep nesting": (nested(10_000), 400, "malformed_json"),
    "100k-deep nesting": (b"[" * 100_000 + b"]" * 100_000, 400, "malformed_json"),
    "nesting 65": (nested(65), 400, "malformed_json"),
    "duplicate JSON keys": (b'{"type": "organisation", "type": "expert", "payload": {}}', 400, "malformed_json"),
    "duplicate keys in the payload": (create()[:-2] + b', "legal_name": "Twice"}}', 400, "malformed_json"),
    "NaN": (in_name(b"NaN"), 400, "malformed_json"),
    "Infinity": (in_name(b"Infinity"), 400, "malformed_json"),
    "-Infinity": (in_name(b"-Infinity"), 400, "malformed_json"),
    "invalid UTF-8": (in_name(b'"Cyber \xff\xfe Lab"'), 400, "malformed_json"),
    "overlong UTF-8 encoding of /": (in_name(b'"\xc0\xaf"'), 400, "malformed_json"),
    "UTF-8 encoded surrogate": (in_name(b'"\xed\xa0\x80"'), 400, "malformed_json"),
    "empty body": (b"", 400, "malformed_json"),
    "byte order mark": (b"\xef\xbb\xbf" + create(), 400, "malformed_json"),
    "trailing garbage": (create() + b"x", 400, "malformed_json"),
    "integer beyond 2^53": (in_name(b"9007199254740992"), 422, "canonicalization_error"),
    "negative integer beyond 2^53": (in_name(b"-9007199254740993"), 422, "canonicalization_error"),
    "integer of 5000 digits": (in_name(b"9" * 5000), 400, "malformed_json"),
    "float overflowing a double": (in_name(b"1e400"), 422, "canonicalization_error"),
    "lone high surrogate": (in_name(b'"\\ud800"'), 422, "canonicalization_error"),
    "lone low surrogate": (in_name(b'"x\\udfffy"'), 422, "canonicalization_error"),
    "lone surrogate in a key": (create()[:-2] + b', "\\ud83d": 1}}', 422, "canonicalization_error"),
}

#: Only for the node: bodies that are JSON but wrong for a record.
NODE_ONLY: dict[str, tuple[bytes, int, str]] = {
    "not an object": (b"[]", 422, "schema_invalid"),
    "schema-invalid payload": (create(org_payload("DE", legal_name=None)), 422, "schema_invalid"),
    "unknown vocabulary id": (create(org_payload("DE", subdomains=["cry.999"])), 422, "schema_invalid"),
    "vocabulary id of the wrong kind": (create(org_payload("DE", sectors=["cry.10"])), 422, "schema_invalid"),
    "unknown type": (create(type="../organisation"), 422, "schema_invalid"),
    "unknown visibility": (create(visibility="everyone"), 422, "schema_invalid"),
    "a node publishing a record of another country": (create(org_payload("FR")), 422, "schema_invalid"),
    "client-chosen id": (create(id="urn:ncc:DE:organisation:0b9e2c8e-4f0a-4f57-9d36-1c8f4c1d2a11"), 422,
                         "schema_invalid"),
    "client-chosen origin and signature": (create(origin="FR", sig={"alg": "none"}), 422, "schema_invalid"),
    "expert made public without consent": (json.dumps({"type": "expert", "visibility": "public", "payload": {
        "name": "Erika Mustermann", "country": "DE", "consent": {"given": False}}}).encode(), 422, "consent_missing"),
}


def headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"Content-Type": "application/json", **(extra or {})}


async def test_hostile_bodies_at_the_node(client: Client, node: Instance) -> None:
    """Every case of ``HOSTILE`` and ``NODE_ONLY``, one node per backend (a node per case costs seconds)."""
    before = await stored()
    for case, (data, status, code) in {**HOSTILE, **NODE_ONLY}.items():
        resp = await client.post("/api/v1/records", data=data, headers=headers(node.auth("editor")))
        body = await expect_problem(resp, status, code)
        assert body["code"] == code, case
        assert await stored() == before, case


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_hostile_bodies_at_the_hub_enroll(hub: Hub, fake_node: MakeFakeNode) -> None:
    await fake_node("DE")
    before = await hub_state()
    for case, (data, status, code) in HOSTILE.items():
        resp = await hub.client.post("/federation/v1/enroll", data=data, headers=headers())
        body = await expect_problem(resp, status, code)
        assert body["code"] == code, case
    assert await hub_state() == before


# -- size -----------------------------------------------------------------------------------------------


async def chunks(total: int) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * 65536
        sent += 65536


async def oversize_requests(client: Client, path: str, auth: dict[str, str]) -> None:
    big = create(org_payload("DE", description="x" * (MIB + 1)))
    await expect_problem(await client.post(path, data=big, headers=headers(auth)), 413, "payload_too_large")
    # no Content-Length (chunked): the limit is counted while reading
    await expect_problem(await client.post(path, data=chunks(2 * MIB), headers=headers(auth)), 413,
                         "payload_too_large")
    # a gzip bomb: 5 KiB on the wire, 5 MiB once inflated
    bomb = gzip.compress(b'{"a": "' + b"a" * (5 * MIB) + b'"}')
    assert len(bomb) < 10_000
    await expect_problem(
        await client.post(path, data=bomb, headers=headers({**auth, "Content-Encoding": "gzip"})), 413,
        "payload_too_large")
    # a Content-Length that lies upwards is refused before reading
    resp = await client.post(path, data=b"{}", headers=headers({**auth, "Content-Length": str(10 * MIB)}))
    assert resp.status in (400, 413) and resp.status < 500


async def test_oversize_bodies_at_the_node_are_413(client: Client, node: Instance) -> None:
    before = await stored()
    await oversize_requests(client, "/api/v1/records", node.auth("editor"))
    assert await stored() == before


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_oversize_bodies_at_the_hub_are_413(hub: Hub) -> None:
    before = await hub_state()
    await oversize_requests(hub.client, "/federation/v1/enroll", {})
    assert await hub_state() == before


async def test_regression_nul_character_in_a_payload_is_schema_invalid(client: Client, node: Instance) -> None:
    """Regression (found here, fixed in 3ccfecc by the protocol: strings holding U+0000 are
    ``schema_invalid``): a JSON ``\\u0000`` in a legal name reached the PostgreSQL search index and was
    a 500."""
    before = await stored()
    resp = await client.post("/api/v1/records", data=in_name(b'"Cyber\\u0000Lab"'),
                             headers=headers(node.auth("editor")))
    await expect_problem(resp, 422, "schema_invalid")
    assert await stored() == before
