"""Every HTTP route, registered in one place; the OpenAPI document is generated from this table."""

from __future__ import annotations

from aiohttp import web

from node.errors import InvalidParameter
from node.http.routetypes import (
    APPLICATION_ID,
    CONSORTIUM_PARAMS,
    COUNTRY,
    GROUP_NAME,
    RECORD_ID,
    RECORD_ID_PARAM,
    RECORD_TYPE,
    SEARCH_PARAMS,
    SEQUENCE,
    Handler,
    Route,
    integer,
    path,
    query,
)
from node.http.views import (
    applications,
    atlas,
    audit,
    consortia,
    federation,
    health,
    hub,
    log,
    records,
    search,
)
from node.web.render import page
from node.web.routes import portal_routes


def all_routes() -> list[Route]:
    """The complete route table (both roles, web portal included); filter with :func:`routes_for`."""
    rid = RECORD_ID_PARAM
    search_summary = "Full-text and faceted search over what the reader may see"
    return [
        Route("GET", "/healthz", health.healthz, "healthz", "Liveness", tag="operations",
              responses={200: "status ok"}, response_schema="Health"),
        Route("GET", "/readyz", health.readyz, "readyz", "Readiness: database reachable, key loaded",
              tag="operations", responses={200: "ready", 503: "not ready"}, response_schema="Ready"),
        Route("GET", "/metrics", health.metrics, "metrics", "Prometheus metrics", tag="operations",
              content_type="text/plain", responses={200: "metrics"}),
        Route("GET", "/openapi.json", health.openapi, "openapi", "This document", tag="operations",
              responses={200: "OpenAPI 3.1"}, response_schema="Object"),
        Route("POST", "/api/v1/records", records.create_record, "records-create",
              "Create a record (signed version 1)", roles=("node",), auth="user", body="RecordCreate",
              responses={201: "signed envelope", 422: "schema_invalid / consent_missing / canonicalization_error"},
              response_schema="Envelope"),
        Route("GET", "/api/v1/records", records.list_records, "records-list", "List current records",
              roles=("node",), auth="optional",
              params=(query("type", "record type", RECORD_TYPE), query("limit", "page size", integer(1, 1000)),
                      query("cursor", "opaque cursor from next_cursor")),
              responses={200: "records and next_cursor"}, response_schema="RecordList"),
        Route("GET", "/api/v1/records/{id}", records.get_record, "records-get", "Read a record",
              roles=("node",), auth="optional", params=rid,
              responses={200: "envelope", 410: "gone"}, response_schema="Envelope"),
        Route("PUT", "/api/v1/records/{id}", records.update_record, "records-update",
              "Replace a record's payload (optimistic: the version being replaced)", roles=("node",),
              auth="user", params=rid, body="RecordUpdate",
              responses={200: "signed envelope", 409: "version_conflict", 410: "gone",
                         422: "schema_invalid / invalid_transition / canonicalization_error"},
              response_schema="Envelope"),
        Route("DELETE", "/api/v1/records/{id}", records.delete_record, "records-delete",
              "Withdraw a record (signed tombstone)", roles=("node",), auth="user",
              params=(*rid, query("reason", "why (default withdrawn)", {"enum": ["withdrawn", "erased", "revoked"]})),
              responses={200: "tombstone envelope", 410: "gone"}, response_schema="Envelope"),
        Route("GET", "/api/v1/records/{id}/atlas", atlas.record_atlas, "records-atlas",
              "Where an organisation stands in the ECCC Atlas (UUID, last push, state)", roles=("node",),
              auth="user", params=rid, responses={200: "sync state", 404: "not an organisation of this node"},
              response_schema="AtlasSync"),
        # -- the gatekeeper (DESIGN §12)
        Route("POST", "/api/v1/applications", applications.apply, "applications-create",
              "Apply to join the Community (anonymous); a confirmation link is mailed", roles=("node",),
              tag="applications", body="Application",
              responses={202: "{id, status: unconfirmed}", 400: "malformed_json / invalid_parameter (line break "
                         "in a value that reaches a mail header)", 429: "rate_limited (Retry-After)"},
              response_schema="ApplicationAccepted"),
        Route("GET", "/api/v1/applications", applications.application_queue, "applications-queue",
              "Assessors and admins: applications waiting for a decision", roles=("node",), auth="user",
              tag="applications", responses={200: "the queue"}, response_schema="ApplicationQueue"),
        # not under /api/v1/applications/: GET /api/v1/applications/{id} would also match it
        Route("POST", "/api/v1/manage-links", applications.manage_link, "applications-manage-link",
              "Mail a fresh manage link to an applicant's address (same answer whether or not it applied)",
              roles=("node",), tag="applications", body="ManageLinkRequest",
              responses={202: "sent if known", 429: "rate_limited (Retry-After)"}, response_schema="Object"),
        Route("POST", "/api/v1/applications/{id}/confirm", applications.confirm, "applications-confirm",
              "Confirm an application with the mailed token: creates the national record, status applied",
              roles=("node",), tag="applications", body="Confirm", params=(APPLICATION_ID,),
              responses={200: "{id, record_id, status: applied}", 401: "unauthenticated (forged or expired link)",
                         409: "token_used"}, response_schema="ApplicationConfirmed"),
        Route("GET", "/api/v1/applications/{id}", applications.application_status, "applications-status",
              "The applicant's file (Authorization: Bearer <token of the manage link>)", roles=("node",),
              tag="applications", params=(APPLICATION_ID,),
              responses={200: "status and decisions", 401: "unauthenticated (missing, forged or expired link)"},
              response_schema="ApplicationFile"),
        Route("POST", "/api/v1/applications/{id}/changes", applications.propose, "applications-changes",
              "The applicant's later changes (Authorization: Bearer <manage-link token>): a rejected or revoked "
              "organisation applies again; a registered member's change waits for an assessor",
              roles=("node",), tag="applications", body="Proposal", params=(APPLICATION_ID,),
              responses={202: "{id, record_id, status, proposal}", 401: "unauthenticated (missing, forged or "
                         "expired link)", 409: "conflict (not confirmed yet)"}, response_schema="Object"),
        Route("POST", "/api/v1/records/{id}/decisions", applications.decide, "records-decide",
              "Assessors and admins: decide on a membership (the server sets assessed_by and assessed_at)",
              roles=("node",), auth="user", tag="applications", params=rid, body="Decision",
              responses={201: "the new signed version", 410: "gone",
                         422: "schema_invalid (ground missing or not allowed) / invalid_transition"},
              response_schema="Envelope"),
        Route("GET", "/api/v1/records/{id}/history", applications.history, "records-history",
              "Editors, assessors and admins: every version with who caused it, when, decision, ground, note "
              "and the fields changed", roles=("node",), auth="user", params=rid,
              responses={200: "versions"}, response_schema="History"),
        Route("GET", "/api/v1/search", search.search, "search", search_summary, roles=("node",), auth="optional",
              tag="search", params=SEARCH_PARAMS, responses={200: "results and facets"},
              response_schema="SearchResult"),
        Route("GET", "/api/v1/search", search.search, "search", search_summary, roles=("hub",), auth="optional",
              tag="search",
              params=(*SEARCH_PARAMS, query("live", "also ask the nodes: true or false (1/0, yes/no)"),
                      query("timeout_ms", "live deadline (default: the live_timeout_ms setting)", integer(1, 60000))),
              responses={200: "results, facets and each node's status",
                         429: "rate_limited: anonymous live=true searches over live_rate_per_min per address or"
                              " live_max_concurrent at once (Retry-After)"},
              response_schema="SearchResult"),
        Route("GET", "/api/v1/consortia", consortia.consortia, "consortia",
              "Consortium builder: up to k consortia covering the required tags with at least min_countries "
              "countries, over what the reader may see", roles=("hub",), auth="optional", tag="search",
              params=CONSORTIUM_PARAMS,
              responses={200: "proposals, best first, and the tags nobody covers",
                         400: "invalid_parameter: no required tag, an unknown tag id, min_countries > size, "
                              "a bound exceeded"},
              response_schema="Consortia"),
        # -- federation, node side
        Route("GET", "/federation/v1/changes", federation.changes, "changes",
              "Change feed (NDJSON): records after a sequence, then {next, more, head}", roles=("node",),
              auth="service", tag="federation", content_type="application/x-ndjson",
              params=(query("after", "sequence", SEQUENCE), query("limit", "page size", integer(1, 1000))),
              responses={200: "NDJSON feed page"}),
        Route("GET", "/federation/v1/changes/head", federation.changes_head, "changes-head",
              "The feed's head, and whether this node holds the record the hub last ingested from it "
              "(the hub's divergence check before each pull; also its probe of query-only nodes)",
              roles=("node",), auth="service", tag="federation",
              params=(query("seq", "the anchor's feed sequence", integer(1, 2**62)),
                      query("id", "the anchor's record id", RECORD_ID),
                      query("version", "the anchor's version", integer(1, 2**53 - 1)),
                      query("digest", "the anchor's digest (lowercase hex SHA-256)",
                            {"type": "string", "pattern": "^[0-9a-f]{64}$"})),
              responses={200: "{head, holds}"}, response_schema="FeedState"),
        Route("POST", "/federation/v1/search", search.federated_search, "federated-search",
              "Answer a live query from the hub over this node's public/network records", roles=("node",),
              auth="service", tag="federation", body="LiveSearch",
              responses={200: "results and facets"}, response_schema="SearchResult"),
        # -- federation, hub side
        Route("GET", "/federation/v1/directory", federation.directory, "directory",
              "The signed directory of nodes and keys", roles=("hub",), tag="federation",
              responses={200: "signed directory"}, response_schema="Object"),
        Route("POST", "/federation/v1/enroll", federation.enroll, "enroll",
              "Enroll a node with a one-time invitation", roles=("hub",), tag="federation", body="Enroll",
              responses={200: "{directory}", 401: "unauthenticated (forged or expired invitation)",
                         409: "enrollment_token_used", 422: "enrollment_invalid"},
              response_schema="Enrolled"),
        Route("POST", "/federation/v1/notify", federation.notify, "notify",
              "A node announces changes; the hub pulls it now", roles=("hub",), auth="service",
              tag="federation", body="Notify", body_required=False,
              responses={202: "pull started", 429: "rate_limited: notifications closer than notify_min_interval_s"
                                                   " (a pull follows at the end of the interval; Retry-After)"},
              response_schema="Object"),
        Route("GET", "/federation/v1/quarantine", federation.quarantine, "quarantine",
              "Rejected records: a node sees its own, the hub admin all", roles=("hub",), auth="service",
              tag="federation", params=(query("country", "admin: filter by node", COUNTRY),
                                        query("after", "id cursor", SEQUENCE),
                                        query("limit", "page size", integer(1, 1000))),
              responses={200: "quarantined records"}, response_schema="QuarantineList"),
        Route("GET", "/federation/v1/records", federation.held_records, "held-records",
              "A node reads back the records the hub holds from it, exactly as signed (ncc recover)",
              roles=("hub",), auth="service", tag="federation",
              params=(query("after", "record id cursor (the previous page's next_after)", RECORD_ID),
                      query("limit", "page size", integer(1, 1000))),
              responses={200: "records and next_after"}, response_schema="HeldRecords"),
        Route("POST", "/federation/v1/resume", federation.resume, "resume",
              "A node that recovered (ncc recover): the hub pulls it again from 0 in a new feed epoch",
              roles=("hub",), auth="service", tag="federation",
              responses={200: "{country, epoch, cursor}"}, response_schema="Resumed"),
        Route("POST", "/federation/v1/keys/rotate", federation.rotate_key, "rotate-key",
              "A node's key rotation statement, signed by its current key", roles=("hub",), auth="service",
              tag="federation", body="RotateKey",
              responses={200: "{directory, kid}", 422: "enrollment_invalid"}, response_schema="Object"),
        # -- node: its audit of the hub's log (DESIGN §14)
        Route("GET", "/api/v1/audit", audit.audit, "audit",
              "The last audit of the hub's transparency log (when, ok, one line per discrepancy)",
              roles=("node",), auth="user", tag="transparency",
              responses={200: "audit result", 404: "no audit yet"}, response_schema="AuditResult"),
        Route("GET", "/federation/v1/log/seen-head", audit.log_seen_head, "log-seen-head",
              "The hub's signed tree head this node verified last (for other nodes' split-view checks)",
              roles=("node",), tag="transparency", responses={200: "signed tree head", 404: "no audit yet"},
              response_schema="LogHead"),
        # -- hub: the transparency log (DESIGN §14)
        Route("GET", "/federation/v1/log/head", log.head, "log-head",
              "The transparency log's signed tree head", roles=("hub",), tag="transparency",
              responses={200: "signed tree head"}, response_schema="LogHead"),
        Route("GET", "/federation/v1/log/inclusion", log.inclusion, "log-inclusion",
              "Audit path of a record version's entry (anonymous: public records; a node: its own)",
              roles=("hub",), auth="optional", tag="transparency",
              params=(query("id", "record id", RECORD_ID, required=True),
                      query("version", "record version", integer(1, 2**53 - 1), required=True),
                      query("size", "tree size (default: the current head's)", integer(1, 2**62))),
              responses={200: "{index, size, path}", 404: "not in the log, or not visible"},
              response_schema="LogInclusion"),
        Route("GET", "/federation/v1/log/consistency", log.consistency, "log-consistency",
              "Proof that the log of `from` entries is a prefix of the log of `to`", roles=("hub",),
              tag="transparency", params=(query("from", "older size", integer(1, 2**62), required=True),
                                          query("to", "newer size", integer(1, 2**62), required=True)),
              responses={200: "{path}"}, response_schema="LogConsistency"),
        Route("GET", "/federation/v1/log/entries", log.entries, "log-entries",
              "Log entries of one origin after an index (anonymous: public records; a node: its own)",
              roles=("hub",), auth="optional", tag="transparency",
              params=(query("origin", "country", COUNTRY, required=True),
                      query("after", "index, exclusive", integer(-1, 2**62)),
                      query("limit", "page size", integer(1, 1000))),
              responses={200: "{entries, next}"}, response_schema="LogEntries"),
        Route("GET", "/federation/v1/erasures", log.erasures, "erasures",
              "Signed erasure receipts of the calling node's purged records, by log index", roles=("hub",),
              auth="service", tag="transparency",
              params=(query("after", "log index, exclusive", integer(-1, 2**62)),
                      query("limit", "page size", integer(1, 1000))),
              responses={200: "{receipts, next}"}, response_schema="ErasureReceipts"),
        # -- hub, for people
        Route("GET", "/api/v1/nodes", hub.list_nodes, "nodes", "Enrolled nodes with sync status",
              roles=("hub",), tag="federation", responses={200: "list of nodes"}, response_schema="NodeList"),
        Route("POST", "/api/v1/nodes/{country}", hub.admin_node, "node-admin",
              "Hub admin: suspend/activate a node, or switch replicate/query-only", roles=("hub",),
              auth="user", tag="administration", body="NodeAdmin",
              params=(path("country", "node country", COUNTRY),),
              responses={200: "node", 404: "no such node"}, response_schema="Object"),
        Route("POST", "/api/v1/keys/{kid}/revoke", hub.revoke_key, "key-revoke",
              "Hub admin: revoke a node key", roles=("hub",), auth="user", tag="administration",
              body="RevokeKey", body_required=False, params=(path("kid", "key id <country>:<fingerprint>"),),
              responses={200: "revoked", 404: "no such key", 409: "conflict"}, response_schema="Object"),
        Route("GET", "/api/v1/groups", hub.list_groups, "groups",
              "Sharing groups and their members: every group to the hub admin, an analyst's own groups",
              roles=("hub",), auth="user", tag="administration", responses={200: "groups"},
              response_schema="GroupList"),
        Route("POST", "/api/v1/groups", hub.create_group, "group-create",
              "Hub admin: create a sharing group (DESIGN §15)", roles=("hub",), auth="user", tag="administration",
              body="GroupCreate", responses={201: "group", 409: "the group exists"}, response_schema="Group"),
        Route("PUT", "/api/v1/groups/{name}/members/{country}", hub.add_group_member, "group-member-add",
              "Hub admin: add a member country to a group", roles=("hub",), auth="user", tag="administration",
              params=(path("name", "group name", GROUP_NAME), path("country", "member country", COUNTRY)),
              responses={200: "group", 404: "no such group", 422: "group_invalid: not a country of this federation"},
              response_schema="Group"),
        Route("DELETE", "/api/v1/groups/{name}/members/{country}", hub.remove_group_member, "group-member-remove",
              "Hub admin: remove a member country (its records of the group are hidden at once)",
              roles=("hub",), auth="user", tag="administration",
              params=(path("name", "group name", GROUP_NAME), path("country", "member country", COUNTRY)),
              responses={200: "group", 404: "no such group", 422: "group_invalid: not a country of this federation"},
              response_schema="Group"),
        Route("DELETE", "/api/v1/groups/{name}", hub.delete_group, "group-delete",
              "Hub admin: delete a sharing group", roles=("hub",), auth="user", tag="administration",
              params=(path("name", "group name", GROUP_NAME),),
              responses={204: "deleted", 404: "no such group"}),
        Route("POST", "/api/v1/sync", federation.trigger_all, "sync-all",
              "Hub admin: pull every node (or one) now", roles=("hub",), auth="user", tag="administration",
              body="SyncRequest", body_required=False,
              responses={200: "pull results", 404: "no such node"}, response_schema="Object"),
        Route("GET", "/api/v1/records/{id}", hub.get_record, "hub-records-get",
              "A record: signed envelope to analysts, redacted to anonymous readers", roles=("hub",),
              auth="optional", params=rid, responses={200: "envelope", 410: "gone"},
              response_schema="HubRecord"),
    ] + portal_routes()


def routes_for(role: str) -> list[Route]:
    return [r for r in all_routes() if role in r.roles]


def register(app: web.Application, role: str) -> None:
    for route in routes_for(role):
        app.router.add_route(route.method, route.path, single_valued(route), name=route.name)


def single_valued(route: Route) -> Handler:
    """The route's handler, refusing a query parameter given twice that the table does not declare
    repeatable (``?limit=5&limit=500``: which one was meant?) with 400 ``invalid_parameter``."""
    scalars = tuple(p.name for p in route.params if p.where == "query" and p.schema.get("type") != "array")
    if not scalars:
        return route.handler
    inner = route.handler

    async def handler(request: web.Request) -> web.StreamResponse:
        for name in scalars:
            if len(request.query.getall(name, ())) > 1:
                raise InvalidParameter(f"{name} is given more than once", parameter=name)
        return await inner(request)

    if route.content_type == "text/html":
        return page(handler)  # a portal page answers the error with an HTML page, as its own errors
    return handler
