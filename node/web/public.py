"""Pages for everybody: search (hub: Europe-wide; node: its own records), a record, federation status,
sign-in/out, and the stylesheet."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from node.errors import InvalidParameter, NotFound, header_safe
from node.http.keys import CONTEXT
from node.http.views.common import record_id_param
from node.web import data
from node.web.render import page, redirect, render
from node.web.schema_forms import display_rows, type_title
from node.web.session import check_csrf, check_user_token, end_session, portal_principal, start_session
from node.web.snippets import record_snippet

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon"}
MAX_FORM_BYTES = 64 * 1024


@page
async def search_page(request: web.Request) -> web.Response:
    """``/`` — search box, facets with counts, results; per-node freshness on the hub."""
    p = await portal_principal(request)
    body = await data.search(request, p)
    fresh = await data.freshness(request)
    q = request.query.get("q", "")
    shown = await data.listed_records(request, p, [str(hit["id"]) for hit in body["results"]])
    results = []
    for hit in body["results"]:
        record = shown.get(str(hit["id"]))
        envelope = record.envelope if record is not None else {}
        results.append({**hit, "type_label": data.label("type", hit["type"]),
                        "country_label": data.label("country", hit["origin"]),
                        "node": fresh.get(hit["origin"]),
                        # the record's own text, as this reader may see it — never the index's
                        "snippet": record_snippet(str(hit["type"]), envelope.get("payload") or {}, q),
                        "visibility": envelope.get("visibility")})
    return await render(request, "search.html", {
        "q": q,
        "total": body["total"],
        "results": results,
        "facets": data.facets_of(request.query, body.get("facets") or {}),
        "next_href": data.page_href(request.query, body["next_cursor"]) if body.get("next_cursor") else None,
        "first_href": data.first_page_href(request.query) if request.query.get("cursor") else None,
        "partial": body.get("partial", False),
        "missing": body.get("missing", []),
        "nodes": fresh,
        "filtered": any(k in data.DIMENSIONS for k in request.query),
    })


@page
async def record_page(request: web.Request) -> web.Response:
    """``/records/{id}`` — a record as the reader may see it (anonymous: public, redacted)."""
    rid = record_id_param(request)
    p = await portal_principal(request)
    shown = await data.record_for(request, rid, p)
    env = shown.envelope
    payload = env.get("payload") or {}
    fresh = await data.freshness(request)
    redacted_titles = [ptr.removeprefix("/payload") for ptr in shown.redacted]
    return await render(request, "record.html", {
        "env": env,
        "title": data.record_title(env["type"], payload),
        "type_label": type_title(env["type"]),
        "country_label": data.label("country", env["origin"]),
        "rows": display_rows(env["type"], payload),
        "redacted": _redacted_titles(env["type"], redacted_titles),
        "full": shown.full,
        "quarantined": shown.quarantined,
        "node": fresh.get(env["origin"]),
        "verified": request.app[CONTEXT].settings.role == "hub",
    })


def _redacted_titles(rtype: str, pointers: list[str]) -> list[str]:
    from node.web.schema_forms import form_fields

    titles = {f.pointer: f.title for f in form_fields(rtype)}
    return [titles.get(ptr, ptr) for ptr in pointers]


@page
async def status_page(request: web.Request) -> web.Response:
    """``/status`` (hub) — every node's sync state and a chart of records per country."""
    p = await portal_principal(request)
    nodes = list((await data.freshness(request)).values())
    for n in nodes:
        n["country_label"] = data.label("country", str(n["country"]))
    counts = await data.records_per_country(request, p)
    return await render(request, "status.html", {"nodes": nodes, "chart": bar_chart(counts)})


def bar_chart(counts: dict[str, int], width: int = 560, bar: int = 22, gap: int = 8) -> dict[str, Any]:
    """Geometry of a horizontal bar chart (inline SVG in the template: no script, no external file)."""
    label_w, value_w = 150, 60
    top = max(counts.values(), default=0) or 1
    span = width - label_w - value_w
    bars = []
    for i, (country, n) in enumerate(counts.items()):
        y = i * (bar + gap)
        bars.append({"country": country, "label": data.label("country", country), "count": n,
                     "y": y, "text_y": y + bar * 0.7, "w": max(2, round(span * n / top)) if n else 0,
                     "x": label_w, "value_x": label_w + (round(span * n / top) if n else 0) + 6})
    height = max(1, len(bars)) * (bar + gap)
    return {"bars": bars, "width": width, "height": height, "bar": bar, "label_w": label_w,
            "total": sum(counts.values())}


# -- sign-in ------------------------------------------------------------------------------------


def _safe_next(raw: str | None) -> str:
    """Only local paths: ``next`` never sends the browser to another site.

    Raises:
        InvalidParameter: (400) ``next`` with CR/LF or another control character.
    """
    if raw:
        header_safe(raw, "next")
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/"
    parts = urlsplit(raw)
    return raw if not parts.scheme and not parts.netloc else "/"


@page
async def login_form(request: web.Request) -> web.Response:
    p = await portal_principal(request)
    return await render(request, "login.html", {"next": _safe_next(request.query.get("next")), "error": None,
                                                "signed_in": not p.is_anonymous})


@page
async def login(request: web.Request) -> web.Response:
    """POST /login — check the pasted token like a bearer header; open a server-side session."""
    form = await _form(request)
    await check_csrf(request, form.get("csrf"))
    token = str(form.get("token") or "")
    nxt = _safe_next(str(form.get("next") or ""))
    p, jti = await check_user_token(request, token)
    if p.is_anonymous:
        return await render(request, "login.html", {
            "next": nxt, "signed_in": False,
            "error": "This token is not valid here: it may be expired, revoked, or made for another instance."},
            status=401)
    response = redirect(nxt if nxt != "/" else ("/admin/records" if request.app[CONTEXT].settings.role == "node"
                                                else "/"))
    await start_session(request, jti)
    return response


@page
async def logout(request: web.Request) -> web.Response:
    """POST /logout — the session ends server-side (its cookie, replayed, signs no one in)."""
    form = await _form(request)
    await check_csrf(request, form.get("csrf"))
    response = redirect("/")
    await end_session(request)
    return response


async def _form(request: web.Request, limit: int = MAX_FORM_BYTES) -> Any:
    """The posted form (urlencoded); refuses bodies above ``limit``.

    Raises:
        InvalidParameter: too large, not a form, or a malformed one.
    """
    if request.content_length is not None and request.content_length > limit:
        raise InvalidParameter(f"form larger than {limit} bytes")
    if request.content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise InvalidParameter("expected a form submission")
    return await parse_form_body(request)


async def parse_form_body(request: web.Request) -> Any:
    """``request.post()``, with a malformed body a client error instead of a 500.

    aiohttp raises ``ValueError`` for a multipart body without (or without its) boundary,
    ``UnicodeDecodeError`` (a ``ValueError``) for text that is not in the announced charset,
    ``LookupError`` for an unknown charset and ``HttpProcessingError`` for a broken part header.

    Raises:
        InvalidParameter: the body does not parse as the form its Content-Type announces.
    """
    try:
        return await request.post()
    except (ValueError, LookupError, HttpProcessingError) as exc:
        raise InvalidParameter(f"malformed form submission: {exc}") from exc


# -- static -------------------------------------------------------------------------------------


def _load_static() -> dict[str, tuple[bytes, str, str]]:
    files = {}
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file() and path.suffix in STATIC_TYPES:
            raw = path.read_bytes()
            files[path.name] = (raw, STATIC_TYPES[path.suffix], hashlib.sha256(raw).hexdigest()[:16])
    return files


_STATIC: dict[str, tuple[bytes, str, str]] | None = None


async def static_file(request: web.Request) -> web.Response:
    """``/static/{name}`` — the portal's own files (read once; nothing is served from elsewhere)."""
    global _STATIC
    if _STATIC is None:
        _STATIC = _load_static()
    found = _STATIC.get(request.match_info["name"])
    if found is None:
        raise NotFound("no such file")
    raw, ctype, etag = found
    if request.headers.get("If-None-Match") == f'"{etag}"':
        return web.Response(status=304, headers={"ETag": f'"{etag}"'})
    return web.Response(body=raw, content_type=ctype,
                        headers={"ETag": f'"{etag}"', "Cache-Control": "public, max-age=3600",
                                 "X-Content-Type-Options": "nosniff"})
