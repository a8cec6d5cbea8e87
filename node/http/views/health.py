"""Health, readiness, metrics and the OpenAPI document (both roles)."""

from __future__ import annotations

import asyncio

from aiohttp import web
from tortoise.connection import connections

from node.http.keys import METRICS, OPENAPI
from node.http.metrics import CONTENT_TYPE
from node.http.views.common import ctx, json_response


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the database answers and the instance key is loaded."""
    checks: dict[str, str] = {}
    try:
        conn = connections.get("default")
        await asyncio.wait_for(conn.execute_query("SELECT 1"), timeout=2)
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        ctx(request).keyring.key()
        checks["key"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["key"] = f"error: {exc.__class__.__name__}"
    ready = all(v == "ok" for v in checks.values())
    return json_response({"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of this instance's routes."""
    return json_response(request.app[OPENAPI]())
