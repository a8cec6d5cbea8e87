"""OpenAPI 3.1 document generated from the route table (so no route can be left out).

Each operation declares what its handler really answers, so that a client (or a fuzzer checking
the server against this document) can rely on it: typed parameters, the request body, the success
response and its schema, and the errors the route's shape implies — 401/403 where a token is
checked, 400 ``invalid_parameter`` for bad query parameters, 404 for a path naming nothing, 400
``malformed_json``/413/422 where a JSON body is read, 503 ``unavailable`` wherever the database is
needed — plus the ones listed in the route table.
API errors are RFC 9457 problem documents; portal pages answer errors with an HTML page.
"""

from __future__ import annotations

import re
from typing import Any

from node.config import Settings
from node.http.routes import routes_for
from node.http.routetypes import HEADER_SAFE_STRING, REPEATABLE, STRING, Route, Schema
from node.search.base import DIMENSIONS as SEARCH_DIMENSIONS
from node.search.cursor import MAX_OFFSET

PROBLEM_JSON = "application/problem+json"
HTML = "text/html"

PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "description": "stable machine-readable error code"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "pointer": {"type": "string"}, "message": {"type": "string"},
            "keyword": {"type": "string", "description": "the JSON Schema keyword that failed (schema_invalid)"}}}},
    },
}

VISIBILITY = {"anyOf": [{"enum": ["public", "network", "national"]},
                        {"type": "string", "pattern": "^group:[a-z0-9-]{1,63}$",
                         "description": "a sharing group this node's country is a member of (DESIGN §15)"}]}
GROUP_NAME: Schema = {"type": "string", "pattern": "^[a-z0-9-]{1,63}$"}
NULLABLE_STRING = {"type": ["string", "null"]}

BODIES: dict[str, Schema] = {
    "RecordCreate": {
        "type": "object",
        "required": ["type", "payload"],
        "properties": {
            "type": {"enum": ["organisation", "expert", "project", "facility"]},
            "visibility": VISIBILITY,
            "payload": {"type": "object", "description": "validated against schemas/<type>.v1.json"},
        },
        "additionalProperties": False,
    },
    "RecordUpdate": {
        "type": "object",
        "required": ["payload", "version"],
        "properties": {
            "payload": {"type": "object"},
            "visibility": VISIBILITY,
            "version": {"type": "integer", "minimum": 1, "description": "the version being replaced"},
        },
        "additionalProperties": False,
    },
    "Enroll": {
        "type": "object",
        "required": ["token", "country", "url", "public_key", "kid", "proof"],
        "properties": {
            **{k: {"type": "string"} for k in ("token", "country", "url", "public_key", "kid", "proof")},
            "not_before": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$",
                           "description": "optional: when the node first signed a record with this key"},
            "instance": {"type": "string", "pattern": "^[A-Za-z0-9-]{8,64}$",
                         "description": "optional: the node instance's id; another instance than the one "
                                        "enrolled before starts a new feed epoch (pulled from 0)"},
        },
    },
    "Notify": {"type": "object", "properties": {"country": {"type": "string", "description": "the caller's own"}}},
    "Application": {
        "type": "object",
        "required": ["type", "payload", "applicant", "accept_terms"],
        "properties": {
            "type": {"const": "organisation"},
            "payload": {"type": "object", "description": "an organisation payload without membership or consent"},
            "visibility": {"enum": ["public", "network"], "default": "network",
                           "description": "what the applicant consents to once registered"},
            "applicant": {"type": "object", "required": ["name", "email"], "additionalProperties": False,
                          "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200},
                                         "email": {"type": "string", "format": "email", "maxLength": 254}}},
            "accept_terms": {"const": True},
        },
        "additionalProperties": False,
    },
    "Proposal": {"type": "object", "required": ["payload"], "properties": {
        "payload": {"type": "object", "description": "the whole organisation payload, without membership or consent"},
        "visibility": {"enum": ["public", "network"]}}, "additionalProperties": False},
    "Confirm": {"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}},
                "additionalProperties": False},
    "ManageLinkRequest": {"type": "object", "required": ["email"], "properties": {"email": {"type": "string"}},
                          "additionalProperties": False},
    "Decision": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"enum": ["assessed", "registered", "rejected", "revoked"]},
            "ground": {"enum": ["criteria-not-met", "criteria-no-longer-met", "financial-regulation-exclusion",
                                "security-reasons"], "description": "required for rejected and revoked only"},
            "note": {"type": "string", "maxLength": 2000, "description": "for the applicant; kept in the history"},
        },
        "additionalProperties": False,
    },

    "RotateKey": {"type": "object", "description": "a key-rotation statement signed by the old key"},
    "LiveSearch": {
        "type": "object",
        "description": "search parameters as in GET /api/v1/search, filters as lists",
        "properties": {
            "q": {"type": ["string", "null"], "maxLength": 500},
            "limit": {"type": "integer", "minimum": 1, "maximum": "search_max_limit"},
            "cursor": NULLABLE_STRING,
            "visibilities": {"type": "array", "items": {"enum": ["public", "network"]}},
            **{dim: {"type": "array", "items": {"type": "string"}} for dim in SEARCH_DIMENSIONS},
            "offset": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET,
                       "description": "hits of this query to skip (the hub pages)"},
            "strict": {"type": "boolean", "description": "keep words no record has (the hub judges them for "
                                                         "the federation); the answer lists them in absent_terms"},
            "drop_terms": {"type": "array", "maxItems": 64, "items": {"type": "string", "maxLength": 500},
                           "description": "words to leave out (absent from every source)"},
            "restricted": {"type": "boolean", "description": "the asking reader (a hub analyst) sees every "
                                                             "field: match fields not marked public too (only "
                                                             "with network in visibilities)"},
        },
    },
    "NodeAdmin": {"type": "object", "minProperties": 1, "additionalProperties": False, "properties": {
        "status": {"enum": ["active", "suspended"]}, "mode": {"enum": ["replicate", "query-only"]}}},
    "SyncRequest": {"type": "object", "additionalProperties": False, "properties": {
        "country": {"type": "string", "pattern": "^[A-Z]{2}$", "description": "pull only this node"}}},
    "GroupCreate": {"type": "object", "required": ["name", "countries"], "additionalProperties": False,
                    "properties": {"name": GROUP_NAME,
                                   "countries": {"type": "array", "items": {"type": "string", "pattern": "^[A-Z]{2}$"}}}},
    "RevokeKey": {"type": "object", "additionalProperties": False, "properties": {
        "revoked_at": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$",
                       "description": "YYYY-MM-DDTHH:MM:SSZ (default: now)"}}},
    # -- portal forms (every POST carries the CSRF token: an HMAC of the session id or ncc_csrf cookie)
    "CsrfForm": {"type": "object", "required": ["csrf"], "properties": {"csrf": {"type": "string"}}},
    "ApplyForm": {"type": "object", "required": ["csrf", "applicant_name", "applicant_email"], "properties": {
        "csrf": {"type": "string"}, "applicant_name": {"type": "string"}, "applicant_email": {"type": "string"},
        "visibility": {"enum": ["public", "network"]}, "accept_terms": {"const": "yes"}},
        "additionalProperties": {"type": "string", "description": "payload fields named by their JSON pointer"}},
    "ManageLinkForm": {"type": "object", "required": ["csrf", "email"], "properties": {
        "csrf": {"type": "string"}, "email": {"type": "string"}}},
    "ConfirmForm": {"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}},
    "DecisionForm": {"type": "object", "required": ["csrf", "status"], "properties": {
        "csrf": {"type": "string"}, "status": {"enum": ["assessed", "registered", "rejected", "revoked"]},
        "ground": {"type": "string"}, "note": {"type": "string", "maxLength": 2000}}},
    "LoginForm": {"type": "object", "required": ["csrf", "token"], "properties": {
        "csrf": {"type": "string"}, "token": {"type": "string"}, "next": HEADER_SAFE_STRING}},
    "RecordForm": {"type": "object", "required": ["csrf", "visibility"], "properties": {
        "csrf": {"type": "string"}, "type": {"type": "string"}, "visibility": VISIBILITY,
        "version": {"type": "integer", "minimum": 1}},
        "description": "plus one field per payload property, named as the form generated from the schema"},
    "DeleteForm": {"type": "object", "required": ["csrf", "reason"], "properties": {
        "csrf": {"type": "string"}, "reason": {"enum": ["withdrawn", "erased", "revoked"]}}},
    "ImportForm": {"type": "object", "required": ["csrf", "file"], "properties": {
        "csrf": {"type": "string"}, "file": {"type": "string", "contentMediaType": "application/octet-stream"},
        "type": {"type": "string"}, "visibility": {"type": "string"}, "mode": {"type": "string"}}},
}

ENVELOPE: Schema = {
    "type": "object",
    "required": ["ncc", "id", "type", "schema", "origin", "version", "issued_at", "visibility", "deleted",
                 "payload"],
    "properties": {
        "ncc": {"const": 1},
        "id": {"type": "string"},
        "type": {"type": "string"},
        "schema": {"type": "string"},
        "origin": {"type": "string"},
        "version": {"type": "integer", "minimum": 1},
        "issued_at": {"type": "string"},
        "visibility": VISIBILITY,
        "deleted": {"type": "boolean"},
        "payload": {"type": "object"},
        "sig": {"type": "object", "required": ["alg", "kid", "value"]},
        "redacted": {"type": "array", "items": {"type": "string"},
                     "description": "anonymous readers: pointers of the fields removed, every field the "
                                    "schema does not mark x-ncc-public (no sig)"},
    },
}

RESPONSES: dict[str, Schema] = {
    "Object": {"type": "object"},
    "Group": {"type": "object", "required": ["name", "countries"], "properties": {
        "name": GROUP_NAME, "countries": {"type": "array", "items": {"type": "string"}}}},
    "GroupList": {"type": "array", "items": {"$ref": "#/components/schemas/Group"}},
    "Health": {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
    "Ready": {"type": "object", "required": ["status", "checks"], "properties": {
        "status": {"enum": ["ok", "unavailable"]},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}}}},
    "Envelope": ENVELOPE,
    "HubRecord": {"$ref": "#/components/schemas/Envelope", "description": (
        "analysts/admins: the envelope exactly as signed (header NCC-Quarantined: equivocation when the "
        "record is quarantined); anonymous readers: without sig, only the schema's public fields, the "
        "others listed in redacted")},
    "LogHead": {"type": "object", "required": ["size", "root", "timestamp", "sig"], "properties": {
        "size": {"type": "integer", "minimum": 0}, "root": {"type": "string"}, "timestamp": {"type": "string"},
        "sig": {"type": "object", "required": ["alg", "kid", "value"]}}},
    "AuditResult": {"type": "object", "required": ["at", "ok", "summary", "lines", "discrepancies"], "properties": {
        "at": {"type": "string"}, "ok": {"type": "boolean"}, "summary": {"type": "string"},
        "lines": {"type": "array", "items": {"type": "string"}}, "discrepancies": {"type": "integer"},
        "head": {"type": ["object", "null"]}}},
    "ErasureReceipts": {"type": "object", "required": ["receipts", "next"], "properties": {
        "receipts": {"type": "array", "items": {"type": "object",
                                                "required": ["id", "version", "purged_at", "log_index", "sig"]}},
        "next": {"type": ["integer", "null"]}}},
    "LogInclusion": {"type": "object", "required": ["index", "size", "path"], "properties": {
        "index": {"type": "integer", "minimum": 0}, "size": {"type": "integer", "minimum": 1},
        "path": {"type": "array", "items": {"type": "string"}}}},
    "LogConsistency": {"type": "object", "required": ["path"], "properties": {
        "path": {"type": "array", "items": {"type": "string"}}}},
    "LogEntries": {"type": "object", "required": ["entries", "next"], "properties": {
        "entries": {"type": "array", "items": {"type": "object", "required": ["index", "entry"]}},
        "next": {"type": ["integer", "null"]}}},
    "AtlasSync": {"type": "object", "required": ["record_id", "atlas_uuid", "state", "reason", "last_push"],
                  "properties": {
                      "record_id": {"type": "string"}, "atlas_uuid": NULLABLE_STRING,
                      "state": {"enum": ["pending", "synced", "conflict", "failed", "reported", "not_registered"]},
                      "reason": NULLABLE_STRING, "last_push": NULLABLE_STRING, "remote_changed": NULLABLE_STRING,
                      "pushed_version": {"type": ["integer", "null"]}}},
    "RecordList": {"type": "object", "required": ["records", "next_cursor"], "properties": {
        "records": {"type": "array", "items": {"$ref": "#/components/schemas/Envelope"}},
        "next_cursor": NULLABLE_STRING}},
    "SearchResult": {"type": "object", "required": ["total", "results", "facets", "next_cursor"], "properties": {
        "total": {"type": "integer", "minimum": 0},
        "results": {"type": "array", "items": {
            "type": "object", "required": ["id", "type", "origin", "title", "snippet", "score", "version", "verified"],
            "properties": {"id": {"type": "string"}, "type": {"type": "string"}, "origin": {"type": "string"},
                           "title": {"type": "string"}, "snippet": {"type": "string"}, "score": {"type": "number"},
                           "version": {"type": "integer"}, "verified": {"type": "boolean"}}}},
        "facets": {"type": "object", "additionalProperties": {
            "type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}},
        "next_cursor": NULLABLE_STRING,
        "nodes": {"type": "object", "additionalProperties": {"type": "string"},
                  "description": "status of each node's data (a node: itself, ok)"},
        "ignored_terms": {"type": "array", "items": {"type": "string"},
                          "description": "query words left out: function words, words no visible record has"},
        "absent_terms": {"type": "array", "items": {"type": "string"},
                         "description": "live-query answers (strict): words this node's records do not have"},
        "partial": {"type": "boolean"},
        "missing": {"type": "array", "items": {"type": "string"}}}},
    "Consortia": {"type": "object", "required": ["consortia", "missing"], "properties": {
        "consortia": {"type": "array", "items": {
            "type": "object", "required": ["members", "covers", "missing", "countries", "score"],
            "properties": {
                "members": {"type": "array", "items": {
                    "type": "object", "required": ["id", "country", "title", "covers"],
                    "properties": {"id": {"type": "string"}, "country": {"type": "string"},
                                   "title": {"type": "string"},
                                   "covers": {"type": "array", "items": {"type": "string"},
                                              "description": "the required tags this member brings"},
                                   "evidence": {"type": "array", "items": {"type": "string"},
                                                "description": "those of covers found in its description only"},
                                   "sme": {"type": "boolean"}, "score": {"type": "number"}}}},
                "covers": {"type": "array", "items": {"type": "string"}},
                "missing": {"type": "array", "items": {"type": "string"},
                            "description": "required tags no member covers"},
                "countries": {"type": "array", "items": {"type": "string"}},
                "score": {"type": "number"},
                "unmet": {"type": "array", "items": {"enum": ["min_countries", "sme"]},
                          "description": "constraints no proposal could meet with the candidates visible"}}}},
        "missing": {"type": "array", "items": {"type": "string"},
                    "description": "required tags no visible organisation covers"}}},
    "NodeList": {"type": "array", "items": {
        "type": "object",
        "required": ["country", "url", "status", "mode", "last_success", "consecutive_failures", "lag"],
        "properties": {"country": {"type": "string"}, "url": {"type": "string"},
                       "status": {"enum": ["ok", "stale", "unreachable", "diverged"]},
                       "mode": {"enum": ["replicate", "query-only"]},
                       "last_success": NULLABLE_STRING, "consecutive_failures": {"type": "integer"},
                       "lag": {"type": "integer"},
                       "cursor": {"type": "integer", "description": "the hub's feed cursor for this node"},
                       "head": {"type": "integer", "description": "the node's feed head, as last seen"},
                       "epoch": {"type": "integer", "description": "feed epoch: +1 each time the cursor "
                                 "restarted from 0 (a new instance enrolled, ncc recover)"},
                       "diverged": {"type": ["object", "null"], "description": (
                           "set while the node no longer holds what the hub ingested from it (restored "
                           "from a backup, replaced): nothing of it is ingested until ncc recover"),
                           "properties": {"since": {"type": "string"}, "reason": {"type": "string"}}},
                       "last_error": {"type": ["string", "null"], "description": "the last failed pull's "
                                      "error code (null after a success)"},
                       "reason": {"type": ["string", "null"], "description": "why the node is unreachable "
                                  "(its last pull's error code) or diverged; null for ok and stale"}}}},
    "FeedState": {"type": "object", "required": ["head", "holds"], "properties": {
        "head": {"type": "integer", "minimum": 0},
        "holds": {"type": ["boolean", "null"], "description": "null when no anchor was given"}}},
    "HeldRecords": {"type": "object", "required": ["records", "next_after"], "properties": {
        "records": {"type": "array", "items": {"$ref": "#/components/schemas/Envelope"}},
        "next_after": NULLABLE_STRING}},
    "Resumed": {"type": "object", "required": ["country", "epoch", "cursor"], "properties": {
        "country": {"type": "string"}, "epoch": {"type": "integer"}, "cursor": {"const": 0}}},
    "QuarantineList": {"type": "object", "required": ["total", "items", "next_after"], "properties": {
        "total": {"type": "integer"}, "items": {"type": "array", "items": {"type": "object"}},
        "next_after": {"type": ["integer", "null"]}}},
    "Enrolled": {"type": "object", "required": ["directory"], "properties": {"directory": {"type": "object"}}},
    "ApplicationAccepted": {"type": "object", "required": ["id", "status"], "properties": {
        "id": {"type": "string"}, "status": {"const": "unconfirmed"}}},
    "ApplicationConfirmed": {"type": "object", "required": ["id", "record_id", "status"], "properties": {
        "id": {"type": "string"}, "record_id": {"type": "string"}, "status": {"const": "applied"}}},
    "ApplicationFile": {"type": "object", "required": ["id", "status"], "properties": {
        "id": {"type": "string"}, "status": {"type": "string"}, "record_id": NULLABLE_STRING,
        "organisation": NULLABLE_STRING, "submitted_at": {"type": "string"}, "confirmed_at": NULLABLE_STRING,
        "decisions": {"type": "array", "items": {"type": "object"}}}},
    "ApplicationQueue": {"type": "object", "required": ["applications"], "properties": {
        "applications": {"type": "array", "items": {"type": "object"}}}},
    "History": {"type": "object", "required": ["id", "versions"], "properties": {
        "id": {"type": "string"},
        "versions": {"type": "array", "items": {"type": "object", "required": [
            "version", "at", "actor", "actor_kind", "decision", "ground", "note", "changed"], "properties": {
            "version": {"type": "integer"}, "at": {"type": "string"}, "visibility": {"type": "string"},
            "deleted": {"type": "boolean"}, "actor": NULLABLE_STRING, "actor_kind": NULLABLE_STRING,
            "decision": NULLABLE_STRING, "ground": NULLABLE_STRING, "note": NULLABLE_STRING,
            "changed": {"type": ["array", "null"], "items": {"type": "string"}}}}}}},

}

#: Who may call an operation: API routes take a bearer token; portal pages also a session cookie.
SECURITY = {
    "user": [{"bearer": []}],
    "service": [{"bearer": []}],
    "optional": [{}, {"bearer": []}],
    "none": [],
}
PORTAL_SECURITY = {
    "user": [{"session": []}, {"bearer": []}],
    "optional": [{}, {"session": []}, {"bearer": []}],
    "none": [],
}


#: Routes that answer without the database (everything else answers 503 while it is unreachable).
DATABASE_FREE = frozenset({"/healthz", "/openapi.json"})


def implied_errors(route: Route) -> dict[int, str]:
    """The errors every route of this shape can answer (the route table adds its own)."""
    errors: dict[int, str] = {}
    if route.auth in ("user", "service"):
        errors[401] = "unauthenticated: missing, forged, expired or revoked token"
        errors[403] = "forbidden: the token does not allow this"
    elif route.auth == "optional":
        errors[401] = "unauthenticated: a token was sent but is not valid here"
    if any(p.where == "query" for p in route.params):
        errors[400] = "invalid_parameter"
    if any(p.where == "path" for p in route.params):
        errors[404] = "not_found"
    if route.body and route.body_media == "application/json":
        errors[400] = "malformed_json" + (" / invalid_parameter" if 400 in errors else "")
        errors[413] = "payload_too_large"
        errors[422] = "schema_invalid / canonicalization_error"
    elif route.body:  # portal forms
        errors[400] = "not a form, or a malformed one"
        errors[403] = "csrf_failed (or the user's role does not allow this)"
        errors[413] = "payload_too_large"
    if route.content_type == HTML and route.auth == "user":
        errors[303] = "sign in first (redirect to /login)"
    if route.auth == "service":  # every accepted service token costs a node; callers are rate-limited
        errors[429] = "rate_limited (Retry-After)"
    if route.path not in DATABASE_FREE:
        errors[503] = "unavailable: the database cannot be reached (Retry-After)"
    return errors


def _schema(schema: Any, settings: Settings) -> Any:
    """A schema whose bounds name a setting (``"maximum": "search_max_limit"``) gets the settings' values."""
    if isinstance(schema, dict):
        return {k: getattr(settings, v) if k in ("minimum", "maximum") and isinstance(v, str)
                else _schema(v, settings) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_schema(v, settings) for v in schema]
    return schema


def _operation(route: Route, settings: Settings) -> dict[str, Any]:
    portal = route.content_type == HTML
    op: dict[str, Any] = {
        "operationId": route.name,
        "summary": route.summary,
        "tags": [route.tag],
        "security": (PORTAL_SECURITY if portal else SECURITY)[route.auth],
        "responses": {},
    }
    params = []
    declared = {p.name: p for p in route.params}
    for name in re.findall(r"\{(\w+)\}", route.path):
        p = declared.get(name)
        params.append({"name": name, "in": "path", "required": True,
                       "schema": _schema(p.schema, settings) if p else {"type": "string"},
                       "description": p.description if p else name})
    for p in route.params:
        if p.where == "query":
            param = {"name": p.name, "in": "query", "required": p.required, "schema": _schema(p.schema, settings),
                     "description": p.description}
            if p.schema not in (STRING, REPEATABLE):
                # an empty value means "not given" (as an HTML form sends an empty field), never an error
                param["allowEmptyValue"] = True
            params.append(param)
    if params:
        op["parameters"] = params
    if route.body:
        op["requestBody"] = {
            "required": route.body_required,
            "content": {route.body_media: {"schema": {"$ref": f"#/components/schemas/{route.body}"}}},
        }
    responses = {**implied_errors(route), **(route.responses or {200: "ok"})}
    for status, desc in sorted(responses.items()):
        if status >= 400:
            media = HTML if portal else PROBLEM_JSON
            schema: Schema = {} if portal else {"$ref": "#/components/schemas/Problem"}
            op["responses"][str(status)] = {"description": desc, "content": {media: {"schema": schema}}}
        elif 300 <= status < 400 or status == 204:
            op["responses"][str(status)] = {"description": desc}
        else:
            schema = {"$ref": f"#/components/schemas/{route.response_schema}"} if route.response_schema else {}
            op["responses"][str(status)] = {"description": desc, "content": {route.content_type: {"schema": schema}}}
    return op


def build_openapi(settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.1 document for this instance's role."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes_for(settings.role):
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, settings)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"NCC federation {settings.role}",
            "version": "1",
            "description": "Federated registry of the EU Cybersecurity Competence Community "
                           "(Regulation (EU) 2021/887). Errors are RFC 9457 problem documents with a stable `code`.",
        },
        "servers": [{"url": settings.base_url}],
        "paths": paths,
        "components": {
            "schemas": _schema({"Problem": PROBLEM, **BODIES, **RESPONSES}, settings),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (EdDSA)"},
                "session": {"type": "apiKey", "in": "cookie", "name": "ncc_session",
                            "description": "portal session: a random id set by POST /login and ended "
                                           "server-side by POST /logout (__Host-ncc_session over HTTPS)"},
            },
        },
    }
