"""GET /api/v1/consortia (hub) — the consortium builder (DESIGN §16)."""

from __future__ import annotations

from aiohttp import web

from node.http.views.common import ctx, json_response, principal
from node.services.consortium import build, requirements_from_params


async def consortia(request: web.Request) -> web.Response:
    """Up to ``k`` consortia covering the required tags, over what the reader may see.

    Raises:
        InvalidParameter: (400) see ``requirements_from_params``.
    """
    c = ctx(request)
    req = requirements_from_params(request.query)
    p = await principal(request)
    return json_response(await build(c.search, c.access, p, req))
