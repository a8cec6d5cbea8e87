"""Portal sessions, kept server-side, and CSRF tokens derived from them.

Signing in means pasting a token from ``ncc token create``; the portal checks it with the app's
:class:`node.http.auth.Authenticator` (signature, audience, stored expiry, revocation, role) and opens
a **session**: a random id in an HttpOnly, SameSite=Strict cookie, of which the database keeps only
the SHA-256 (``portal_sessions``) with the token's ``jti``. Every request checks the session row and
the token's row (revoked or expired: the session ends at once). A session lasts ``session_ttl_s``
(default 12 h, never beyond its token's expiry); logging out deletes the row, so a copied cookie
replayed afterwards is worth nothing. The bearer token itself never travels in a cookie.

CSRF: every form carries ``HMAC-SHA256(secret, "session" | session id)`` — bound to the session, so a
cookie/field pair planted by a same-site subdomain or a plain-HTTP attacker does not pass. Before
signing in (the login form) the token is bound the same way to a random pre-session cookie. The
secret is ``keys/session-secret`` (0600, made at ``ncc init`` or first use); a request authenticated
by an ``Authorization`` header (no ambient credential a cross-site page could use) needs no token.

Cookies: served over HTTPS (``url`` is ``https://…``, or the request came over TLS) they are named
``__Host-ncc_session`` and ``__Host-ncc_csrf``, with ``Secure`` and ``Path=/``: a browser accepts such
a cookie only from this exact origin over HTTPS, so neither a sibling subdomain nor a plain-HTTP
attacker can plant one; only the prefixed names are read then. Over plain HTTP (localhost
development, the tests) browsers refuse ``Secure`` cookies, so the portal uses the plain names
``ncc_session``/``ncc_csrf`` without ``Secure`` — plain HTTP has no defence against a network
attacker in any case, which is why a real deployment uses an https:// ``url``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

import jwt
from aiohttp import web

from federation.timefmt import format_timestamp, parse_timestamp
from node.errors import ApiError, Unauthenticated
from node.http.auth import ANONYMOUS, HUB_ROLES, NODE_ROLES, PRINCIPAL, Principal
from node.http.keys import AUTH, CONTEXT
from node.storage import sessions

SESSION_COOKIE = "ncc_session"
CSRF_COOKIE = "ncc_csrf"
HOST_PREFIX = "__Host-"
CSRF_FIELD = "csrf"
COOKIE_VALUE = re.compile(r"\A[A-Za-z0-9_-]{43}\Z")
MAX_TOKEN_CHARS = 4096

#: The session id of this request (from its cookie, or just opened by the login).
SESSION_ID = web.RequestKey("portal_session_id", str)
#: The pre-session CSRF seed of this request (from the cookie, or new: then the response sets it).
CSRF_SEED = web.RequestKey("portal_csrf_seed", str)
NEW_SEED = web.RequestKey("portal_new_seed", bool)
#: Set when the session cookie names no valid session (expired, logged out, revoked token): clear it.
STALE_SESSION = web.RequestKey("portal_stale_session", bool)
#: Set by the login: the response sets this new session cookie.
NEW_SESSION = web.RequestKey("portal_new_session", str)
#: The portal's HMAC secret (read once per app).
SECRET = web.AppKey("portal_secret", bytes)


class CsrfRejected(ApiError):
    code, status, title = "csrf_failed", 403, "Form expired or forged"


def setup_sessions(app: web.Application, secret: bytes) -> None:
    app[SECRET] = secret


def secure(request: web.Request) -> bool:
    """Whether this portal is served over HTTPS (then only ``__Host-`` cookies are set and read)."""
    return request.secure or request.app[CONTEXT].settings.base_url.startswith("https://")


def cookie_name(request: web.Request, base: str) -> str:
    return HOST_PREFIX + base if secure(request) else base


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _mac(request: web.Request, purpose: str, value: str) -> str:
    digest = hmac.new(request.app[SECRET], f"ncc-portal-csrf-v1\n{purpose}\n{value}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


async def portal_principal(request: web.Request) -> Principal:
    """Who is browsing: a bearer header if one is sent, else the session cookie, else anonymous.

    A session cookie that names no live session (logged out, expired, its token revoked or expired)
    makes the reader anonymous and clears the cookie.

    Raises:
        Unauthenticated: a bad ``Authorization`` header (as on the API).
    """
    cached = request.get(PRINCIPAL)
    if cached is not None:
        return cached
    if "Authorization" in request.headers:
        return await request.app[AUTH].principal(request)
    session_id = request.cookies.get(cookie_name(request, SESSION_COOKIE), "")
    principal = ANONYMOUS
    if session_id:
        principal = await _session_principal(request, session_id)
        if principal.is_anonymous:
            request[STALE_SESSION] = True
        else:
            request[SESSION_ID] = session_id
    request[PRINCIPAL] = principal
    return principal


async def _session_principal(request: web.Request, session_id: str) -> Principal:
    if not COOKIE_VALUE.match(session_id):
        return ANONYMOUS
    context = request.app[CONTEXT]
    now = context.clock()
    row = await sessions.find(_hash(session_id))
    if row is None:
        return ANONYMOUS
    if row.expires_at <= int(now.timestamp()):
        await sessions.delete(row.id_hash)
        return ANONYMOUS
    token = await sessions.token(row.jti)
    roles = HUB_ROLES if context.settings.role == "hub" else NODE_ROLES
    if (token is None or token.revoked_at is not None or token.expires_at <= format_timestamp(now)
            or token.role not in roles):
        await sessions.delete(row.id_hash)
        return ANONYMOUS
    return Principal("user", token.role, token.subject, request.app[AUTH].instance)


async def check_user_token(request: web.Request, token: str) -> tuple[Principal, str]:
    """The principal and ``jti`` of a pasted user token, or (ANONYMOUS, "") when it is not valid here."""
    token = token.strip()
    if not token or len(token) > MAX_TOKEN_CHARS:
        return ANONYMOUS, ""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return ANONYMOUS, ""
    if not isinstance(claims, dict) or claims.get("typ") != "user":
        return ANONYMOUS, ""
    try:
        principal = await request.app[AUTH].token_principal(token)
    except Unauthenticated:
        return ANONYMOUS, ""
    if principal.kind != "user":
        return ANONYMOUS, ""
    return principal, str(claims["jti"])  # verified by token_principal


async def start_session(request: web.Request, jti: str) -> None:
    """Open a session for the token ``jti`` (the response sets its cookie); ends the one the browser had."""
    await end_session(request)
    context = request.app[CONTEXT]
    now = context.clock()
    token = await sessions.token(jti)
    if token is None:  # revoked and purged since check_user_token found it
        raise Unauthenticated("this token is no longer valid here")
    expires = now + timedelta(seconds=context.settings.session_ttl_s)
    token_end = parse_timestamp(token.expires_at)
    session_id = secrets.token_urlsafe(32)
    await sessions.create(_hash(session_id), jti, format_timestamp(now), int(min(expires, token_end).timestamp()))
    request[SESSION_ID] = session_id
    request[NEW_SESSION] = session_id
    request.pop(STALE_SESSION, None)


async def end_session(request: web.Request) -> None:
    """Log out server-side: the session row goes, so the cookie is worthless even if replayed."""
    session_id = request.cookies.get(cookie_name(request, SESSION_COOKIE), "")
    if session_id and COOKIE_VALUE.match(session_id):
        await sessions.delete(_hash(session_id))
    if session_id:
        request[STALE_SESSION] = True
    request.pop(SESSION_ID, None)


async def purge_sessions(now: datetime) -> int:
    """Drop expired sessions (a job runs it every minute)."""
    return await sessions.purge(int(now.timestamp()))


def csrf_token(request: web.Request) -> str:
    """The CSRF token for this request's forms: bound to its session, or to its pre-session seed."""
    session_id = request.get(SESSION_ID)
    if session_id:
        return _mac(request, "session", session_id)
    return _mac(request, "anonymous", _seed(request))


def _seed(request: web.Request) -> str:
    seed = request.get(CSRF_SEED)
    if seed is None:
        seed = request.cookies.get(cookie_name(request, CSRF_COOKIE), "")
        if not COOKIE_VALUE.match(seed):
            seed = secrets.token_urlsafe(32)
            request[NEW_SEED] = True
        request[CSRF_SEED] = seed
    return seed


async def check_csrf(request: web.Request, submitted: object) -> None:
    """Refuse a form whose CSRF field is not the token of this browser's session (or pre-session).

    A request authenticated by an ``Authorization`` header carries no ambient credential: its field is
    not checked against a session, but a form still has to carry it (one form shape for every caller).

    Raises:
        CsrfRejected: missing or different.
    """
    if "Authorization" in request.headers:
        if not isinstance(submitted, str):
            raise CsrfRejected("a form carries its csrf field")
        return
    await portal_principal(request)  # finds the session (its id binds the token)
    session_id = request.get(SESSION_ID)
    if session_id:
        expected = _mac(request, "session", session_id)
    else:
        seed = request.cookies.get(cookie_name(request, CSRF_COOKIE), "")
        expected = _mac(request, "anonymous", seed) if COOKIE_VALUE.match(seed) else ""
    ok = isinstance(submitted, str) and hmac.compare_digest(submitted.encode(), expected.encode())
    if not (expected and ok):
        raise CsrfRejected("this form is not valid any more (or was not sent from this site): reload the page "
                           "and try again")


def apply_cookies(request: web.Request, response: web.StreamResponse) -> None:
    """Set the cookies this request made (a session, a CSRF seed) and clear a stale session cookie."""
    is_secure = secure(request)
    if request.get(NEW_SEED):
        response.set_cookie(cookie_name(request, CSRF_COOKIE), request[CSRF_SEED], httponly=True,
                            samesite="Strict", secure=is_secure, path="/")
    new_session = request.get(NEW_SESSION)
    if new_session:
        response.set_cookie(cookie_name(request, SESSION_COOKIE), new_session, httponly=True,
                            samesite="Strict", secure=is_secure, path="/")
    elif request.get(STALE_SESSION):
        response.del_cookie(cookie_name(request, SESSION_COOKIE), path="/", secure=is_secure)
