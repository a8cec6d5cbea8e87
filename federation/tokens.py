"""Short-lived JWTs (EdDSA only), enrollment tokens and proofs, key-rotation statements.

Every JWT here is signed with an instance's Ed25519 key and decoded with ``algorithms=["EdDSA"]``
pinned, which refuses ``alg: none`` and HS*/public-key confusion. PyJWT's own clock is never used:
time checks run against the ``now`` passed in (``exp``/``iat`` are required integers,
``iat <= now + leeway``, ``now < exp + leeway``). Every failure raises
:class:`~federation.errors.TokenInvalid` (code ``unauthenticated``).

Replay protection is the caller's: verification returns the claims, and the caller records each
``jti`` until its ``exp`` and refuses one it has seen (an enrollment ``jti`` is single-use for good).
Because callers store them, a ``jti`` longer than ``MAX_JTI_CHARS`` (64) is refused like any bad claim.

Claims:

* service — ``iss`` (the caller: its country, or ``hub``; must equal the kid's prefix), ``aud`` (the
  callee), ``iat``, ``exp`` (``exp − iat ≤ 300 s``), ``jti``, ``typ: "service"``; header ``kid``.
* user — ``iss = aud = instance``, ``sub``, ``role``, ``iat``, ``exp``, ``jti``, ``typ: "user"``.
* enroll — ``iss: "ncc-hub"``, ``aud: "ncc-enroll"``, ``sub`` (country), ``iat``, ``exp``
  (``≤ 24 h``), ``jti``, ``typ: "enroll"``, ``hub_kid`` (the hub key's kid), optional ``hub_url``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from federation.canonical import canonicalize
from federation.errors import CanonicalizationError, TokenInvalid
from federation.keys import (
    b64url_decode,
    b64url_encode,
    key_fingerprint,
    kid_for,
    parse_kid,
    public_key_from_raw,
)
from federation.keys import (
    public_key_raw as _raw_public_key,
)
from federation.timefmt import format_timestamp, parse_timestamp

ALGORITHM = "EdDSA"
#: Longest lifetime of a service token (``exp − iat``).
MAX_SERVICE_TTL_S = 300
#: Longest lifetime of an enrollment token.
MAX_ENROLLMENT_TTL_S = 86400
#: Longest accepted ``jti``: verifiers store them (replay protection, invitations), so they are bounded.
MAX_JTI_CHARS = 64
#: Tolerated clock difference between issuer and verifier.
DEFAULT_LEEWAY = timedelta(seconds=30)
ENROLLMENT_ISSUER = "ncc-hub"
ENROLLMENT_AUDIENCE = "ncc-enroll"
ENROLLMENT_PROOF_CONTEXT = b"ncc-enroll-v1\n"
ROTATION_SIGNING_CONTEXT = b"ncc-rotation-v1\n"

_SERVICE_CLAIMS = ["iss", "aud", "iat", "exp", "jti", "typ"]
_USER_CLAIMS = ["iss", "aud", "sub", "role", "iat", "exp", "jti", "typ"]
_ENROLL_CLAIMS = ["iss", "aud", "sub", "iat", "exp", "jti", "typ", "hub_kid"]
_ROTATION_FIELDS = frozenset(
    ("ncc", "type", "country", "old_kid", "new_kid", "new_public_key", "issued_at", "sig")
)


def _epoch(now: datetime) -> int:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return int(now.timestamp())


def _encode(claims: dict[str, Any], private_key: Ed25519PrivateKey, kid: str) -> str:
    return jwt.encode(claims, private_key, algorithm=ALGORITHM, headers={"kid": kid})


def _header_kid(token: str) -> str:
    try:
        header = jwt.get_unverified_header(token)
    except (jwt.PyJWTError, TypeError, ValueError) as e:
        raise TokenInvalid(f"malformed token: {e}") from e
    if header.get("alg") != ALGORITHM:
        raise TokenInvalid(f"algorithm {header.get('alg')!r} is not allowed")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenInvalid("token header has no kid")
    return kid


def _decode(
    token: str,
    key: Ed25519PublicKey,
    *,
    audience: str,
    issuer: str | None,
    required: list[str],
    typ: str,
    now: datetime,
    max_ttl_s: int | None,
    leeway: timedelta,
) -> dict[str, Any]:
    """Verify signature, aud, iss and required claims with PyJWT, then time and typ against ``now``."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            options={
                "require": required,
                "verify_exp": False,  # checked below against the `now` passed in
                "verify_nbf": False,
                "verify_iat": False,
                "strict_aud": True,
            },
        )
    except (jwt.PyJWTError, TypeError, ValueError) as e:
        raise TokenInvalid(f"token rejected: {e}") from e
    iat, exp, jti = claims.get("iat"), claims.get("exp"), claims.get("jti")
    if type(iat) is not int or type(exp) is not int:
        raise TokenInvalid("iat and exp must be integers")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_CHARS:
        raise TokenInvalid(f"jti must be a non-empty string of at most {MAX_JTI_CHARS} characters")
    if claims.get("typ") != typ:
        raise TokenInvalid(f"token type {claims.get('typ')!r} is not {typ!r}")
    if exp <= iat:
        raise TokenInvalid("exp is not after iat")
    if max_ttl_s is not None and exp - iat > max_ttl_s:
        raise TokenInvalid(f"token lifetime {exp - iat} s exceeds {max_ttl_s} s")
    t, slack = _epoch(now), int(leeway.total_seconds())
    if iat > t + slack:
        raise TokenInvalid("token issued in the future")
    if t >= exp + slack:
        raise TokenInvalid("token expired")
    nbf = claims.get("nbf")
    if nbf is not None and (type(nbf) is not int or t + slack < nbf):
        raise TokenInvalid("token not yet valid")
    return claims


# -- service tokens -------------------------------------------------------------------------------


def issue_service_token(
    private_key: Ed25519PrivateKey,
    kid: str,
    issuer: str,
    audience: str,
    now: datetime,
    ttl_s: int = 60,
    jti: str | None = None,
) -> str:
    """A service JWT from ``issuer`` (the kid's prefix: country or ``hub``) to ``audience``.

    Raises:
        ValueError: ``issuer`` is not the kid's prefix, or ``ttl_s`` not in 1..300.
    """
    if parse_kid(kid)[0] != issuer:
        raise ValueError(f"issuer {issuer!r} must be the prefix of kid {kid!r}")
    if not 0 < ttl_s <= MAX_SERVICE_TTL_S:
        raise ValueError(f"service token ttl must be 1..{MAX_SERVICE_TTL_S} s")
    iat = _epoch(now)
    claims = {
        "iss": issuer,
        "aud": audience,
        "iat": iat,
        "exp": iat + ttl_s,
        "jti": jti or uuid.uuid4().hex,
        "typ": "service",
    }
    return _encode(claims, private_key, kid)


def verify_service_token(
    token: str,
    resolve_key: Callable[[str], Ed25519PublicKey | None],
    audience: str,
    now: datetime,
    *,
    leeway: timedelta = DEFAULT_LEEWAY,
) -> dict[str, Any]:
    """Verify a service JWT addressed to ``audience``; return its claims (plus ``kid``).

    ``resolve_key(kid)`` returns the caller's current public key (from the directory), or None.
    The caller must still refuse a ``jti`` it has already seen.

    Raises:
        TokenInvalid: malformed, wrong alg, unknown kid, bad signature, wrong aud/typ, ``iss`` not
            the kid's prefix, lifetime over 300 s, expired, missing claims.
    """
    kid = _header_kid(token)
    key = resolve_key(kid)
    if key is None:
        raise TokenInvalid(f"unknown key {kid}")
    claims = _decode(
        token,
        key,
        audience=audience,
        issuer=kid.partition(":")[0],
        required=_SERVICE_CLAIMS,
        typ="service",
        now=now,
        max_ttl_s=MAX_SERVICE_TTL_S,
        leeway=leeway,
    )
    return {**claims, "kid": kid}


# -- user tokens ----------------------------------------------------------------------------------


def issue_user_token(
    private_key: Ed25519PrivateKey,
    kid: str,
    instance: str,
    role: str,
    subject: str,
    now: datetime,
    ttl_s: int,
    jti: str,
    groups: tuple[str, ...] = (),
) -> str:
    """A user JWT for ``instance`` (``iss = aud = instance``) with a role, and — a hub analyst's —
    the sharing groups it reads (claim ``groups``, DESIGN §15; left out when empty).

    Raises:
        ValueError: ``ttl_s`` is not positive, or ``jti`` is empty.
    """
    if ttl_s <= 0 or not jti:
        raise ValueError("user token needs a positive ttl and a jti")
    iat = _epoch(now)
    claims = {
        "iss": instance,
        "aud": instance,
        "sub": subject,
        "role": role,
        "iat": iat,
        "exp": iat + ttl_s,
        "jti": jti,
        "typ": "user",
    }
    if groups:
        claims["groups"] = sorted(groups)
    return _encode(claims, private_key, kid)


def verify_user_token(
    token: str,
    public_key: Ed25519PublicKey,
    instance: str,
    now: datetime,
    *,
    leeway: timedelta = DEFAULT_LEEWAY,
) -> dict[str, Any]:
    """Verify a user JWT of this ``instance``; return its claims. The caller checks revoked jtis.

    Raises:
        TokenInvalid: malformed, wrong alg, bad signature, another instance's, wrong typ, expired.
    """
    _header_kid(token)
    claims = _decode(
        token,
        public_key,
        audience=instance,
        issuer=instance,
        required=_USER_CLAIMS,
        typ="user",
        now=now,
        max_ttl_s=None,
        leeway=leeway,
    )
    if not isinstance(claims.get("role"), str) or not isinstance(claims.get("sub"), str):
        raise TokenInvalid("role and sub must be strings")
    return claims


# -- enrollment -----------------------------------------------------------------------------------


def issue_enrollment_token(
    hub_private_key: Ed25519PrivateKey,
    hub_kid: str,
    country: str,
    now: datetime,
    jti: str,
    ttl_s: int = MAX_ENROLLMENT_TTL_S,
    hub_url: str | None = None,
) -> str:
    """A one-time invitation for ``country``, carrying the hub key's kid (its fingerprint).

    Raises:
        ValueError: ``ttl_s`` not in 1..86400, or ``jti`` empty.
    """
    if not 0 < ttl_s <= MAX_ENROLLMENT_TTL_S or not jti:
        raise ValueError("enrollment token needs a jti and a ttl of 1..86400 s")
    iat = _epoch(now)
    claims: dict[str, Any] = {
        "iss": ENROLLMENT_ISSUER,
        "aud": ENROLLMENT_AUDIENCE,
        "sub": country,
        "iat": iat,
        "exp": iat + ttl_s,
        "jti": jti,
        "typ": "enroll",
        "hub_kid": hub_kid,
    }
    if hub_url is not None:
        claims["hub_url"] = hub_url
    return _encode(claims, hub_private_key, hub_kid)


def peek_enrollment_token(token: str) -> dict[str, Any]:
    """Read an enrollment token's claims WITHOUT verifying its signature.

    Only for the enrolling node, which has no trusted hub key yet: it learns ``jti`` (to sign the
    proof) and ``hub_kid``, then pins that hub key — the directory the hub answers with must be
    signed by a key with exactly that kid (``verify_directory(..., trusted_kids={hub_kid})``), and
    the kid is the fingerprint of the key. Never use these claims to authorise anything.

    Raises:
        TokenInvalid: not a JWT, or missing ``jti``/``hub_kid``/``typ: "enroll"``.
    """
    try:
        claims: dict[str, Any] = jwt.decode(
            token, options={"verify_signature": False}, algorithms=[ALGORITHM]
        )
    except (jwt.PyJWTError, TypeError, ValueError) as e:
        raise TokenInvalid(f"malformed enrollment token: {e}") from e
    if claims.get("typ") != "enroll" or not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise TokenInvalid("not an enrollment token")
    try:
        parse_kid(claims.get("hub_kid"))  # type: ignore[arg-type]
    except ValueError as e:
        raise TokenInvalid(f"enrollment token hub_kid: {e}") from e
    return claims


def verify_enrollment_token(
    token: str,
    hub_public_keys_by_kid: Mapping[str, Ed25519PublicKey],
    now: datetime,
    *,
    leeway: timedelta = DEFAULT_LEEWAY,
) -> dict[str, Any]:
    """Verify an invitation at the hub; return its claims. The hub must also refuse a used ``jti``.

    Raises:
        TokenInvalid: forged, expired, lifetime over 24 h, wrong iss/aud/typ, unknown hub kid,
            ``hub_kid`` claim ≠ header kid.
    """
    kid = _header_kid(token)
    key = hub_public_keys_by_kid.get(kid)
    if key is None:
        raise TokenInvalid(f"unknown hub key {kid}")
    claims = _decode(
        token,
        key,
        audience=ENROLLMENT_AUDIENCE,
        issuer=ENROLLMENT_ISSUER,
        required=_ENROLL_CLAIMS,
        typ="enroll",
        now=now,
        max_ttl_s=MAX_ENROLLMENT_TTL_S,
        leeway=leeway,
    )
    if claims["hub_kid"] != kid:
        raise TokenInvalid("hub_kid claim differs from the signing key")
    return claims


def enrollment_proof_input(jti: str) -> bytes:
    """The bytes a node signs to prove key possession: ``b"ncc-enroll-v1\\n" + jti`` (UTF-8)."""
    return ENROLLMENT_PROOF_CONTEXT + jti.encode("utf-8")


def enrollment_proof(node_private_key: Ed25519PrivateKey, jti: str) -> str:
    """Base64url Ed25519 signature over :func:`enrollment_proof_input`."""
    return b64url_encode(node_private_key.sign(enrollment_proof_input(jti)))


def verify_enrollment_proof(public_key_raw: bytes, jti: str, proof: str) -> None:
    """Check that ``proof`` is the holder of ``public_key_raw`` signing the token's ``jti``.

    Raises:
        TokenInvalid: bad key, bad encoding, or the signature does not verify.
    """
    try:
        key = public_key_from_raw(public_key_raw)
        signature = b64url_decode(proof)
        key.verify(signature, enrollment_proof_input(jti))
    except (ValueError, TypeError, InvalidSignature) as e:
        raise TokenInvalid("enrollment proof does not verify") from e


# -- key rotation ---------------------------------------------------------------------------------


def rotation_signing_input(unsigned: Mapping[str, Any]) -> bytes:
    """``b"ncc-rotation-v1\\n" + JCS(statement without "sig")``.

    Raises:
        TokenInvalid: the statement cannot be canonicalised.
    """
    try:
        return ROTATION_SIGNING_CONTEXT + canonicalize({k: v for k, v in unsigned.items() if k != "sig"})
    except CanonicalizationError as e:
        raise TokenInvalid(f"rotation statement cannot be canonicalised: {e.detail}") from e


def make_rotation_statement(
    old_private_key: Ed25519PrivateKey, old_kid: str, new_public_raw: bytes, country: str, now: datetime
) -> dict[str, Any]:
    """A statement, signed by the old key, that ``new_public_raw`` is the country's next key."""
    unsigned = {
        "ncc": 1,
        "type": "key-rotation",
        "country": country,
        "old_kid": old_kid,
        "new_kid": kid_for(country, new_public_raw),
        "new_public_key": b64url_encode(new_public_raw),
        "issued_at": format_timestamp(now),
    }
    signature = old_private_key.sign(rotation_signing_input(unsigned))
    return {**unsigned, "sig": {"alg": "Ed25519", "kid": old_kid, "value": b64url_encode(signature)}}


def verify_rotation_statement(stmt: Any, old_public_key: Ed25519PublicKey) -> tuple[str, bytes]:
    """Verify a rotation statement against the old key (looked up by ``stmt["old_kid"]``).

    Returns ``(new_kid, new_public_raw)``. The caller checks that ``old_kid`` is the country's
    current key in the directory.

    Raises:
        TokenInvalid: malformed, kids not bound to the country and keys, or bad signature.
    """
    try:
        if type(stmt) is not dict or stmt.keys() != _ROTATION_FIELDS:
            raise ValueError(f"fields must be exactly {sorted(_ROTATION_FIELDS)}")
        if stmt["ncc"] != 1 or type(stmt["ncc"]) is not int or stmt["type"] != "key-rotation":
            raise ValueError("not an ncc 1 key-rotation statement")
        country, old_kid, new_kid = stmt["country"], stmt["old_kid"], stmt["new_kid"]
        new_raw = b64url_decode(stmt["new_public_key"])
        public_key_from_raw(new_raw)
        parse_timestamp(stmt["issued_at"])
        old_prefix, old_fp = parse_kid(old_kid)
        sig = stmt["sig"]
        if type(sig) is not dict or sig.keys() != {"alg", "kid", "value"} or sig["alg"] != "Ed25519":
            raise ValueError("sig must be {alg: Ed25519, kid, value}")
        if sig["kid"] != old_kid or old_prefix != country:
            raise ValueError("statement must be signed by the country's old key")
        if old_fp != key_fingerprint(_raw_public_key(old_public_key)):
            raise ValueError("old_kid is not the given old key")
        if new_kid != kid_for(country, new_raw) or new_kid == old_kid:
            raise ValueError("new_kid is not the new key's kid")
        signature = b64url_decode(sig["value"])
    except (ValueError, TypeError, KeyError) as e:
        raise TokenInvalid(f"rotation statement invalid: {e}") from e
    try:
        old_public_key.verify(signature, rotation_signing_input(stmt))
    except InvalidSignature as e:
        raise TokenInvalid("rotation statement signature does not verify") from e
    return new_kid, new_raw
