"""Node: the last audit of the hub's transparency log, and the tree head it saw (for other nodes)."""

from __future__ import annotations

from aiohttp import web

from node.errors import NotFound
from node.http.auth import NODE_ROLES, require_user
from node.http.views.common import json_response, principal
from node.services.audit import last_result, seen_head


async def audit(request: web.Request) -> web.Response:
    """GET /api/v1/audit — the last audit: when, whether it held, one line per discrepancy."""
    require_user(await principal(request), NODE_ROLES)
    result = await last_result()
    if result is None:
        raise NotFound("no audit has run yet (ncc audit, or wait for audit_interval_s)")
    return json_response(result)


async def log_seen_head(request: web.Request) -> web.Response:
    """GET /federation/v1/log/seen-head — the hub's signed tree head this node verified last (public:
    another node compares it with its own to detect a split view)."""
    head = await seen_head()
    if head is None:
        raise NotFound("this node has not audited the hub's log yet")
    return json_response(head)
