"""The HTTP side of the metrics: the request-timing middleware and the exposition content type
(the instruments themselves: ``node.metrics``)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from node.metrics import Metrics

__all__ = ["CONTENT_TYPE", "Metrics", "metrics_middleware"]

CONTENT_TYPE = CONTENT_TYPE_LATEST


def metrics_middleware(metrics: Metrics) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        start = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            info = request.match_info.route.resource
            route = info.canonical if info is not None else "unmatched"
            metrics.requests.labels(request.method, route, str(status)).observe(time.perf_counter() - start)

    return middleware
