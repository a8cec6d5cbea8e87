"""``web.AppKey`` constants for app state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from node.context import Context
from node.http.auth import Authenticator
from node.metrics import Metrics

CONTEXT = web.AppKey("context", Context)
AUTH = web.AppKey("auth", Authenticator)
METRICS = web.AppKey("metrics", Metrics)
#: Builds this instance's OpenAPI document (``node.http.openapi.build_openapi`` bound to its settings):
#: set by the app factory, so the view that serves it does not import the route table it documents.
OPENAPI = web.AppKey("openapi", Callable[[], dict[str, Any]])
