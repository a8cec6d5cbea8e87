"""GET /api/v1/search on both roles, and the node's answer to the hub's live query."""

from __future__ import annotations

from aiohttp import web

from node.http.auth import NODE_ROLES, require_service
from node.http.problems import read_json
from node.http.views.common import ctx, json_response, principal
from node.services.search import query_from_params, result_to_json


async def search(request: web.Request) -> web.Response:
    """Full-text + faceted search over what the reader may see."""
    c = ctx(request)
    p = await principal(request)
    if c.settings.role == "hub":
        from node.http.views.hub import hub_visibilities, nodes_status

        visible = hub_visibilities(p)
        query = query_from_params(request.query, visible, c.settings.search_max_limit)
        live = request.query.get("live", "").lower() in ("1", "true", "yes")
        body = await c.live.search(query, request.query, live=live)
        body["nodes"] = {n["country"]: n["status"] for n in await nodes_status(request)}
        return json_response(body)
    visible = frozenset({"public", "network", "national"}) if p.has_role(*NODE_ROLES) else frozenset({"public"})
    query = query_from_params(request.query, visible, c.settings.search_max_limit)
    return json_response(result_to_json(await c.search.search(query)))


async def federated_search(request: web.Request) -> web.Response:
    """POST /federation/v1/search — the hub asks this node (public and network records only)."""
    require_service(await principal(request), issuers=("hub",))
    c = ctx(request)
    body = await read_json(request, c.settings.max_body_bytes)
    params = body if isinstance(body, dict) else {}
    query = query_from_params(params, frozenset(params.get("visibilities") or ["public"]) & {"public", "network"},
                              c.settings.search_max_limit)
    return json_response(result_to_json(await c.search.search(query)))
