"""Every HTTP route, registered in one place; the OpenAPI document is generated from this table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from node.http.views import health, records

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    """One route: where, who may call it, and what it answers (for OpenAPI)."""

    method: str
    path: str
    handler: Handler
    name: str
    summary: str
    roles: tuple[str, ...] = ("node", "hub")
    auth: str = "none"  # none | optional | user | service
    tag: str = "registry"
    params: tuple[tuple[str, str, str], ...] = ()  # (name, in, description)
    body: str | None = None  # JSON schema name of the request body
    responses: dict[int, str] = field(default_factory=dict)
    content_type: str = "application/json"


def all_routes() -> list[Route]:
    """The complete route table (both roles); filter with :func:`routes_for`."""
    rid = (("id", "path", "record id urn:ncc:<origin>:<type>:<uuid>"),)
    return [
        Route("GET", "/healthz", health.healthz, "healthz", "Liveness", tag="operations",
              responses={200: "status ok"}),
        Route("GET", "/readyz", health.readyz, "readyz", "Readiness: database reachable, key loaded",
              tag="operations", responses={200: "ready", 503: "not ready"}),
        Route("GET", "/metrics", health.metrics, "metrics", "Prometheus metrics", tag="operations",
              content_type="text/plain", responses={200: "metrics"}),
        Route("GET", "/openapi.json", health.openapi, "openapi", "This document", tag="operations",
              responses={200: "OpenAPI 3.1"}),
        Route("POST", "/api/v1/records", records.create_record, "records-create",
              "Create a record (signed version 1)", roles=("node",), auth="user", body="RecordCreate",
              responses={201: "signed envelope", 401: "unauthenticated", 403: "forbidden",
                         413: "payload_too_large", 422: "schema_invalid / consent_missing"}),
        Route("GET", "/api/v1/records", records.list_records, "records-list", "List current records",
              roles=("node",), auth="optional",
              params=(("type", "query", "record type"), ("limit", "query", "page size 1–1000"),
                      ("cursor", "query", "opaque cursor from next_cursor")),
              responses={200: "records and next_cursor", 400: "invalid_parameter"}),
        Route("GET", "/api/v1/records/{id}", records.get_record, "records-get", "Read a record",
              roles=("node",), auth="optional", params=rid,
              responses={200: "envelope", 404: "not_found", 410: "gone"}),
        Route("PUT", "/api/v1/records/{id}", records.update_record, "records-update",
              "Replace a record's payload (optimistic: the version being replaced)", roles=("node",),
              auth="user", params=rid, body="RecordUpdate",
              responses={200: "signed envelope", 404: "not_found", 409: "version_conflict", 410: "gone",
                         422: "schema_invalid"}),
        Route("DELETE", "/api/v1/records/{id}", records.delete_record, "records-delete",
              "Withdraw a record (signed tombstone)", roles=("node",), auth="user",
              params=rid + (("reason", "query", "withdrawn | erased | revoked"),),
              responses={200: "tombstone envelope", 404: "not_found", 410: "gone"}),
    ]


def routes_for(role: str) -> list[Route]:
    return [r for r in all_routes() if role in r.roles]


def register(app: web.Application, role: str) -> None:
    for route in routes_for(role):
        app.router.add_route(route.method, route.path, route.handler, name=route.name)
