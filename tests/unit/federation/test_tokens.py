"""Service, user and enrollment JWTs; enrollment proofs; rotation statements — and attacks on them."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fedkit import NOW, gen

from federation.errors import TokenInvalid
from federation.keys import b64url_encode, private_key_from_seed, public_key_raw
from federation.tokens import (
    enrollment_proof,
    issue_enrollment_token,
    issue_service_token,
    issue_user_token,
    make_rotation_statement,
    peek_enrollment_token,
    verify_enrollment_proof,
    verify_enrollment_token,
    verify_rotation_statement,
    verify_service_token,
    verify_user_token,
)

DE, DE_KID = gen.PRIV["DE-current"], gen.KID["DE-current"]
HUB, HUB_KID = gen.PRIV["hub"], gen.KID["hub"]
KEYS: dict[str, Ed25519PublicKey] = {DE_KID: DE.public_key(), HUB_KID: HUB.public_key()}


def resolve(kid: str) -> Ed25519PublicKey | None:
    return KEYS.get(kid)


def service(**kw: Any) -> str:
    args: dict[str, Any] = {"issuer": "DE", "audience": "hub", "now": NOW, **kw}
    return issue_service_token(DE, DE_KID, **args)


def raw_jwt(claims: dict[str, Any], key: Any = DE, kid: str = DE_KID, alg: str = "EdDSA") -> str:
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def claims(**kw: Any) -> dict[str, Any]:
    iat = int(NOW.timestamp())
    return {"iss": "DE", "aud": "hub", "iat": iat, "exp": iat + 60, "jti": "j", "typ": "service", **kw}


def test_service_token_round_trip() -> None:
    c = verify_service_token(service(jti="abc"), resolve, "hub", NOW + timedelta(seconds=30))
    assert c["iss"] == "DE" and c["aud"] == "hub" and c["jti"] == "abc" and c["kid"] == DE_KID
    assert c["exp"] - c["iat"] == 60
    assert service() != service()  # fresh jti each time


def _none_token() -> str:
    header = b64url_encode(json.dumps({"alg": "none", "kid": DE_KID}).encode())
    return f"{header}.{b64url_encode(json.dumps(claims()).encode())}."


def _hs256_with_public_key() -> str:
    return jwt.api_jws.PyJWS(algorithms=["HS256"]).encode(
        json.dumps(claims()).encode(), public_key_raw(DE), algorithm="HS256", headers={"kid": DE_KID}
    )


ATTACKS: dict[str, Any] = {
    "alg-none": _none_token,
    "hs256-public-key-as-secret": _hs256_with_public_key,
    "garbage": lambda: "garbage",
    "empty": lambda: "",
    "two-parts": lambda: "a.b",
    "expired": lambda: service(now=NOW - timedelta(seconds=91)),
    "issued-in-future": lambda: service(now=NOW + timedelta(minutes=2)),
    "wrong-audience": lambda: service(audience="FR"),
    "issuer-not-kid-country": lambda: raw_jwt(claims(iss="FR")),
    "wrong-typ": lambda: raw_jwt(claims(typ="user")),
    "missing-typ": lambda: raw_jwt({k: v for k, v in claims().items() if k != "typ"}),
    "missing-jti": lambda: raw_jwt({k: v for k, v in claims().items() if k != "jti"}),
    "missing-exp": lambda: raw_jwt({k: v for k, v in claims().items() if k != "exp"}),
    "missing-iat": lambda: raw_jwt({k: v for k, v in claims().items() if k != "iat"}),
    "empty-jti": lambda: raw_jwt(claims(jti="")),
    "lifetime-301s": lambda: raw_jwt(claims(exp=int(NOW.timestamp()) + 301)),
    "exp-before-iat": lambda: raw_jwt(claims(exp=int(NOW.timestamp()) - 1)),
    "float-exp": lambda: raw_jwt(claims(exp=int(NOW.timestamp()) + 60.5)),
    "nbf-in-future": lambda: raw_jwt(claims(nbf=int(NOW.timestamp()) + 120)),
    "aud-list": lambda: raw_jwt(claims(aud=["hub", "FR"])),
    "unknown-kid": lambda: issue_service_token(gen.PRIV["DE-unlisted"], gen.KID["DE-unlisted"], "DE", "hub", NOW),
    "no-kid": lambda: jwt.encode(claims(), DE, algorithm="EdDSA"),
    "signed-by-other-key": lambda: raw_jwt(claims(), key=gen.PRIV["FR-current"]),
    "user-token": lambda: issue_user_token(DE, DE_KID, "hub", "admin", "alice", NOW, 60, "u1"),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_service_token_attacks_fail_unauthenticated(name: str) -> None:
    token = ATTACKS[name]()
    with pytest.raises(TokenInvalid) as info:
        verify_service_token(token, resolve, "hub", NOW)
    assert info.value.code == "unauthenticated"


def test_issue_service_token_guards() -> None:
    with pytest.raises(ValueError):
        issue_service_token(DE, DE_KID, "FR", "hub", NOW)
    with pytest.raises(ValueError):
        issue_service_token(DE, DE_KID, "DE", "hub", NOW, ttl_s=301)
    with pytest.raises(ValueError):
        issue_service_token(DE, DE_KID, "DE", "hub", NOW.replace(tzinfo=None))


def test_user_token_round_trip_and_instance_binding() -> None:
    token = issue_user_token(HUB, HUB_KID, "https://hub.example.eu", "analyst", "bob", NOW, 30 * 86400, "u-1")
    c = verify_user_token(token, HUB.public_key(), "https://hub.example.eu", NOW + timedelta(days=29))
    assert c["role"] == "analyst" and c["sub"] == "bob" and c["jti"] == "u-1"
    with pytest.raises(TokenInvalid):  # another instance's token
        verify_user_token(token, HUB.public_key(), "https://ncc-de.example.eu", NOW)
    with pytest.raises(TokenInvalid):  # another instance's key
        verify_user_token(token, DE.public_key(), "https://hub.example.eu", NOW)
    with pytest.raises(TokenInvalid, match="expired"):
        verify_user_token(token, HUB.public_key(), "https://hub.example.eu", NOW + timedelta(days=31))
    with pytest.raises(TokenInvalid):  # a service token is not a user token
        verify_user_token(service(audience="hub"), DE.public_key(), "hub", NOW)
    with pytest.raises(ValueError):
        issue_user_token(HUB, HUB_KID, "i", "admin", "s", NOW, 0, "j")


def test_enrollment_token_flow() -> None:
    token = issue_enrollment_token(HUB, HUB_KID, "FR", NOW, "jti-1", hub_url="https://hub.example.eu")
    peeked = peek_enrollment_token(token)
    assert peeked["jti"] == "jti-1" and peeked["hub_kid"] == HUB_KID and peeked["hub_url"] == "https://hub.example.eu"
    c = verify_enrollment_token(token, {HUB_KID: HUB.public_key()}, NOW + timedelta(hours=23))
    assert c["sub"] == "FR" and c["iss"] == "ncc-hub" and c["aud"] == "ncc-enroll"
    with pytest.raises(TokenInvalid, match="expired"):
        verify_enrollment_token(token, {HUB_KID: HUB.public_key()}, NOW + timedelta(hours=25))
    with pytest.raises(TokenInvalid, match="unknown hub key"):
        verify_enrollment_token(token, {}, NOW)


def test_forged_enrollment_tokens() -> None:
    iat = int(NOW.timestamp())
    base = {"iss": "ncc-hub", "aud": "ncc-enroll", "sub": "FR", "iat": iat, "exp": iat + 60, "jti": "j",
            "typ": "enroll", "hub_kid": HUB_KID}
    keys = {HUB_KID: HUB.public_key()}
    forged = [
        raw_jwt(base, key=DE, kid=HUB_KID),  # signed by a node key under the hub's kid
        raw_jwt({**base, "hub_kid": DE_KID}, key=HUB, kid=HUB_KID),  # claim and header disagree
        raw_jwt({**base, "exp": iat + 86401}, key=HUB, kid=HUB_KID),  # longer than 24 h
        raw_jwt({**base, "typ": "service"}, key=HUB, kid=HUB_KID),
        raw_jwt({**base, "aud": "hub"}, key=HUB, kid=HUB_KID),
        raw_jwt({**base, "iss": "DE"}, key=HUB, kid=HUB_KID),
    ]
    for token in forged:
        with pytest.raises(TokenInvalid):
            verify_enrollment_token(token, keys, NOW)
    with pytest.raises(ValueError):
        issue_enrollment_token(HUB, HUB_KID, "FR", NOW, "j", ttl_s=86401)


@pytest.mark.parametrize("token", ["", "x.y.z", "a.b"])
def test_peek_rejects_garbage(token: str) -> None:
    with pytest.raises(TokenInvalid):
        peek_enrollment_token(token)


def test_peek_rejects_non_enrollment_tokens() -> None:
    with pytest.raises(TokenInvalid):
        peek_enrollment_token(service())
    iat = int(NOW.timestamp())
    with pytest.raises(TokenInvalid):
        peek_enrollment_token(raw_jwt({"typ": "enroll", "jti": "j", "hub_kid": "nonsense", "iat": iat}))


def test_enrollment_proof() -> None:
    node = gen.PRIV["FR-current"]
    proof = enrollment_proof(node, "jti-1")
    verify_enrollment_proof(public_key_raw(node), "jti-1", proof)
    for raw, jti, p in [
        (public_key_raw(node), "jti-2", proof),
        (public_key_raw(DE), "jti-1", proof),
        (public_key_raw(node), "jti-1", proof + "A"),
        (b"short", "jti-1", proof),
        (public_key_raw(node), "jti-1", "!!"),
    ]:
        with pytest.raises(TokenInvalid):
            verify_enrollment_proof(raw, jti, p)


def test_rotation_statement() -> None:
    old, old_kid = gen.PRIV["DE-old"], gen.KID["DE-old"]
    new_raw = gen.RAW["DE-current"]
    stmt = make_rotation_statement(old, old_kid, new_raw, "DE", NOW)
    assert verify_rotation_statement(stmt, old.public_key()) == (gen.KID["DE-current"], new_raw)
    other = private_key_from_seed(b"\x09" * 32)
    bad: list[tuple[Any, Any]] = [
        ({**stmt, "new_public_key": b64url_encode(public_key_raw(other))}, old.public_key()),
        ({**stmt, "country": "FR"}, old.public_key()),
        ({**stmt, "extra": 1}, old.public_key()),
        ({k: v for k, v in stmt.items() if k != "sig"}, old.public_key()),
        ({**stmt, "sig": {**stmt["sig"], "kid": gen.KID["DE-current"]}}, old.public_key()),
        ({**stmt, "issued_at": "now"}, old.public_key()),
        (stmt, DE.public_key()),  # verified against a key that is not old_kid
        (make_rotation_statement(DE, old_kid, new_raw, "DE", NOW), old.public_key()),  # signed by the wrong key
        (make_rotation_statement(old, old_kid, public_key_raw(old), "DE", NOW), old.public_key()),  # no-op rotation
        ("not a dict", old.public_key()),
    ]
    for s, key in bad:
        with pytest.raises(TokenInvalid):
            verify_rotation_statement(s, key)
