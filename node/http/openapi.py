"""OpenAPI 3.1 document generated from the route table (so no route can be left out)."""

from __future__ import annotations

import re
from typing import Any

from node.config import Settings
from node.http.routes import Route, routes_for

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
            "pointer": {"type": "string"}, "message": {"type": "string"}}}},
    },
}

BODIES: dict[str, dict[str, Any]] = {
    "RecordCreate": {
        "type": "object",
        "required": ["type", "payload"],
        "properties": {
            "type": {"enum": ["organisation", "expert", "project", "facility"]},
            "visibility": {"enum": ["public", "network", "national"]},
            "payload": {"type": "object", "description": "validated against schemas/<type>.v1.json"},
        },
        "additionalProperties": False,
    },
    "RecordUpdate": {
        "type": "object",
        "required": ["payload", "version"],
        "properties": {
            "payload": {"type": "object"},
            "visibility": {"enum": ["public", "network", "national"]},
            "version": {"type": "integer", "minimum": 1, "description": "the version being replaced"},
        },
        "additionalProperties": False,
    },
    "Enroll": {
        "type": "object",
        "required": ["token", "country", "url", "public_key", "kid", "proof"],
        "properties": {k: {"type": "string"} for k in ("token", "country", "url", "public_key", "kid", "proof")},
    },
    "Notify": {"type": "object", "properties": {"country": {"type": "string"}}},
    "RotateKey": {"type": "object", "description": "a key-rotation statement signed by the old key"},
    "LiveSearch": {"type": "object", "description": "search parameters as in GET /api/v1/search"},
    "NodeAdmin": {"type": "object", "properties": {
        "status": {"enum": ["active", "suspended"]}, "mode": {"enum": ["replicate", "query-only"]}}},
    "RevokeKey": {"type": "object", "properties": {"revoked_at": {"type": "string"}}},
}

SECURITY = {
    "user": [{"bearer": []}],
    "service": [{"bearer": []}],
    "optional": [{}, {"bearer": []}],
    "none": [],
}


def _operation(route: Route) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.name,
        "summary": route.summary,
        "tags": [route.tag],
        "security": SECURITY[route.auth],
        "responses": {},
    }
    params = []
    for name in re.findall(r"\{(\w+)\}", route.path):
        desc = next((d for n, where, d in route.params if n == name), name)
        params.append({"name": name, "in": "path", "required": True, "schema": {"type": "string"},
                       "description": desc})
    for name, where, desc in route.params:
        if where == "query":
            params.append({"name": name, "in": "query", "required": False, "schema": {"type": "string"},
                           "description": desc})
    if params:
        op["parameters"] = params
    if route.body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{route.body}"}}},
        }
    for status, desc in sorted((route.responses or {200: "ok"}).items()):
        if status >= 400:
            op["responses"][str(status)] = {
                "description": desc,
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
            }
        else:
            op["responses"][str(status)] = {"description": desc, "content": {route.content_type: {"schema": {}}}}
    op["responses"].setdefault("default", {
        "description": "error",
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    })
    return op


def build_openapi(settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.1 document for this instance's role."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes_for(settings.role):
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
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
            "schemas": {"Problem": PROBLEM, **BODIES},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (EdDSA)"}},
        },
    }
