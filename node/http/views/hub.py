"""Hub routes for people: node status, records as the reader may see them, administration."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from aiohttp import web

from federation.errors import SchemaInvalid
from federation.keys import parse_kid
from federation.timefmt import parse_timestamp
from node.context import Context
from node.errors import NotFound
from node.http.auth import require_user
from node.http.problems import read_json
from node.http.views.common import country_path, ctx, json_response, object_body, principal, record_id_param
from node.services.sync import node_status
from node.storage import reads

if TYPE_CHECKING:  # rows come from node.storage.reads; views never query models themselves
    from node.storage.hub_models import FederatedNode, PullState

NODE_FIELDS = frozenset({"status", "mode"})
REVOKE_FIELDS = frozenset({"revoked_at"})
#: Set on ``GET /api/v1/records/{id}`` for analysts when the record is quarantined (hidden from search
#: and the public; its evidence is at ``GET /federation/v1/quarantine``).
QUARANTINED_HEADER = "NCC-Quarantined"


def _status(node: FederatedNode, state: PullState | None, c: Context, now: datetime) -> str:
    """A suspended node is not pulled: what the hub holds of it is ``stale`` from the moment it is
    suspended (regression: it showed ``ok`` until ``stale_after_s`` had passed). A query-only node is
    probed every ``pull_interval_s`` and its live answers count (DESIGN §11): one that is down is
    ``unreachable``/``stale`` like any other (regression: it always showed ``ok``)."""
    if node.status != "active":
        return "stale"
    return node_status(state, c.settings, now)


async def nodes_status(request: web.Request) -> list[dict[str, object]]:
    c = ctx(request)
    now = c.clock()
    states = await reads.pull_states()
    out: list[dict[str, object]] = []
    for node in await reads.federated_nodes():
        st = states.get(node.country)
        out.append({
            "country": node.country,
            "url": node.url,
            "status": _status(node, st, c, now),
            "mode": node.mode,
            "enrollment": node.status,
            "last_success": st.last_success if st else None,
            "consecutive_failures": st.consecutive_failures if st else 0,
            "lag": max(0, st.head - st.cursor) if st else 0,
            "cursor": st.cursor if st else 0,
            "head": st.head if st else 0,
            "epoch": st.epoch if st else 0,
            "diverged": ({"since": st.diverged_at, "reason": st.diverged_reason}
                         if st is not None and st.diverged_at is not None else None),
            "last_error": st.last_error if st else None,
            "quarantined": await reads.quarantine_count(node.country),
        })
    return out


async def node_statuses(request: web.Request) -> dict[str, str]:
    """Each enrolled node's ``status`` alone (what a search answer carries): the two reads it needs,
    without the per-node quarantine count of :func:`nodes_status` (one query per node and search)."""
    c = ctx(request)
    now = c.clock()
    states = await reads.pull_states()
    return {node.country: _status(node, states.get(node.country), c, now) for node in await reads.federated_nodes()}


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
