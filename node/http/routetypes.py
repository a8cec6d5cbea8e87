"""The types of the route table (``node.http.routes``): a route, its parameters and their schemas.

Apart from the table itself, so that the views that build parts of it (the portal's,
``node.web.routes``) and the OpenAPI generator import these without importing every view.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from aiohttp import web

from schemas import RECORD_TYPES

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Schema = dict[str, Any]


STRING: Schema = {"type": "string"}
#: A string that may reach an HTTP header: no control character (node.errors.header_safe refuses them: 400).
HEADER_SAFE_STRING: Schema = {"type": "string", "pattern": "^[^\\x00-\\x1f\\x7f]*$"}


class Param(NamedTuple):
    """A path or query parameter and the JSON Schema of the values the handler accepts."""

    name: str
    where: str  # path | query
    description: str
    schema: Schema = STRING
    required: bool = False  # a query parameter the handler refuses to do without (400)


def query(name: str, description: str, schema: Schema | None = None, required: bool = False) -> Param:
    return Param(name, "query", description, schema or STRING, required)


def path(name: str, description: str, schema: Schema | None = None) -> Param:
    return Param(name, "path", description, schema or STRING)


def integer(lo: int, hi: int | str) -> Schema:
    """An integer query parameter in [lo, hi]; ``hi`` may name the setting that bounds it."""
    return {"type": "integer", "minimum": lo, "maximum": hi}


#: What the views accept (``node.http.views.common``); anything else is answered 400 or 404.
RECORD_ID: Schema = {"type": "string", "pattern": "^urn:ncc:[A-Z]{2}:(organisation|expert|project|facility):[0-9a-f-]{36}$"}
COUNTRY: Schema = {"type": "string", "pattern": "^[A-Z]{2}$"}
GROUP_NAME: Schema = {"type": "string", "pattern": "^[a-z0-9-]{1,63}$"}
RECORD_TYPE: Schema = {"enum": list(RECORD_TYPES)}
REPEATABLE: Schema = {"type": "array", "items": {"type": "string"}}
SEQUENCE = integer(0, 2**62)
RECORD_ID_PARAM = (path("id", "record id urn:ncc:<origin>:<type>:<uuid>", RECORD_ID),)
APPLICATION_ID = path("id", "application id (UUID)", {"type": "string", "pattern": "^[0-9a-f-]{36}$"})
SEARCH_FILTERS = (
    query("type", "repeatable", REPEATABLE), query("country", "repeatable", REPEATABLE),
    query("domain", "repeatable; matches sub-domains too", REPEATABLE),
    query("subdomain", "repeatable", REPEATABLE), query("sector", "repeatable", REPEATABLE),
    query("technology", "repeatable", REPEATABLE), query("use_case", "repeatable", REPEATABLE),
    query("role", "repeatable (ECSF)", REPEATABLE), query("org_type", "repeatable", REPEATABLE),
    query("membership", "repeatable: organisations with this membership status (e.g. registered); "
          "records of other types are unaffected", REPEATABLE),
)
SEARCH_PARAMS = (
    query("q", "free text; last word matches as a prefix", {"type": "string", "maxLength": 500}),
    *SEARCH_FILTERS,
    query("limit", "page size, 1 to the search_max_limit setting", integer(1, "search_max_limit")),
    query("cursor", "opaque next_cursor"),
)

CONSORTIUM_PARAMS = (
    query("domain", "required knowledge domain (repeatable); held directly or through a sub-domain", REPEATABLE),
    query("subdomain", "required sub-domain (repeatable)", REPEATABLE),
    query("sector", "required sector (repeatable)", REPEATABLE),
    query("technology", "required technology (repeatable); at least one tag of the four dimensions in all",
          REPEATABLE),
    query("min_countries", "distinct countries at least (default 3; at most size)", integer(1, 10)),
    query("size", "members at most (default 5)", integer(1, 10)),
    query("sme", "at least one SME: true or false (1/0, yes/no)"),
    query("exclude", "organisation ids never to propose (repeatable; unknown or invisible ids are ignored)",
          REPEATABLE),
    query("k", "proposals at most (default 3)", integer(1, 10)),
)


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
    params: tuple[Param, ...] = ()
    body: str | None = None  # schema name (components) of the request body
    body_required: bool = True
    body_media: str = "application/json"
    responses: dict[int, str] = field(default_factory=dict)
    content_type: str = "application/json"
    response_schema: str | None = None  # schema name (components) of the success response
