"""Who may do what (DESIGN §4, §9): roles, and every kind of bad token is 401 ``unauthenticated``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from federation.keys import generate_private_key, kid_for, public_key_raw
from federation.tokens import issue_service_token, issue_user_token
from tests.integration.conftest import MakeInstance
from tests.integration.support import MINIMAL_ORG, Instance, expect_problem, run_cli, stored

Client = TestClient[Any, Any]
MISSING_ID = "urn:ncc:DE:organisation:0b9e2c8e-4f0a-4f57-9d36-1c8f4c1d2a11"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def claims_of(token: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))  # type: ignore[no-any-return]


def forge(header: dict[str, Any], claims: dict[str, Any], signer: Any = None) -> str:
    """A JWT built by hand (PyJWT refuses to make some of these)."""
    head = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    sig = signer(head.encode()) if signer else b""
    return head + "." + b64(sig)


async def writes(client: Client, headers: dict[str, str]) -> list[Any]:
    """One attempt at each write route."""
    url = f"/api/v1/records/{MISSING_ID}"
    return [
        await client.post(
            "/api/v1/records", json={"type": "organisation", "payload": MINIMAL_ORG}, headers=headers
        ),
        await client.put(url, json={"payload": MINIMAL_ORG, "version": 1}, headers=headers),
        await client.delete(url, headers=headers),
    ]


async def test_reader_gets_403_on_every_write(client: Client, node: Instance) -> None:
    before = await stored()
    for resp in await writes(client, node.auth("reader")):
        await expect_problem(resp, 403, "forbidden")
    assert await stored() == before


async def test_no_token_gets_401_on_every_write(client: Client, node: Instance) -> None:
    before = await stored()
    for resp in await writes(client, {}):
        body = await expect_problem(resp, 401, "unauthenticated")
        assert body["instance"].startswith("/api/v1/records")
    assert await stored() == before


async def test_reads_are_open_to_anonymous_and_token_holders(client: Client, node: Instance) -> None:
    for headers in ({}, node.auth("reader"), node.auth("editor"), node.auth("admin")):
        assert (await client.get("/api/v1/records", headers=headers)).status == 200


@pytest.fixture
def strangers(make_instance: MakeInstance, node: Instance) -> list[Instance]:
    """Other instances: FR, and another DE instance (same country, its own key)."""
    return [make_instance("FR"), make_instance("DE")]


async def test_user_token_of_another_instance_is_401(
    node: Instance, strangers: list[Instance], app_client: Any
) -> None:
    de = node
    client = await app_client(de)
    for foreign in strangers:
        for role in ("admin", "editor", "reader"):
            for resp in await writes(client, foreign.auth(role)):
                await expect_problem(resp, 401, "unauthenticated")
            await expect_problem(
                await client.get("/api/v1/records", headers=foreign.auth(role)), 401, "unauthenticated"
            )
    # the instance's own tokens work, so the refusals above were about the foreign ones
    resp = await client.post(
        "/api/v1/records", json={"type": "organisation", "payload": MINIMAL_ORG}, headers=de.auth("editor")
    )
    assert resp.status == 201


def test_token_revoke_of_unknown_jti_fails(node: Instance) -> None:
    code, _, err = run_cli("token", "revoke", "--data-dir", str(node.data_dir), "0" * 32)
    assert code == 1 and err.count("\n") == 1 and "0" * 32 in err


@pytest.fixture
def revoked(node: Instance) -> Instance:
    node.add_token("editor", "revoked")
    code, out, err = run_cli("token", "revoke", "--data-dir", str(node.data_dir), node.jtis["revoked"])
    assert code == 0, err
    assert node.jtis["revoked"] in out
    # revoking twice is a failure: there is no active token with that jti any more
    code, _, err = run_cli("token", "revoke", "--data-dir", str(node.data_dir), node.jtis["revoked"])
    assert code == 1 and err.strip()
    return node


async def test_revoked_token_is_401(revoked: Instance, app_client: Any) -> None:
    client = await app_client(revoked)
    before = await stored()
    for resp in await writes(client, revoked.auth("revoked")):
        await expect_problem(resp, 401, "unauthenticated")
    await expect_problem(
        await client.get("/api/v1/records", headers=revoked.auth("revoked")), 401, "unauthenticated"
    )
    assert await stored() == before
    # the other tokens of the instance are unaffected
    assert (await client.get("/api/v1/records", headers=revoked.auth("editor"))).status == 200


def bad_tokens(node: Instance) -> dict[str, str]:
    """Every kind of token the node must refuse, keyed by what is wrong with it."""
    key = node.key
    good = node.tokens["admin"]
    claims = claims_of(good)
    now = datetime.now(UTC).replace(microsecond=0)
    raw_pub = key.public_raw
    pem_pub = key.public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    other = generate_private_key()
    head, body, _ = good.split(".")
    return {
        "alg none": forge({"alg": "none", "typ": "JWT", "kid": key.kid}, claims),
        "alg none, signature kept": forge({"alg": "none", "kid": key.kid}, claims) + good.split(".")[2],
        "alg NONE": forge({"alg": "NONE", "kid": key.kid}, claims),
        "HS256 with the raw public key": forge(
            {"alg": "HS256", "typ": "JWT", "kid": key.kid},
            claims,
            lambda m: hmac.new(raw_pub, m, hashlib.sha256).digest(),
        ),
        "HS256 with the PEM public key": forge(
            {"alg": "HS256", "typ": "JWT", "kid": key.kid},
            claims,
            lambda m: hmac.new(pem_pub, m, hashlib.sha256).digest(),
        ),
        "HS512 with the kid": forge(
            {"alg": "HS512", "kid": key.kid},
            claims,
            lambda m: hmac.new(key.kid.encode(), m, hashlib.sha512).digest(),
        ),
        "RS256 header on an EdDSA signature": forge({"alg": "RS256", "kid": key.kid}, claims)
        + good.split(".")[2],
        "expired": issue_user_token(
            key.private_key, key.kid, "node:DE", "admin", "x", now - timedelta(days=2), 86400, claims["jti"]
        ),
        "issued in the future": issue_user_token(
            key.private_key, key.kid, "node:DE", "admin", "x", now + timedelta(days=1), 86400, claims["jti"]
        ),
        "wrong audience": issue_user_token(
            key.private_key, key.kid, "node:FR", "admin", "x", now, 3600, claims["jti"]
        ),
        "signed by another key with our kid": issue_user_token(
            other, key.kid, "node:DE", "admin", "x", now, 3600, claims["jti"]
        ),
        "signed by another key, its own kid": issue_user_token(
            other, kid_for("DE", public_key_raw(other)), "node:DE", "admin", "x", now, 3600, claims["jti"]
        ),
        "never issued (unknown jti)": issue_user_token(
            key.private_key, key.kid, "node:DE", "admin", "x", now, 3600, uuid.uuid4().hex
        ),
        "role raised in a re-signed token": issue_user_token(
            key.private_key,
            key.kid,
            "node:DE",
            "admin",
            "x",
            now,
            3600,
            claims_of(node.tokens["reader"])["jti"],
        ),
        "role not of this instance": issue_user_token(
            key.private_key, key.kid, "node:DE", "analyst", "x", now, 3600, claims["jti"]
        ),
        "payload tampered": head
        + "."
        + b64(json.dumps({**claims, "role": "admin", "sub": "evil"}).encode())
        + "."
        + good.split(".")[2],
        "signature stripped": head + "." + body + ".",
        "signature of another token": head + "." + body + "." + node.tokens["reader"].split(".")[2],
        "service token from an unknown instance": issue_service_token(
            other, kid_for("hub", public_key_raw(other)), "hub", "node:DE", now
        ),
        "garbage": "garbage",
        "two dots": "..",
        "empty segments": "a..b",
        "not base64": "@@@.@@@.@@@",
        "header not an object": b64(b"[]") + "." + body + "." + b64(b"x" * 64),
        "claims not an object": head + "." + b64(b"[1]") + "." + b64(b"x" * 64),
        "very long": "a" * 8000,
        "unicode": "jöt.ẃé.ïrd",
    }


async def test_bad_tokens_are_401(client: Client, node: Instance) -> None:
    before = await stored()
    for name, token in bad_tokens(node).items():
        headers = {"Authorization": f"Bearer {token}"}
        for resp in await writes(client, headers):
            body = await resp.text()
            assert resp.status == 401, (name, body)
            assert json.loads(body)["code"] == "unauthenticated", (name, body)
        resp = await client.get("/api/v1/records", headers=headers)
        assert resp.status == 401, (name, await resp.text())
    assert await stored() == before


@pytest.mark.parametrize(
    "header", ["Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer ", "Token abc", "bearer", "", "Bearer a b"]
)
async def test_malformed_authorization_headers_are_401(client: Client, node: Instance, header: str) -> None:
    resp = await client.post(
        "/api/v1/records",
        json={"type": "organisation", "payload": MINIMAL_ORG},
        headers={"Authorization": header},
    )
    await expect_problem(resp, 401, "unauthenticated")


async def test_scheme_is_case_insensitive(client: Client, node: Instance) -> None:
    resp = await client.get("/api/v1/records", headers={"Authorization": "bEaReR " + node.tokens["reader"]})
    assert resp.status == 200


def test_token_create_rejects_unknown_role_and_bad_ttl(node: Instance) -> None:
    for extra in (("--role", "analyst"), ("--role", "root")):
        code, out, err = run_cli("token", "create", "--data-dir", str(node.data_dir), *extra)
        assert code == 1, (extra, out, err)
        assert err.count("\n") == 1 and out == ""
    for extra in (("--role", "editor", "--ttl", "forever"), ("--role", "editor", "--ttl", "0d")):
        code, out, err = run_cli("token", "create", "--data-dir", str(node.data_dir), *extra)
        assert code == 2 and "invalid duration" in err and out == "", (extra, out, err)  # a usage error


def test_token_ttl_is_honoured(node: Instance) -> None:
    token = node.add_token("reader", "short", "--ttl", "15m")
    claims = claims_of(token)
    assert claims["exp"] - claims["iat"] == 900
    assert (
        claims["iss"] == claims["aud"] == "node:DE" and claims["typ"] == "user" and claims["role"] == "reader"
    )
    default = claims_of(node.tokens["admin"])
    assert default["exp"] - default["iat"] == 30 * 86400
