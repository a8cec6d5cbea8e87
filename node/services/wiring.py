"""Builds the role's services onto the context and registers their lifecycles (cleanup_ctx)."""

from __future__ import annotations

from aiohttp import web

from node.context import Context
from node.http.metrics import Metrics
from node.services.publish import Publisher


def wire_services(app: web.Application, context: Context, metrics: Metrics) -> None:
    """Attach the services of ``context.settings.role``."""
    settings = context.settings
    if settings.role == "node":
        context.publisher = Publisher(
            country=settings.country,
            key=context.keyring.key,
            registry=context.registry,
            clock=context.clock,
        )
