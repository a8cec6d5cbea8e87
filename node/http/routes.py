"""Every HTTP route, registered in one place; the OpenAPI document is generated from this table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from node.http.views import federation, health, hub, records, search

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
    """The complete route table (both roles, web portal included); filter with :func:`routes_for`."""
    from node.web.routes import portal_routes  # here, not at the top: the portal's views import this module

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
        Route("GET", "/api/v1/search", search.search, "search",
              "Full-text and faceted search over what the reader may see", auth="optional", tag="search",
              params=(("q", "query", "free text; last word matches as a prefix"),
                      ("type", "query", "repeatable"), ("country", "query", "repeatable"),
                      ("domain", "query", "repeatable; matches sub-domains too"),
                      ("subdomain", "query", "repeatable"), ("sector", "query", "repeatable"),
                      ("technology", "query", "repeatable"), ("use_case", "query", "repeatable"),
                      ("role", "query", "repeatable (ECSF)"), ("org_type", "query", "repeatable"),
                      ("limit", "query", "1–100"), ("cursor", "query", "opaque next_cursor"),
                      ("live", "query", "hub: also ask the nodes"), ("timeout_ms", "query", "hub: live deadline")),
              responses={200: "results, facets, nodes", 400: "invalid_parameter"}),
        # -- federation, node side
        Route("GET", "/federation/v1/changes", federation.changes, "changes",
              "Change feed (NDJSON): records after a sequence, then {next, more, head}", roles=("node",),
              auth="service", tag="federation", content_type="application/x-ndjson",
              params=(("after", "query", "sequence"), ("limit", "query", "1–1000")),
              responses={200: "NDJSON feed page", 401: "unauthenticated", 403: "forbidden"}),
        Route("POST", "/federation/v1/search", search.federated_search, "federated-search",
              "Answer a live query from the hub over this node's public/network records", roles=("node",),
              auth="service", tag="federation", body="LiveSearch",
              responses={200: "results and facets", 401: "unauthenticated", 403: "forbidden"}),
        # -- federation, hub side
        Route("GET", "/federation/v1/directory", federation.directory, "directory",
              "The signed directory of nodes and keys", roles=("hub",), tag="federation",
              responses={200: "signed directory"}),
        Route("POST", "/federation/v1/enroll", federation.enroll, "enroll",
              "Enroll a node with a one-time invitation", roles=("hub",), tag="federation", body="Enroll",
              responses={200: "{directory}", 401: "unauthenticated", 409: "enrollment_token_used",
                         422: "enrollment_invalid"}),
        Route("POST", "/federation/v1/notify", federation.notify, "notify",
              "A node announces changes; the hub pulls it now", roles=("hub",), auth="service",
              tag="federation", body="Notify", responses={202: "pull started", 401: "unauthenticated"}),
        Route("GET", "/federation/v1/quarantine", federation.quarantine, "quarantine",
              "Rejected records: a node sees its own, the hub admin all", roles=("hub",), auth="service",
              tag="federation", params=(("country", "query", "admin: filter by node"),
                                        ("after", "query", "id cursor"), ("limit", "query", "1–1000")),
              responses={200: "quarantined records", 401: "unauthenticated", 403: "forbidden"}),
        Route("POST", "/federation/v1/keys/rotate", federation.rotate_key, "rotate-key",
              "A node's key rotation statement, signed by its current key", roles=("hub",), auth="service",
              tag="federation", body="RotateKey",
              responses={200: "{directory, kid}", 401: "unauthenticated", 422: "enrollment_invalid"}),
        # -- hub, for people
        Route("GET", "/api/v1/nodes", hub.list_nodes, "nodes", "Enrolled nodes with sync status",
              roles=("hub",), tag="federation", responses={200: "list of nodes"}),
        Route("POST", "/api/v1/nodes/{country}", hub.admin_node, "node-admin",
              "Hub admin: suspend/activate a node, or switch replicate/query-only", roles=("hub",),
              auth="user", tag="administration", body="NodeAdmin",
              params=(("country", "path", "node country"),),
              responses={200: "node", 403: "forbidden", 404: "not_found"}),
        Route("POST", "/api/v1/keys/{kid}/revoke", hub.revoke_key, "key-revoke",
              "Hub admin: revoke a node key", roles=("hub",), auth="user", tag="administration",
              body="RevokeKey", params=(("kid", "path", "key id"),),
              responses={200: "revoked", 403: "forbidden", 404: "not_found", 409: "conflict"}),
        Route("POST", "/api/v1/sync", federation.trigger_all, "sync-all",
              "Hub admin: pull every node now", roles=("hub",), auth="user", tag="administration",
              responses={200: "pull results", 403: "forbidden"}),
        Route("GET", "/api/v1/records/{id}", hub.get_record, "hub-records-get",
              "A record: signed envelope to analysts, redacted to anonymous readers", roles=("hub",),
              auth="optional", params=rid, responses={200: "envelope", 404: "not_found", 410: "gone"}),
    ] + portal_routes()


def routes_for(role: str) -> list[Route]:
    return [r for r in all_routes() if role in r.roles]


def register(app: web.Application, role: str) -> None:
    for route in routes_for(role):
        app.router.add_route(route.method, route.path, route.handler, name=route.name)
