"""Hostile JWTs (DESIGN §4, §9): every bad token is 401 ``unauthenticated``, a valid one without the
right is 403 ``forbidden``, never a 5xx, and a refused call does nothing.

Service tokens are attacked on the hub's ``POST /federation/v1/notify`` (a node's token; an accepted
notify starts a pull, so "did nothing" = the fake node saw no feed request) and user tokens on the hub
admin's ``POST /api/v1/sync`` (an accepted call pulls every node). The node's feed is attacked too.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from federation.keys import generate_private_key, kid_for, public_key_raw
from federation.tokens import issue_service_token, issue_user_token
from node.context import utc_now
from tests.adversarial.conftest import Client, FakeNode, Hub, MakeFakeNode
from tests.integration.support import MINIMAL_ORG, Instance, expect_problem

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
BOTH = pytest.mark.parametrize(
    "db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def forge(header: dict[str, Any], claims: dict[str, Any], signer: Callable[[bytes], bytes] | None = None) -> str:
    """A JWT built by hand (PyJWT refuses to make several of these)."""
    head = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    return head + "." + b64(signer(head.encode()) if signer else b"")


def hs256(secret: bytes) -> Callable[[bytes], bytes]:
    return lambda msg: hmac.new(secret, msg, hashlib.sha256).digest()


def eddsa(key: Ed25519PrivateKey) -> Callable[[bytes], bytes]:
    return key.sign


def service_claims(iss: str, aud: str = "hub", ttl: int = 60, iat: int | None = None, **extra: Any) -> dict[str, Any]:
    now = int(time.time()) if iat is None else iat
    return {"iss": iss, "aud": aud, "iat": now, "exp": now + ttl, "jti": uuid.uuid4().hex, "typ": "service", **extra}


# -- service tokens of a node, at the hub -------------------------------------------------------------


def service_token_cases(de: FakeNode) -> dict[str, str]:
    """Every way a service token from "DE" can be wrong, built with what an attacker may hold."""
    pem = de.key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    stranger = generate_private_key()
    now = int(time.time())
    return {
        "alg none": forge({"alg": "none", "typ": "JWT", "kid": de.kid}, service_claims("DE")),
        "alg None (case)": forge({"alg": "None", "typ": "JWT", "kid": de.kid}, service_claims("DE")),
        "HS256 with the node's raw public key": forge(
            {"alg": "HS256", "kid": de.kid}, service_claims("DE"), hs256(public_key_raw(de.key))),
        "HS256 with the node's PEM public key": forge({"alg": "HS256", "kid": de.kid}, service_claims("DE"), hs256(pem)),
        "expired": forge({"alg": "EdDSA", "kid": de.kid}, service_claims("DE", iat=now - 600, ttl=120), eddsa(de.key)),
        "issued in the future": forge({"alg": "EdDSA", "kid": de.kid}, service_claims("DE", iat=now + 600),
                                      eddsa(de.key)),
        "lifetime over 5 minutes": forge({"alg": "EdDSA", "kid": de.kid}, service_claims("DE", ttl=3600),
                                         eddsa(de.key)),
        "wrong aud (another node)": de.service_token(audience="node:FR"),
        "wrong iss (not the kid's country)": forge({"alg": "EdDSA", "kid": de.kid}, service_claims("FR"),
                                                   eddsa(de.key)),
        "iss hub from a node key": forge({"alg": "EdDSA", "kid": de.kid}, service_claims("hub"), eddsa(de.key)),
        "unknown kid": issue_service_token(stranger, kid_for("DE", public_key_raw(stranger)), "DE", "hub",
                                           de.clock()),
        "stranger's signature under the node's kid": forge({"alg": "EdDSA", "kid": de.kid}, service_claims("DE"),
                                                          eddsa(stranger)),
        "no kid": forge({"alg": "EdDSA"}, service_claims("DE"), eddsa(de.key)),
        "kid of 2k characters": forge({"alg": "EdDSA", "kid": "DE:" + "A" * 2_000}, service_claims("DE"),
                                       eddsa(de.key)),
        "typ user": forge({"alg": "EdDSA", "kid": de.kid}, {**service_claims("DE"), "typ": "user"}, eddsa(de.key)),
        "exp as a string": forge({"alg": "EdDSA", "kid": de.kid},
                                 {**service_claims("DE"), "exp": str(now + 60)}, eddsa(de.key)),
        "claims not an object": forge({"alg": "EdDSA", "kid": de.kid}, [1, 2], eddsa(de.key)),  # type: ignore[arg-type]
        "garbage": "not-a-jwt",
        "two dots of garbage": "a.b.c",
        "empty signature": de.service_token().rsplit(".", 1)[0] + ".",
        "truncated signature": de.service_token()[:-10],
    }


@BOTH
async def test_bad_service_tokens_are_401_and_do_nothing(hub: Hub, fake_node: MakeFakeNode) -> None:
    de = await fake_node("DE")
    for case, token in service_token_cases(de).items():
        resp = await hub.client.post("/federation/v1/notify", headers={"Authorization": f"Bearer {token}"})
        body = await expect_problem(resp, 401, "unauthenticated")
        assert body["code"] == "unauthenticated", case
    await asyncio.sleep(0.05)
    assert de.requests == [], "a refused notify started a pull"
    # the node's own, correct token works: the refusals were about the tokens
    resp = await hub.client.post("/federation/v1/notify", headers=de.auth())
    assert resp.status == 202


@BOTH
async def test_regression_nul_in_a_token_kid_is_401_not_500(hub: Hub, fake_node: MakeFakeNode) -> None:
    """Regression: the hub looked the unverified header's kid up in SQL; on PostgreSQL a NUL character
    in it failed the query: a 500 for anybody, no key needed. Fixed in ``node/services/trust.py:service_key``
    (a malformed kid names no key)."""
    de = await fake_node("DE")
    for kid in ("DE:\u0000", "\u0000", "DE:AAAAAAAAAAAAAAA\u0000"):
        token = forge({"alg": "EdDSA", "kid": kid}, service_claims("DE"), eddsa(de.key))
        for method, path in (("POST", "/federation/v1/notify"), ("GET", "/federation/v1/quarantine")):
            resp = await hub.client.request(method, path, headers={"Authorization": f"Bearer {token}"})
            await expect_problem(resp, 401, "unauthenticated")
    assert de.requests == []


@BOTH
async def test_regression_overlong_jti_is_401_not_500(hub: Hub, fake_node: MakeFakeNode) -> None:
    """Regression: a correctly signed service token whose jti exceeded the replay table's column
    (128 chars) was a 500 on every service route. Fixed in ``federation/tokens.py:_decode``: a jti is at
    most ``MAX_JTI_CHARS`` (64) characters, for every kind of token."""
    de = await fake_node("DE")
    for jti in ("j" * 65, "j" * 200, "j" * 4000):
        resp = await hub.client.post("/federation/v1/notify", headers=de.auth(jti=jti))
        await expect_problem(resp, 401, "unauthenticated")
    assert (await hub.client.post("/federation/v1/notify", headers=de.auth(jti="j" * 64))).status == 202


@SQLITE
async def test_replayed_service_token_is_401(hub: Hub, fake_node: MakeFakeNode) -> None:
    de = await fake_node("DE")
    token = de.service_token()
    headers = {"Authorization": f"Bearer {token}"}
    assert (await hub.client.get("/federation/v1/quarantine", headers=headers)).status == 200
    await expect_problem(await hub.client.get("/federation/v1/quarantine", headers=headers), 401, "unauthenticated")
    await expect_problem(await hub.client.post("/federation/v1/notify", headers=headers), 401, "unauthenticated")


@SQLITE
async def test_revoked_or_suspended_node_tokens_are_refused_with_the_reason(hub: Hub, fake_node: MakeFakeNode) -> None:
    """Regression: both were 401 "unknown key DE:…", so a node could not tell what happened to it. A
    revoked key is 401 saying it was revoked; a suspended node (its token valid) is 403 saying it is
    suspended — on every route a node calls — while a forged token naming it stays 401."""
    de, fr = await fake_node("DE"), await fake_node("FR")
    await hub.context.hub.revoke_key(de.kid)
    await hub.context.hub.set_node("FR", status="suspended")
    body = await expect_problem(await hub.client.post("/federation/v1/notify", headers=de.auth()), 401,
                                "unauthenticated")
    assert f"key {de.kid} was revoked at" in body["detail"] and body["reason"] == "key_revoked"
    for method, path in (("POST", "/federation/v1/notify"), ("GET", "/federation/v1/quarantine"),
                         ("POST", "/federation/v1/keys/rotate")):
        body = await expect_problem(await hub.client.request(method, path, headers=fr.auth(), json={}), 403,
                                    "forbidden")
        assert "FR is suspended" in body["detail"] and body["reason"] == "node_suspended", path
    forged = forge({"alg": "EdDSA", "typ": "JWT", "kid": fr.kid}, service_claims("FR"), eddsa(generate_private_key()))
    body = await expect_problem(await hub.client.post("/federation/v1/notify",
                                                      headers={"Authorization": f"Bearer {forged}"}),
                                401, "unauthenticated")
    assert "suspended" not in body["detail"]
    await asyncio.sleep(0.05)
    assert de.requests == fr.requests == []


@SQLITE
async def test_token_of_a_node_never_enrolled_is_401(hub: Hub, fake_node: MakeFakeNode) -> None:
    se = await fake_node("SE", enroll=False)
    await expect_problem(await hub.client.post("/federation/v1/notify", headers=se.auth()), 401, "unauthenticated")


@SQLITE
async def test_valid_tokens_on_the_wrong_route_are_403(hub: Hub, fake_node: MakeFakeNode) -> None:
    de = await fake_node("DE")
    # a node's service token on the hub admin's route; the hub's own user tokens on a node-only route
    await expect_problem(await hub.client.post("/api/v1/sync", headers=de.auth()), 403, "forbidden")
    await expect_problem(await hub.client.post("/federation/v1/notify", headers=hub.admin()), 403, "forbidden")
    # an analyst is not an admin; a node cannot ask for another node's pull
    await expect_problem(await hub.client.post("/api/v1/sync", headers=hub.instance.auth("analyst")), 403,
                         "forbidden")
    resp = await hub.client.post("/federation/v1/notify", json={"country": "FR"}, headers=de.auth())
    await expect_problem(resp, 403, "forbidden")
    await asyncio.sleep(0.05)
    assert de.requests == []


# -- user tokens at the hub --------------------------------------------------------------------------


def user_claims(instance: str = "hub", role: str = "admin", iat: int | None = None, ttl: int = 3600) -> dict[str, Any]:
    now = int(time.time()) if iat is None else iat
    return {"iss": instance, "aud": instance, "sub": "mallory", "role": role, "iat": now, "exp": now + ttl,
            "jti": uuid.uuid4().hex, "typ": "user"}


@BOTH
async def test_bad_user_tokens_are_401_and_pull_nothing(
    hub: Hub, fake_node: MakeFakeNode, make_instance: Callable[..., Instance]
) -> None:
    de = await fake_node("DE")
    hub_key = hub.instance.key
    real = hub.instance.tokens["admin"]
    pem = hub_key.public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    cases = {
        "alg none": forge({"alg": "none", "kid": hub_key.kid}, user_claims()),
        "HS256 with the hub's PEM public key": forge({"alg": "HS256", "kid": hub_key.kid}, user_claims(), hs256(pem)),
        "HS256 with the hub's raw public key": forge({"alg": "HS256", "kid": hub_key.kid}, user_claims(),
                                                     hs256(hub_key.public_raw)),
        "expired": issue_user_token(hub_key.private_key, hub_key.kid, "hub", "admin", "x",
                                    hub.clock() - timedelta(days=2), 3600, uuid.uuid4().hex),
        "wrong aud": forge({"alg": "EdDSA", "kid": hub_key.kid}, {**user_claims(), "aud": "node:DE"},
                           eddsa(hub_key.private_key)),
        "wrong iss": forge({"alg": "EdDSA", "kid": hub_key.kid}, {**user_claims(), "iss": "node:DE"},
                           eddsa(hub_key.private_key)),
        "hub-signed but never issued (unknown jti)": forge({"alg": "EdDSA", "kid": hub_key.kid},
                                                           user_claims(iat=now), eddsa(hub_key.private_key)),
        "role raised in a real token": ".".join([real.split(".")[0], b64(json.dumps(
            {**json.loads(base64.urlsafe_b64decode(real.split(".")[1] + "==")), "role": "superadmin"}).encode()),
            real.split(".")[2]]),
        "unknown kid": issue_user_token(generate_private_key(), "hub:AAAAAAAAAAAAAAAA", "hub", "admin", "x",
                                        hub.clock(), 3600, uuid.uuid4().hex),
        "garbage": "garbage",
        "empty bearer": "",
    }
    for case, token in cases.items():
        resp = await hub.client.post("/api/v1/sync", headers={"Authorization": f"Bearer {token}"})
        body = await expect_problem(resp, 401, "unauthenticated")
        assert body["code"] == "unauthenticated", case
    assert de.requests == [], "a refused sync pulled"
    assert (await hub.client.post("/api/v1/sync", headers=hub.admin())).status == 200
    assert len(de.requests) == 1


@SQLITE
async def test_admin_token_expires_with_the_hub_clock(hub: Hub, fake_node: MakeFakeNode) -> None:
    de = await fake_node("DE")
    hub.clock.advance(days=31)  # `ncc token create` tokens live 30 days
    await expect_problem(await hub.client.post("/api/v1/sync", headers=hub.admin()), 401, "unauthenticated")
    assert de.requests == []


# -- the node's feed: only the hub may read it -------------------------------------------------------


async def test_node_feed_refuses_every_token_but_the_hubs(client: Client, node: Instance) -> None:
    """The DE node (not enrolled: it holds no hub key) refuses tokens of other instances, its own user
    tokens (403) and garbage; nothing of its feed leaks."""
    resp = await client.post("/api/v1/records", headers=node.auth("editor"),
                             json={"type": "organisation", "payload": MINIMAL_ORG})
    assert resp.status == 201
    fr_key = generate_private_key()
    fr_kid = kid_for("FR", public_key_raw(fr_key))
    hub_like = generate_private_key()
    cases = {
        "another node's service token": issue_service_token(fr_key, fr_kid, "FR", "node:DE", utc_now()),
        "a self-made hub token": issue_service_token(hub_like, kid_for("hub", public_key_raw(hub_like)), "hub",
                                                     "node:DE", utc_now()),
        "alg none as the hub": forge({"alg": "none", "kid": "hub:AAAAAAAAAAAAAAAA"}, service_claims("hub", "node:DE")),
        "garbage": "x.y.z",
    }
    for case, token in cases.items():
        resp = await client.get("/federation/v1/changes", headers={"Authorization": f"Bearer {token}"})
        body = await expect_problem(resp, 401, "unauthenticated")
        assert "record" not in await resp.text(), case
        assert body["code"] == "unauthenticated"
    for role in ("admin", "editor", "reader"):
        await expect_problem(await client.get("/federation/v1/changes", headers=node.auth(role)), 403, "forbidden")
    await expect_problem(await client.get("/federation/v1/changes"), 401, "unauthenticated")
