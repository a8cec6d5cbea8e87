"""Hub routes for people: node status, records as the reader may see them, administration."""

from __future__ import annotations

from aiohttp import web

from federation.errors import SchemaInvalid
from federation.groups import valid_group_name
from federation.keys import parse_kid
from federation.timefmt import parse_timestamp
from node.errors import NotFound
from node.http.auth import require_user
from node.http.problems import read_json
from node.http.views.common import country_path, ctx, json_response, object_body, principal, record_id_param
from node.services import pullstatus
from node.storage import reads

NODE_FIELDS = frozenset({"status", "mode"})
GROUP_FIELDS = frozenset({"name", "countries"})
REVOKE_FIELDS = frozenset({"revoked_at"})
#: Set on ``GET /api/v1/records/{id}`` for analysts when the record is quarantined (hidden from search
#: and the public; its evidence is at ``GET /federation/v1/quarantine``).
QUARANTINED_HEADER = "NCC-Quarantined"


async def nodes_status(request: web.Request) -> list[dict[str, object]]:
    c = ctx(request)
    return await pullstatus.nodes_status(c.settings, c.clock())


async def node_statuses(request: web.Request) -> dict[str, str]:
    """Each node's status alone, for a search answer's ``nodes`` (node.services.pullstatus)."""
    c = ctx(request)
    return await pullstatus.node_statuses(c.settings, c.clock())


async def list_nodes(request: web.Request) -> web.Response:
    """GET /api/v1/nodes — every enrolled node with its sync status (public)."""
    return json_response(await nodes_status(request))


async def get_record(request: web.Request) -> web.Response:
    """GET /api/v1/records/{id} at the hub: the signed envelope to analysts, redacted to the public."""
    shown = await ctx(request).access.record(await principal(request), record_id_param(request))
    # Analysts get it exactly as signed (DESIGN §7), also when quarantined after an equivocation (the
    # first content the hub accepted); the flag travels in a header, never in the verifiable body.
    resp = json_response(shown.to_json())
    if shown.quarantined:
        resp.headers[QUARANTINED_HEADER] = "equivocation"
    return resp


async def admin_node(request: web.Request) -> web.Response:
    """POST /api/v1/nodes/{country} — hub admin: suspend/activate, replicate/query-only."""
    require_user(await principal(request), ("admin",))
    body = object_body(await read_json(request, ctx(request).settings.max_body_bytes), NODE_FIELDS)
    if not body:
        raise SchemaInvalid("nothing to change: give status and/or mode", [{"pointer": "", "message": "empty"}])
    status, mode = body.get("status"), body.get("mode")
    wrong = [{"pointer": f"/{name}", "message": f"must be one of {', '.join(allowed)}"}
             for name, value, allowed in (("status", status, ("active", "suspended")),
                                          ("mode", mode, ("replicate", "query-only")))
             if value is not None and value not in allowed]
    if wrong:
        raise SchemaInvalid("status must be active|suspended, mode replicate|query-only", wrong)
    return json_response(await ctx(request).hub.set_node(country_path(request), status, mode))


async def revoke_key(request: web.Request) -> web.Response:
    """POST /api/v1/keys/{kid}/revoke — hub admin: revoke a node key (optionally from a given time)."""
    require_user(await principal(request), ("admin",))
    kid = request.match_info["kid"]
    try:
        parse_kid(kid)  # a malformed kid names no key (and never reaches SQL)
    except ValueError as exc:
        raise NotFound(f"no key {kid!r}") from exc
    body = await read_json(request, ctx(request).settings.max_body_bytes) if request.can_read_body else {}
    when = object_body(body, REVOKE_FIELDS).get("revoked_at")
    try:
        at = None if when is None else parse_timestamp(when)
    except ValueError as exc:
        raise SchemaInvalid("revoked_at must be a timestamp YYYY-MM-DDTHH:MM:SSZ",
                            [{"pointer": "/revoked_at", "message": "not a timestamp"}]) from exc
    return json_response(await ctx(request).hub.revoke_key(kid, at, ctx(request).search))


# -- sharing groups (DESIGN §15) -------------------------------------------------------------------


async def list_groups(request: web.Request) -> web.Response:
    """GET /api/v1/groups — the hub admin: every group; an analyst: the groups its token reads."""
    p = await principal(request)
    require_user(p, ("admin", "analyst"))
    known = await reads.hub_groups()
    mine = ctx(request).access.reader_groups(p, known)
    return json_response([{"name": name, "countries": sorted(known[name])} for name in sorted(mine)])


async def create_group(request: web.Request) -> web.Response:
    """POST /api/v1/groups {name, countries} — hub admin."""
    require_user(await principal(request), ("admin",))
    body = object_body(await read_json(request, ctx(request).settings.max_body_bytes), GROUP_FIELDS)
    group = await ctx(request).hub.create_group(body.get("name"), body.get("countries"))
    return json_response(group, status=201)


def _group_path(request: web.Request) -> str:
    name = request.match_info["name"]
    if not valid_group_name(name):
        raise NotFound(f"no group {name[:80]!r}")
    return name


async def add_group_member(request: web.Request) -> web.Response:
    """PUT /api/v1/groups/{name}/members/{country} — hub admin."""
    require_user(await principal(request), ("admin",))
    return json_response(await ctx(request).hub.set_member(_group_path(request), country_path(request), True))


async def remove_group_member(request: web.Request) -> web.Response:
    """DELETE /api/v1/groups/{name}/members/{country} — hub admin: the country's records of the group are
    hidden at once; its node withdraws them at the next pull."""
    require_user(await principal(request), ("admin",))
    return json_response(await ctx(request).hub.set_member(_group_path(request), country_path(request), False))


async def delete_group(request: web.Request) -> web.Response:
    """DELETE /api/v1/groups/{name} — hub admin."""
    require_user(await principal(request), ("admin",))
    await ctx(request).hub.delete_group(_group_path(request))
    return web.Response(status=204)
