"""Hub: the transparency log (DESIGN §14) — signed tree head, inclusion and consistency proofs, entries."""

from __future__ import annotations

from aiohttp import web

from federation.merkle import ProofError
from node.errors import Forbidden, InvalidParameter, NotFound
from node.http.auth import require_service
from node.http.views.common import COUNTRY, RECORD_ID, ctx, int_param, json_response, principal
from node.storage import translog as store

MAX_INDEX = 2**62


async def head(request: web.Request) -> web.Response:
    """GET /federation/v1/log/head — the signed tree head (public)."""
    return json_response(await ctx(request).log.head())


async def inclusion(request: web.Request) -> web.Response:
    """GET /federation/v1/log/inclusion?id=&version=[&size=] — the audit path of a record version."""
    rid = request.query.get("id", "")
    if not RECORD_ID.match(rid):
        raise InvalidParameter("id must be a record id urn:ncc:<origin>:<type>:<uuid>", parameter="id")
    version = int_param(request, "version", 0, 1, 2**53 - 1)
    if version == 0:
        raise InvalidParameter("version is required", parameter="version")
    found = await store.index_of(rid, version)
    if found is None or not await ctx(request).access.log_entry_visible(await principal(request), found[1], found[2]):
        raise NotFound(f"no log entry for {rid} v{version}")
    index = found[0]
    current = await store.size()
    size = int_param(request, "size", current, 1, MAX_INDEX)
    if size > current:
        raise InvalidParameter(f"size must be at most the log's size {current}", parameter="size")
    try:
        path = await ctx(request).log.inclusion(index, size)
    except ProofError as exc:
        raise InvalidParameter(f"entry {index} is not in a log of {size} entries", parameter="size") from exc
    return json_response({"index": index, "size": size, "path": path})


async def consistency(request: web.Request) -> web.Response:
    """GET /federation/v1/log/consistency?from=&to= — the log of ``from`` entries is a prefix of ``to``'s."""
    first = int_param(request, "from", 0, 1, MAX_INDEX)
    second = int_param(request, "to", 0, 1, MAX_INDEX)
    if not first or not second:
        raise InvalidParameter("from and to are required", parameter="from" if not first else "to")
    current = await store.size()
    if second > current or first > second:
        raise InvalidParameter(f"need 1 <= from <= to <= {current} (the log's size)", parameter="to")
    return json_response({"path": await ctx(request).log.consistency(first, second)})


async def entries(request: web.Request) -> web.Response:
    """GET /federation/v1/log/entries?origin=XX[&after=N][&limit=] — entries of one origin, paged."""
    origin = request.query.get("origin", "")
    if not COUNTRY.match(origin):
        raise InvalidParameter("origin must be a country code (XX)", parameter="origin")
    after = int_param(request, "after", -1, -1, MAX_INDEX)
    limit = int_param(request, "limit", 1000, 1, 1000)
    visibilities = await ctx(request).access.log_visibilities(await principal(request), origin)
    return json_response(await ctx(request).log.entries(origin, after, limit, visibilities))


async def erasures(request: web.Request) -> web.Response:
    """GET /federation/v1/erasures?after=N — signed receipts of the calling node's erased records the hub
    has purged (service token of the origin)."""
    p = await principal(request)
    require_service(p)
    origin = ctx(request).access.receipts_origin(p)
    if origin is None:
        raise Forbidden("erasure receipts are for the node that erased the records (its service token)")
    after = int_param(request, "after", -1, -1, MAX_INDEX)
    limit = int_param(request, "limit", 1000, 1, 1000)
    return json_response(await ctx(request).log.receipts(origin, after, limit))
