"""The app factory: it only wires settings, storage, services, middleware and routes."""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

from aiohttp import web

from node.config import Settings
from node.context import Context, Keyring, build_registry, utc_now
from node.http import routes
from node.http.auth import Authenticator, ServiceCallLimits
from node.http.keys import AUTH, CONTEXT, METRICS, OPENAPI
from node.http.metrics import Metrics, metrics_middleware
from node.http.openapi import build_openapi
from node.http.problems import REQUEST_ID, install_unparsable_request_problems, problem_middleware
from node.storage import db

log = logging.getLogger("ncc.http")


@web.middleware
async def request_id_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    rid = request.headers.get("X-Request-Id", "")
    if not (0 < len(rid) <= 64 and rid.replace("-", "").isalnum()):
        rid = uuid.uuid4().hex
    request[REQUEST_ID] = rid
    start = time.perf_counter()
    response = await handler(request)
    response.headers["X-Request-Id"] = rid
    log.info(
        "request",
        extra={"request_id": rid, "method": request.method, "path": request.path,
               "status": response.status, "ms": round((time.perf_counter() - start) * 1000, 2)},
    )
    return response


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utc_now,
    migrate: bool = True,
) -> web.Application:
    """Build the aiohttp application of one instance (node or hub role)."""
    install_unparsable_request_problems()
    metrics = Metrics()
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[request_id_middleware, metrics_middleware(metrics), problem_middleware],
    )
    context = Context(settings=settings, keyring=Keyring(settings), registry=build_registry(), clock=clock)
    app[CONTEXT] = context
    app[METRICS] = metrics
    app[OPENAPI] = functools.partial(build_openapi, settings)
    app[AUTH] = Authenticator(
        instance=settings.instance_id,
        role=settings.role,
        user_keys=context.keyring.verifying_keys,
        service_key=_service_key_resolver(context),
        clock=clock,
        admit=ServiceCallLimits(settings.role, settings.service_call_rate, settings.live_search_rate).admit,
    )

    async def database(app: web.Application) -> AsyncIterator[None]:
        tortoise_context = await db.open_db(settings.db_url, run_migrations=migrate)
        try:
            await db.ensure_counters()
            yield
        finally:
            await db.close_db(tortoise_context)

    app.cleanup_ctx.append(database)
    from node.services.wiring import wire_services

    wire_services(app, context, metrics)
    from node.web import setup_portal

    setup_portal(app, settings.role)
    from node.keystore import load_secret
    from node.web.session import setup_sessions

    setup_sessions(app, load_secret(settings.session_secret_path))
    routes.register(app, settings.role)
    return app


def _service_key_resolver(context: Context) -> Callable[[str], Awaitable[object]]:
    async def resolve(kid: str) -> object:
        from node.services.trust import service_key

        return await service_key(context, kid)

    return resolve
