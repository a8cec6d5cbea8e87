"""Federation routes: the node's change feed; the hub's directory, enrollment, notify, quarantine and
key rotation."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from federation.directory import DIRECTORY_SERIAL_HEADER
from federation.divergence import Anchor
from federation.errors import SchemaInvalid
from node.config import COUNTRY_RE
from node.errors import Forbidden, InvalidParameter, NotFound
from node.http.auth import require_service, require_user
from node.http.problems import read_json
from node.http.views.common import (
    RECORD_ID,
    country_param,
    ctx,
    int_param,
    json_response,
    object_body,
    principal,
)
from node.services.divergence import held_page, start_epoch
from node.services.groups import announced_serial, follow_directory
from node.services.nodefed import feed_page
from node.services.recover import feed_state
from node.services.trust import require_active_node
from node.storage import reads

MAX_PAGE = 1000


# -- node ------------------------------------------------------------------------------------------


async def changes(request: web.Request) -> web.StreamResponse:
    """GET /federation/v1/changes?after=&limit= — NDJSON feed of shareable records (hub only)."""
    require_service(await principal(request), issuers=("hub",))
    after = int_param(request, "after", 0, 0, 2**62)
    limit = int_param(request, "limit", MAX_PAGE, 1, MAX_PAGE)
    c = ctx(request)
    # a newer directory first (the hub says which serial it holds): sharing groups left are withdrawn,
    # groups joined republished, in this very page (DESIGN §15)
    await follow_directory(c.federation, c.publisher, announced_serial(request.headers.get(DIRECTORY_SERIAL_HEADER)))
    rows, nxt, more, head = await feed_page(after, limit, ctx(request).settings.feed_page_max_bytes)
    parts = [b'{"seq":%d,"record":%s}\n' % (seq, envelope.encode()) for seq, envelope in rows]
    parts.append(orjson.dumps({"next": nxt, "more": more, "head": head}) + b"\n")
    return web.Response(body=b"".join(parts), content_type="application/x-ndjson")


async def changes_head(request: web.Request) -> web.Response:
    """GET /federation/v1/changes/head?seq=&id=&version=&digest= — the feed's head and whether this node
    holds the record the hub last ingested from it (the hub's divergence check, DESIGN §11)."""
    require_service(await principal(request), issuers=("hub",))
    try:
        anchor = Anchor.from_params(request.query)
    except ValueError as exc:
        raise InvalidParameter(str(exc), parameter=str(exc).partition(":")[0]) from exc
    return json_response(await feed_state(anchor))


# -- hub -------------------------------------------------------------------------------------------


async def directory(request: web.Request) -> web.Response:
    """GET /federation/v1/directory — the signed directory (public): with its sharing groups to enrolled
    nodes and analysts, without them (the same serial, signed without) to everyone else (DESIGN §15)."""
    c = ctx(request)
    if c.access.sees_directory_groups(await principal(request)):
        return json_response(await c.hub.current_directory())
    return json_response(await c.hub.public_directory())


async def enroll(request: web.Request) -> web.Response:
    """POST /federation/v1/enroll — a node presents its invitation, key and proof."""
    body = await read_json(request, ctx(request).settings.max_body_bytes)
    if not isinstance(body, dict):  # DESIGN §9: JSON that is not an object is 422 schema_invalid
        raise SchemaInvalid("request body must be a JSON object", [{"pointer": "", "message": "not an object"}])
    return json_response(await ctx(request).hub.enroll(body))


async def _caller_country(p: Any) -> str:
    """The country of the node calling; a suspended node is refused here, with the reason (403).

    Raises:
        Unauthenticated, Forbidden: not a node's service token, or the node is suspended.
    """
    require_service(p)
    if p.issuer == "hub":
        raise Forbidden("only nodes call this route")
    await require_active_node(str(p.issuer))
    return str(p.issuer)


async def notify(request: web.Request) -> web.Response:
    """POST /federation/v1/notify — a node wrote; pull it now (in the background)."""
    country = await _caller_country(await principal(request))
    c = ctx(request)
    body = await read_json(request, c.settings.max_body_bytes) if request.can_read_body else {}
    if not isinstance(body, dict):
        raise SchemaInvalid("request body must be a JSON object", [{"pointer": "", "message": "not an object"}])
    if "country" in body and not isinstance(body["country"], str):
        raise SchemaInvalid("country must be a string", [{"pointer": "/country", "message": "not a string"}])
    if body.get("country", country) != country:
        raise Forbidden("a node can only ask for its own pull")
    c.sync.notified(country)  # throttled per node (429 rate_limited)
    return json_response({"status": "accepted", "country": country}, status=202)


async def quarantine(request: web.Request) -> web.Response:
    """GET /federation/v1/quarantine — a node sees its own rejected records; the hub admin sees all."""
    p = await principal(request)
    if p.kind != "service":
        require_user(p, ("admin",))
    wanted = country_param(request)  # checked whoever asks
    country = await _caller_country(p) if p.kind == "service" else wanted  # a node only ever sees its own
    limit = int_param(request, "limit", 100, 1, 1000)
    after = int_param(request, "after", 0, 0, 2**62)
    items, next_after = await quarantine_items(country, after, limit)
    total = await reads.quarantine_count(country)
    return json_response({"total": total, "items": items, "next_after": next_after})


#: A quarantine page ends once its evidence passes this many bytes (``next_after`` continues it):
#: a page of 1000 rows of 64 KiB evidence would otherwise be 64 MiB in memory at once.
QUARANTINE_PAGE_BYTES = 4 * 1024 * 1024
QUARANTINE_SLICE = 50


async def quarantine_items(country: str | None, after: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
    """One page of quarantine items after id ``after``, read in slices of ``QUARANTINE_SLICE`` rows (never
    the whole quarantine), ending at ``limit`` items or ``QUARANTINE_PAGE_BYTES`` of evidence;
    ``next_after`` is None on the last page."""
    items: list[dict[str, Any]] = []
    size, last = 0, after
    while len(items) < limit and size < QUARANTINE_PAGE_BYTES:
        rows = await reads.quarantine_page(country, last, min(QUARANTINE_SLICE, limit - len(items)))
        for r in rows:
            try:
                envelope: Any = orjson.loads(r.envelope)
            except orjson.JSONDecodeError:
                envelope = r.envelope  # not JSON (a malformed line), or cut at the evidence cap
            items.append({"id": r.id, "country": r.country, "record_id": r.record_id, "version": r.version,
                          "seq": r.node_seq, "code": r.code, "detail": r.detail, "received_at": r.received_at,
                          "envelope": envelope, "evidence_bytes": r.evidence_bytes,
                          "evidence_sha256": r.evidence_sha256 or None,
                          "evidence_truncated": r.evidence_bytes > len(r.envelope.encode())})
            size += len(r.envelope) + len(r.detail)
            last = r.id
            if size >= QUARANTINE_PAGE_BYTES:
                break
        if not rows:
            return items, None
    more = bool(await reads.quarantine_page(country, last, 1))
    return items, (last if more else None)


async def held_records(request: web.Request) -> web.Response:
    """GET /federation/v1/records?after=&limit= — a node reads back the records the hub holds from it
    (``ncc recover``), exactly as signed, by id."""
    country = await _caller_country(await principal(request))
    after = request.query.get("after", "")
    if after and not RECORD_ID.match(after):
        raise InvalidParameter("after must be a record id (the previous page's next_after)", parameter="after")
    limit = int_param(request, "limit", 100, 1, MAX_PAGE)
    return web.Response(body=await held_page(country, after, limit), content_type="application/json")


async def resume(request: web.Request) -> web.Response:
    """POST /federation/v1/resume — a node that recovered: pull it again from 0 in a new feed epoch."""
    country = await _caller_country(await principal(request))
    epoch = await start_epoch(country)
    ctx(request).sync.trigger(country)
    return json_response({"country": country, "epoch": epoch, "cursor": 0})


async def rotate_key(request: web.Request) -> web.Response:
    """POST /federation/v1/keys/rotate — a node's rotation statement, signed by its current key."""
    country = await _caller_country(await principal(request))
    c = ctx(request)
    body = await read_json(request, c.settings.max_body_bytes)
    return json_response(await c.hub.rotate(country, body))


SYNC_FIELDS = frozenset({"country"})


async def trigger_all(request: web.Request) -> web.Response:
    """POST /api/v1/sync — hub admin: pull every node (or ``{"country": "XX"}`` alone) now and report."""
    require_user(await principal(request), ("admin",))
    c = ctx(request)
    country = None
    if request.can_read_body:
        body = object_body(await read_json(request, c.settings.max_body_bytes), SYNC_FIELDS)
        if "country" in body:
            country = body["country"]
            if not (isinstance(country, str) and COUNTRY_RE.match(country)):
                raise SchemaInvalid("country must be an enrolled node's country code, e.g. DE",
                                    [{"pointer": "/country", "message": "not a country code"}])
            if not await reads.node_enrolled(country):
                raise NotFound(f"no enrolled node {country}")
    # one node as `ncc sync --country` pulls it (a suspended one says so); all: the active replicating
    results = [await c.sync.pull(country, wait=True)] if country else await c.sync.pull_all(wait=True)
    return json_response({"results": [r.to_dict() for r in results]})

