"""Authentication and authorisation of requests.

Two kinds of bearer tokens, both EdDSA JWTs with pinned algorithms:

* **user tokens** (``typ: user``) from ``ncc token create``: signed by this instance's own key,
  ``iss``/``aud`` naming this instance, recorded in ``api_tokens`` so they can be revoked;
* **service tokens** (``typ: service``): short-lived (≤ 5 min), signed by another instance's key
  (the hub's key, at a node; a node's key, at the hub), ``jti`` never accepted twice.

A missing, forged, expired, revoked or foreign token is 401 ``unauthenticated``; a valid token
without the right (a reader writing, a user token on a federation route) is 403 ``forbidden``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from tortoise.exceptions import IntegrityError

from federation.errors import TokenInvalid
from federation.timefmt import format_timestamp
from federation.tokens import verify_service_token, verify_user_token
from node.errors import Forbidden, Unauthenticated
from node.storage.models import ApiToken, SeenJti

NODE_ROLES = ("admin", "editor", "reader", "assessor")  # assessor: DESIGN §12
HUB_ROLES = ("admin", "analyst")
ROLE_RANK = {"reader": 1, "analyst": 1, "assessor": 2, "editor": 2, "admin": 3}


@dataclass(frozen=True)
class Principal:
    """Who is calling: ``anonymous``, a ``user`` with a role, or a ``service`` (another instance)."""

    kind: str
    role: str | None = None
    subject: str = ""
    issuer: str = ""

    @property
    def is_anonymous(self) -> bool:
        return self.kind == "anonymous"

    def has_role(self, *roles: str) -> bool:
        return self.kind == "user" and self.role in roles


ANONYMOUS = Principal("anonymous")

#: Request storage key of the authenticated principal (cached per request).
PRINCIPAL = web.RequestKey("principal", Principal)

ResolveKey = Callable[[str], Awaitable[Ed25519PublicKey | None]]


@dataclass
class Authenticator:
    """Checks bearer tokens for one instance."""

    instance: str
    role: str
    user_keys: Callable[[], dict[str, Ed25519PublicKey]]
    service_key: ResolveKey
    clock: Callable[[], datetime]

    async def principal(self, request: web.Request) -> Principal:
        """Authenticate the request (cached on it).

        Raises:
            Unauthenticated: a token is present but not acceptable.
        """
        cached = request.get(PRINCIPAL)
        if cached is not None:
            return cached
        header = request.headers.get("Authorization")
        if header is None:
            principal = ANONYMOUS
        else:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("expected 'Authorization: Bearer <token>'")
            principal = await self._check(token.strip())
        request[PRINCIPAL] = principal
        return principal

    async def token_principal(self, token: str) -> Principal:
        """Authenticate a token that did not come in the Authorization header (the portal's cookie).

        Raises:
            Unauthenticated: the token is not acceptable.
        """
        return await self._check(token.strip())

    async def _check(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise Unauthenticated("token is not a valid JWT") from exc
        typ = unverified.get("typ") if isinstance(unverified, dict) else None
        now = self.clock()
        try:
            if typ == "user":
                return await self._user(token, header, now)
            if typ == "service":
                return await self._service(token, now)
        except TokenInvalid as exc:
            raise Unauthenticated(exc.detail) from exc
        raise Unauthenticated("unknown token type")

    async def _user(self, token: str, header: dict[str, Any], now: datetime) -> Principal:
        key = self.user_keys().get(str(header.get("kid", "")))
        if key is None:
            raise Unauthenticated("token not signed by this instance")
        claims = verify_user_token(token, key, self.instance, now)
        record = await ApiToken.filter(jti=str(claims["jti"])).first()
        if record is None:
            raise Unauthenticated("token unknown to this instance")
        if record.revoked_at is not None:
            raise Unauthenticated("token revoked")
        roles = HUB_ROLES if self.role == "hub" else NODE_ROLES
        if claims.get("role") not in roles or claims.get("role") != record.role:
            raise Unauthenticated("token role not valid here")
        return Principal("user", str(claims["role"]), str(claims.get("sub", "")), str(claims["iss"]))

    async def _service(self, token: str, now: datetime) -> Principal:
        claims = await verify_service_token_async(token, self.service_key, self.instance, now)
        try:
            await SeenJti.create(jti=f"{claims['iss']}:{claims['jti']}", expires_at=int(claims["exp"]))
        except IntegrityError as exc:
            raise Unauthenticated("service token replayed") from exc
        return Principal("service", None, str(claims.get("sub", claims["iss"])), str(claims["iss"]))


async def verify_service_token_async(
    token: str, resolve: ResolveKey, audience: str, now: datetime
) -> dict[str, Any]:
    """Resolve the signing key asynchronously (it lives in the database), then verify.

    Raises:
        TokenInvalid: any failure.
    """
    try:
        kid = str(jwt.get_unverified_header(token).get("kid", ""))
    except jwt.PyJWTError as exc:
        raise TokenInvalid("token is not a valid JWT") from exc
    key = await resolve(kid)
    return verify_service_token(token, lambda k: key if k == kid else None, audience, now)


def require_user(principal: Principal, roles: Iterable[str]) -> None:
    """Demand a user token with one of ``roles``.

    Raises:
        Unauthenticated: anonymous.
        Forbidden: a service token, or a user without the role.
    """
    if principal.is_anonymous:
        raise Unauthenticated("this operation needs a bearer token")
    if principal.kind != "user" or principal.role not in set(roles):
        raise Forbidden("your token does not allow this operation")


def require_service(principal: Principal, issuers: Iterable[str] | None = None) -> None:
    """Demand a service token (optionally from given issuers).

    Raises:
        Unauthenticated: anonymous.
        Forbidden: a user token, or a service from another instance.
    """
    if principal.is_anonymous:
        raise Unauthenticated("this operation needs a service token")
    if principal.kind != "service":
        raise Forbidden("user tokens cannot call federation routes")
    if issuers is not None and principal.issuer not in set(issuers):
        raise Forbidden("this service may not call this route")


async def purge_seen_jtis(now: datetime) -> int:
    """Drop replay-protection entries whose tokens have expired anyway."""
    return await SeenJti.filter(expires_at__lt=int(now.timestamp()) - 600).delete()


def now_text(clock: Callable[[], datetime]) -> str:
    return format_timestamp(clock())
