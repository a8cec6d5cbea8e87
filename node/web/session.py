"""Portal sessions: a user token kept in an HttpOnly cookie, and a double-submit CSRF token.

Logging in means pasting a token from ``ncc token create``; the portal checks it with the app's
:class:`node.http.auth.Authenticator` (the same checks as a bearer header: signature, audience,
expiry, revocation, role) on every request, so revoking the token ends the session at once. Nothing
about the session is stored server-side.

CSRF: every form carries the value of the ``ncc_csrf`` cookie (random, HttpOnly, SameSite=Strict,
renewed at login and logout) and a POST is refused unless the two match. A cross-site page can
neither read the cookie nor make the browser send it (SameSite=Strict), so it cannot forge a form.
"""

from __future__ import annotations

import hmac
import re
import secrets

import jwt
from aiohttp import web

from node.errors import ApiError, Unauthenticated
from node.http.auth import ANONYMOUS, PRINCIPAL, Principal
from node.http.keys import AUTH, CONTEXT

SESSION_COOKIE = "ncc_session"
CSRF_COOKIE = "ncc_csrf"
CSRF_FIELD = "csrf"
CSRF_FORM = re.compile(r"\A[A-Za-z0-9_-]{43}\Z")
MAX_TOKEN_CHARS = 4096

#: The CSRF token of this request (from the cookie, or new: then the response sets the cookie).
CSRF = web.RequestKey("portal_csrf", str)
NEW_CSRF = web.RequestKey("portal_new_csrf", bool)
#: Set when the session cookie held a token that no longer passes (expired, revoked): clear it.
STALE_SESSION = web.RequestKey("portal_stale_session", bool)


class CsrfRejected(ApiError):
    code, status, title = "csrf_failed", 403, "Form expired or forged"


async def portal_principal(request: web.Request) -> Principal:
    """Who is browsing: a bearer header if one is sent, else the session cookie, else anonymous.

    A cookie token that fails (expired, revoked, foreign) makes the reader anonymous and clears the
    cookie; only a *user* token counts (a service token in a cookie is ignored, never consumed).

    Raises:
        Unauthenticated: a bad ``Authorization`` header (as on the API).
    """
    cached = request.get(PRINCIPAL)
    if cached is not None:
        return cached
    if "Authorization" in request.headers:
        return await request.app[AUTH].principal(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    principal = ANONYMOUS
    if token:
        principal = await check_user_token(request, token)
        if principal.is_anonymous:
            request[STALE_SESSION] = True
    request[PRINCIPAL] = principal
    return principal


async def check_user_token(request: web.Request, token: str) -> Principal:
    """The principal of a pasted user token, or ANONYMOUS when it is not a valid user token here."""
    token = token.strip()
    if not token or len(token) > MAX_TOKEN_CHARS:
        return ANONYMOUS
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return ANONYMOUS
    if not isinstance(claims, dict) or claims.get("typ") != "user":
        return ANONYMOUS
    try:
        principal = await request.app[AUTH].token_principal(token)
    except Unauthenticated:
        return ANONYMOUS
    return principal if principal.kind == "user" else ANONYMOUS


def csrf_token(request: web.Request) -> str:
    """This session's CSRF token (a new one is made, and set as a cookie, when there is none)."""
    token = request.get(CSRF)
    if token is None:
        token = request.cookies.get(CSRF_COOKIE, "")
        if not CSRF_FORM.match(token):
            token = new_csrf(request)
        request[CSRF] = token
    return token


def new_csrf(request: web.Request) -> str:
    token = secrets.token_urlsafe(32)
    request[CSRF] = token
    request[NEW_CSRF] = True
    return token


def check_csrf(request: web.Request, submitted: object) -> None:
    """Refuse a form whose CSRF field does not match the cookie.

    Raises:
        CsrfRejected: missing or different.
    """
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not (isinstance(submitted, str) and CSRF_FORM.match(cookie)
            and hmac.compare_digest(submitted.encode(), cookie.encode())):
        raise CsrfRejected("this form is not valid any more (or was not sent from this site): reload the page and try again")


def _secure(request: web.Request) -> bool:
    return request.secure or request.app[CONTEXT].settings.base_url.startswith("https://")


def apply_cookies(request: web.Request, response: web.StreamResponse) -> None:
    """Set the CSRF cookie made for this request and clear a stale session cookie."""
    secure = _secure(request)
    if request.get(NEW_CSRF):
        response.set_cookie(CSRF_COOKIE, request[CSRF], httponly=True, samesite="Strict", secure=secure, path="/")
    if request.get(STALE_SESSION):
        response.del_cookie(SESSION_COOKIE, path="/")


def start_session(request: web.Request, response: web.StreamResponse, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token.strip(), httponly=True, samesite="Strict",
                        secure=_secure(request), path="/")
    new_csrf(request)


def end_session(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/")
    new_csrf(request)
