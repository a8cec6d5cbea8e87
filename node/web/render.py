"""Rendering portal pages: the base context, security headers, and errors as HTML pages.

Every page handler is wrapped by :func:`page`: a service or protocol error (a bad query parameter,
an unknown record, a forged form) becomes an HTML page with the error's status and message — never
the JSON problem document meant for API clients, never a 500 for bad input.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web

from federation.errors import ProtocolError
from node.errors import ApiError, header_safe
from node.http.auth import ANONYMOUS
from node.http.keys import CONTEXT
from node.http.problems import DEFAULT_PROTOCOL_STATUS, PROTOCOL_STATUS, REQUEST_ID
from node.web.session import apply_cookies, csrf_token, portal_principal

log = logging.getLogger("ncc.portal")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Nothing is loaded from anywhere but this origin; no script runs at all.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Badge:
    label: str
    css: str
    title: str


VISIBILITY_BADGES = {
    "public": Badge("public", "vis-public", "Public: anyone can find it (anonymous readers see its public fields)"),
    "network": Badge("network", "vis-network", "Network: the NCCs and the Centre's analysts only"),
    "national": Badge("national", "vis-national", "National: stays on this node, never sent to the hub"),
}
GROUP_PREFIX = "group:"


def visibility_badge(visibility: str) -> Badge:
    """The badge of a record's visibility; ``group:<name>`` (a sharing group) reads "group: name", and
    a visibility this portal does not know is shown as it is, never hidden."""
    if visibility in VISIBILITY_BADGES:
        return VISIBILITY_BADGES[visibility]
    if visibility.startswith(GROUP_PREFIX) and visibility[len(GROUP_PREFIX):].strip():
        name = visibility[len(GROUP_PREFIX):].strip()
        return Badge(f"group: {name}", "vis-group", f"Shared with the members of the sharing group {name}")
    return Badge(visibility or "unknown", "vis-other", "A visibility this portal does not describe")


class LoginRequired(Exception):
    """The page needs a signed-in user: redirect to the login form."""


async def render(request: web.Request, template: str, context: dict[str, Any], status: int = 200) -> web.Response:
    settings = request.app[CONTEXT].settings
    try:
        principal = await portal_principal(request)
    except ApiError:  # a bad Authorization header: the error page itself is shown anonymously
        principal = ANONYMOUS
    base = {
        "role": settings.role,
        "country": settings.country,
        "instance_name": "European Cybersecurity Competence Centre hub" if settings.role == "hub"
        else f"{settings.country} National Coordination Centre",
        "principal": principal,
        "csrf": csrf_token(request),
        "path": request.path,
        "request_id": request.get(REQUEST_ID, ""),
    }
    response = aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)
    return response


async def error_page(request: web.Request, status: int, title: str, detail: str, code: str = "") -> web.Response:
    return await render(request, "error.html", {"title": title, "detail": detail, "code": code}, status=status)


def redirect(location: str) -> web.Response:
    """303 See Other: after a POST the browser GETs the new page.

    Raises:
        InvalidParameter: a target with CR/LF (never a header injection, never a dropped connection).
    """
    return web.Response(status=303, headers={"Location": header_safe(location, "next")})


def page(handler: Handler) -> Handler:
    """Wrap a page handler: errors become HTML pages; security headers and cookies are added."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except LoginRequired:
            response = redirect("/login?next=" + quote(request.path_qs, safe="/"))
        except ApiError as exc:
            response = await error_page(request, exc.status, exc.title, exc.detail, exc.code)
        except ProtocolError as exc:
            status = PROTOCOL_STATUS.get(exc.code, DEFAULT_PROTOCOL_STATUS)
            response = await error_page(request, status, exc.code.replace("_", " ").capitalize(), exc.detail,
                                        exc.code)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = await error_page(request, exc.status, exc.reason, exc.reason)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        apply_cookies(request, response)
        return response

    return wrapped
