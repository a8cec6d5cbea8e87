"""Helpers shared by the views: JSON responses, query parameters, record ids."""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web

from federation.errors import SchemaInvalid
from node.config import country_code
from node.context import Context
from node.errors import InvalidParameter, NotFound
from node.http.auth import Principal
from node.http.keys import AUTH, CONTEXT

RECORD_ID = re.compile(r"\Aurn:ncc:[A-Z]{2}:(organisation|expert|project|facility):[0-9a-f-]{36}\Z")
COUNTRY = re.compile(r"\A[A-Z]{2}\Z")


def json_response(data: Any, status: int = 200, content_type: str = "application/json") -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type=content_type)


def ctx(request: web.Request) -> Context:
    return request.app[CONTEXT]


async def principal(request: web.Request) -> Principal:
    return await request.app[AUTH].principal(request)


def record_id_param(request: web.Request) -> str:
    """The ``{id}`` path parameter, checked against the record id form (anything else is 404)."""
    rid = request.match_info["id"]
    if not RECORD_ID.match(rid):
        raise NotFound(f"no record {rid!r}")
    return rid


def country_path(request: web.Request) -> str:
    """The ``{country}`` path parameter; anything but two capitals names no node (404, and no query:
    PostgreSQL fails on a NUL character)."""
    country = request.match_info["country"]
    if not COUNTRY.match(country):
        raise NotFound(f"no enrolled node {country!r}")
    return country


def country_param(request: web.Request, name: str = "country") -> str | None:
    """An optional country query parameter: two letters, any case, returned in capitals (as everywhere a
    person types a country: :func:`node.config.country_code`).

    Raises:
        InvalidParameter: anything else.
    """
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return country_code(raw)
    except ValueError:
        raise InvalidParameter(f"{name} must be an ISO 3166-1 alpha-2 code", parameter=name) from None


def int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    """An integer query parameter within [lo, hi].

    Raises:
        InvalidParameter: not an integer or out of range.
    """
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise InvalidParameter(f"{name} must be an integer", parameter=name) from exc
    if not lo <= value <= hi:
        raise InvalidParameter(f"{name} must be between {lo} and {hi}", parameter=name)
    return value


def choice_param(request: web.Request, name: str, options: tuple[str, ...], default: str | None) -> str | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if raw not in options:
        raise InvalidParameter(f"{name} must be one of {', '.join(options)}", parameter=name)
    return raw


def object_body(body: Any, allowed: frozenset[str]) -> dict[str, Any]:
    """A request body that must be a JSON object of ``allowed`` fields (422 ``schema_invalid`` otherwise:
    DESIGN §9 — a misspelt field is refused, never silently ignored)."""
    if not isinstance(body, dict):
        raise SchemaInvalid("request body must be a JSON object", [{"pointer": "", "message": "not an object"}])
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise SchemaInvalid(
            f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})",
            [{"pointer": f"/{k}", "message": "unknown field"} for k in unknown],
        )
    return body
