"""``web.AppKey`` constants for app state."""

from __future__ import annotations

from aiohttp import web

from node.context import Context
from node.http.auth import Authenticator
from node.http.metrics import Metrics

CONTEXT = web.AppKey("context", Context)
AUTH = web.AppKey("auth", Authenticator)
METRICS = web.AppKey("metrics", Metrics)
