"""Node: where a registered organisation stands in the ECCC Atlas (editors and admins)."""

from __future__ import annotations

from aiohttp import web

from node.errors import NotFound
from node.http.auth import require_user
from node.http.views.common import json_response, principal, record_id_param
from node.services.atlas import sync_state

#: Who may see the Atlas sync state: those who keep the registry (it names no personal data, but it
#: is operational detail of the NCC's dealings with the Centre).
READERS = ("admin", "editor", "assessor")


async def record_atlas(request: web.Request) -> web.Response:
    """GET /api/v1/records/{id}/atlas — the organisation's Atlas UUID, last push and sync state."""
    rid = record_id_param(request)
    require_user(await principal(request), READERS)
    state = await sync_state(rid)
    if state is None:
        raise NotFound(f"no organisation {rid} on this node")
    return json_response(state)
