"""Authentication and authorisation of requests.

Two kinds of bearer tokens, both EdDSA JWTs with pinned algorithms:

* **user tokens** (``typ: user``) from ``ncc token create``: signed by this instance's own key,
  ``iss``/``aud`` naming this instance, recorded in ``api_tokens``. The stored row decides, whatever the
  JWT says: its expiry, its revocation, its role, the key that signed it and when (a token re-signed
  with a retired key — same ``jti``, ``exp`` years ahead — is refused: the key was retired before that
  ``iat``, the stored expiry has passed, or the kid is not the one stored);
* **service tokens** (``typ: service``): short-lived (≤ 5 min), signed by another instance's key
  (the hub's key, at a node; a node's key, at the hub), ``jti`` never accepted twice. Each caller's
  accepted calls are rate-limited (``service_call_rate``; at a node, the hub's live queries apart:
  ``live_search_rate``) before the ``jti`` is stored, and stored ``jti`` are purged once expired
  (``node.storage.replay.purge_seen_jtis``, every minute on both roles): the replay table stays
  bounded by rate × lifetime however many anonymous live searches the hub relays.

A missing, forged, expired, revoked or foreign token is 401 ``unauthenticated``; a valid token
without the right (a reader writing, a user token on a federation route) is 403 ``forbidden``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from tortoise.exceptions import IntegrityError

from federation.errors import TokenInvalid
from federation.timefmt import format_timestamp
from federation.tokens import verify_service_token, verify_user_token
from node.errors import Forbidden, RateLimited, Unauthenticated
from node.keystore import InstanceKey
from node.principal import ANONYMOUS, HUB_ROLES, NODE_ROLES, Principal
from node.services.ratelimit import RateLimiter, retry_after
from node.storage.models import ApiToken, SeenJti

ROLE_RANK = {"reader": 1, "analyst": 1, "assessor": 2, "editor": 2, "admin": 3}


#: Request storage key of the authenticated principal (cached per request).
PRINCIPAL = web.RequestKey("principal", Principal)

ResolveKey = Callable[[str], Awaitable[Ed25519PublicKey | None]]


@dataclass
class Authenticator:
    """Checks bearer tokens for one instance."""

    instance: str
    role: str
    user_keys: Callable[[], dict[str, InstanceKey]]
    service_key: ResolveKey
    clock: Callable[[], datetime]
    #: Called with (request, issuer) once a service token's signature checks, before its jti is stored.
    admit: Callable[[web.Request | None, str], None] | None = None

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
            principal = await self._check(token.strip(), request)
        request[PRINCIPAL] = principal
        return principal

    async def token_principal(self, token: str) -> Principal:
        """Authenticate a token that did not come in the Authorization header (the portal's cookie).

        Raises:
            Unauthenticated: the token is not acceptable.
        """
        return await self._check(token.strip())

    async def _check(self, token: str, request: web.Request | None = None) -> Principal:
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
                return await self._service(token, now, request)
        except TokenInvalid as exc:
            raise Unauthenticated(exc.detail) from exc
        raise Unauthenticated("unknown token type")

    async def _user(self, token: str, header: dict[str, Any], now: datetime) -> Principal:
        kid = str(header.get("kid", ""))
        key = self.user_keys().get(kid)
        if key is None:
            raise Unauthenticated("token not signed by this instance")
        claims = verify_user_token(token, key.public_key, self.instance, now)
        record = await ApiToken.filter(jti=str(claims["jti"])).first()
        if record is None:
            raise Unauthenticated("token unknown to this instance")
        check_stored_token(record, claims, kid, key.retired_at, now)
        roles = HUB_ROLES if self.role == "hub" else NODE_ROLES
        if claims.get("role") not in roles or claims.get("role") != record.role:
            raise Unauthenticated("token role not valid here")
        groups = frozenset(g for g in (record.groups or "").split(",") if g)
        claimed = claims.get("groups") or []
        if not isinstance(claimed, list) or sorted(groups) != sorted(str(g) for g in claimed):
            raise Unauthenticated("token groups differ from those it was issued with")
        return Principal("user", str(claims["role"]), str(claims.get("sub", "")), str(claims["iss"]), groups)

    async def _service(self, token: str, now: datetime, request: web.Request | None = None) -> Principal:
        claims = await verify_service_token_async(token, self.service_key, self.instance, now)
        if self.admit is not None:
            self.admit(request, str(claims["iss"]))
        try:
            await SeenJti.create(jti=f"{claims['iss']}:{claims['jti']}", expires_at=int(claims["exp"]))
        except IntegrityError as exc:
            raise Unauthenticated("service token replayed") from exc
        return Principal("service", None, str(claims.get("sub", claims["iss"])), str(claims["iss"]))


def check_stored_token(record: ApiToken, claims: dict[str, Any], kid: str, retired_at: datetime | None,
                       now: datetime) -> None:
    """The issued token's row, not the JWT, says until when and by which key it is valid.

    Raises:
        Unauthenticated: revoked, past its stored expiry, signed by another key than the one that issued
            it, or (a retired key) issued after that key was retired.
    """
    if record.revoked_at is not None:
        raise Unauthenticated("token revoked")
    if record.expires_at <= format_timestamp(now):
        raise Unauthenticated("token expired")
    if record.kid is not None and record.kid != kid:
        raise Unauthenticated("token not signed by the key that issued it")
    if record.created_at != format_timestamp(datetime.fromtimestamp(int(claims["iat"]), UTC)):
        raise Unauthenticated("token iat differs from when it was issued")
    if retired_at is not None and int(claims["iat"]) > int(retired_at.timestamp()):
        raise Unauthenticated("token signed by a retired key after it was retired")


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


@dataclass
class ServiceCallLimits:
    """What one caller's valid service tokens may cost this instance, per second (burst: twice).

    At a node the hub's live queries (``federated-search``) have their own bucket: anonymous users
    drive them through the hub, and they must not starve the hub's feed pulls (or the reverse).
    """

    role: str
    call_rate: int
    live_rate: int
    clock: Callable[[], float] = time.monotonic
    calls: RateLimiter = field(init=False)
    live: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.calls = RateLimiter(self.call_rate, 2 * self.call_rate, clock=self.clock)
        self.live = RateLimiter(self.live_rate, 2 * self.live_rate, clock=self.clock)

    def admit(self, request: web.Request | None, issuer: str) -> None:
        """Spend one call of ``issuer``'s budget.

        Raises:
            RateLimited: over the budget (429, ``Retry-After``); the token is not consumed.
        """
        route = request.match_info.route.name if request is not None else None
        live = self.role == "node" and route == LIVE_SEARCH_ROUTE
        wait = (self.live if live else self.calls).take(issuer)
        if wait:
            setting = "live_search_rate" if live else "service_call_rate"
            raise RateLimited(f"too many {'live queries' if live else 'service calls'} from {issuer} "
                              f"(setting {setting}); retry later", retry_after_s=retry_after(wait))


#: The route name of the node's answer to the hub's live query (node/http/routes.py).
LIVE_SEARCH_ROUTE = "federated-search"


def now_text(clock: Callable[[], datetime]) -> str:
    return format_timestamp(clock())
