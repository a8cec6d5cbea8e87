"""What the portal pages read: records as the reader may see them, node status, search results.

Who may see what is decided by ``node.access`` — the API's own policy, called the same way; only
the shape differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import web

from federation.timefmt import parse_timestamp
from node.access import Shown
from node.errors import Gone, InvalidParameter, NotFound
from node.http.auth import Principal
from node.http.views.common import ctx
from node.search import DIMENSIONS, SearchQuery
from node.services.search import query_from_params, result_to_json
from node.web.schema_forms import vocabulary_labels
from schemas import RECORD_TYPES

TITLE_FIELDS = ("legal_name", "name", "title", "acronym", "national_name")
FACET_VISIBLE = 8  # values shown per facet before "more"

DIMENSION_TITLES = {
    "type": "Record type", "country": "Country", "domain": "Knowledge domain", "subdomain": "Sub-domain",
    "sector": "Sector", "technology": "Technology", "use_case": "Use case", "role": "ECSF role profile",
    "org_type": "Organisation type", "membership": "Community membership",
}
TYPE_LABELS = {"organisation": "Organisation", "expert": "Expert", "project": "Project", "facility": "Facility"}
#: Plural labels, for tabs and headings (regression: "Facility" + "s" read "Facilitys").
TYPE_PLURALS = {"organisation": "Organisations", "expert": "Experts", "project": "Projects",
                "facility": "Facilities"}


def record_title(rtype: str, payload: Mapping[str, Any]) -> str:
    if rtype == "project" and payload.get("acronym") and payload.get("title"):
        return f"{payload['acronym']} – {payload['title']}"
    for name in TITLE_FIELDS:
        value = payload.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return "(untitled)"


def label(dimension: str, value: str) -> str:
    if dimension == "type":
        return TYPE_LABELS.get(value, value)
    return vocabulary_labels().get(value, value)


def ago(when: str | None, now: datetime) -> str:
    """``5 min ago`` for a stored timestamp (``never`` when absent)."""
    if not when:
        return "never"
    try:
        seconds = int((now - parse_timestamp(when)).total_seconds())
    except Exception:  # noqa: BLE001 - a stored odd value is shown, not fatal
        return when
    if seconds < 60:
        return "just now" if seconds < 5 else f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


# -- search -------------------------------------------------------------------------------------


@dataclass
class FacetValue:
    value: str
    label: str
    count: int
    selected: bool
    href: str


@dataclass
class Facet:
    dimension: str
    title: str
    values: list[FacetValue] = field(default_factory=list)

    @property
    def head(self) -> list[FacetValue]:
        return self.values[:FACET_VISIBLE]

    @property
    def tail(self) -> list[FacetValue]:
        return self.values[FACET_VISIBLE:]


def _pairs(query: Mapping[str, Any]) -> list[tuple[str, str]]:
    items = query.items() if hasattr(query, "items") else []
    return [(str(k), str(v)) for k, v in items if k != "cursor"]


def toggle_href(query: Any, dimension: str, value: str) -> str:
    """The search URL with ``dimension=value`` added, or removed when present (from the first page)."""
    pairs = _pairs(query)
    if (dimension, value) in pairs:
        pairs = [p for p in pairs if p != (dimension, value)]
    else:
        pairs.append((dimension, value))
    return "/?" + urlencode(pairs) if pairs else "/"


def first_page_href(query: Any) -> str:
    pairs = _pairs(query)
    return "/?" + urlencode(pairs) if pairs else "/"


def page_href(query: Any, cursor: str) -> str:
    return "/?" + urlencode([*_pairs(query), ("cursor", cursor)])


def facets_of(query: Any, counts: Mapping[str, Mapping[str, int]]) -> list[Facet]:
    out = []
    for dim in DIMENSIONS:
        chosen = {v for k, v in _pairs(query) if k == dim}
        values = dict(counts.get(dim) or {})
        for v in chosen:
            values.setdefault(v, 0)
        facet = Facet(dim, DIMENSION_TITLES.get(dim, dim))
        for v, n in sorted(values.items(), key=lambda kv: (kv[0] not in chosen, -kv[1], label(dim, kv[0]))):
            facet.values.append(FacetValue(v, label(dim, v), int(n), v in chosen, toggle_href(query, dim, v)))
        if facet.values:
            out.append(facet)
    return out


async def search(request: web.Request, p: Principal) -> dict[str, Any]:
    """Run the search of the page's query string, as the API would for this reader.

    Raises:
        InvalidParameter: a bad limit, cursor, filter or deadline.
    """
    c = ctx(request)
    query = await c.access.search_scope(p, query_from_params(request.query, frozenset(), c.settings.search_max_limit))
    if c.settings.role == "hub":
        return dict(await c.live.search(query, request.query, live=False))
    return result_to_json(await c.search.search(query))


async def freshness(request: web.Request) -> dict[str, dict[str, Any]]:
    """Per node country: status, lag and how long ago it last synced (hub only)."""
    if ctx(request).settings.role != "hub":
        return {}
    from node.http.views.hub import nodes_status

    now = ctx(request).clock()
    return {str(n["country"]): {**n, "ago": ago(n.get("last_success"), now)}  # type: ignore[arg-type]
            for n in await nodes_status(request)}


async def records_per_country(request: web.Request, p: Principal) -> dict[str, int]:
    """How many records each country has that this reader may see (the index's country facet)."""
    c = ctx(request)
    result = await c.search.search(await c.access.search_scope(p, SearchQuery(limit=1)))
    return dict(sorted(result.facets.get("country", {}).items(), key=lambda kv: (-kv[1], kv[0])))


# -- records ------------------------------------------------------------------------------------


async def listed_records(request: web.Request, p: Principal, ids: list[str]) -> dict[str, Shown]:
    """The records of a page of search results as this reader may see them (``node.access``), for
    their visibility badges and snippets; one deleted or hidden since the search is left out."""
    access = ctx(request).access
    out: dict[str, Shown] = {}
    for rid in ids:
        try:
            out[rid] = await access.record(p, rid)
        except (NotFound, Gone):
            continue
    return out


async def record_for(request: web.Request, rid: str, p: Principal) -> Shown:
    """The record page's record, by the API's rules for this role (``node.access``).

    Raises:
        NotFound: unknown, or not visible to this reader.
        Gone: deleted by its origin.
    """
    return await ctx(request).access.record(p, rid)


@dataclass
class ListedRecord:
    id: str
    type: str
    title: str
    visibility: str
    version: int
    issued_at: str


async def list_own_records(
    request: web.Request, p: Principal, rtype: str | None, before: int | None, limit: int
) -> tuple[list[ListedRecord], int | None]:
    """This node's current records (every visibility: the admin pages check the role), newest change
    first; and the cursor of the next page."""
    rows, next_before = await ctx(request).access.own_records(p, rtype, before, limit)
    listed = [ListedRecord(r.id, r.type, record_title(r.type, orjson.loads(r.envelope)["payload"]), r.visibility,
                           r.version, r.issued_at) for r in rows]
    return listed, next_before


async def own_record(request: web.Request, p: Principal, rid: str) -> dict[str, Any]:
    """The current envelope of one of this node's records (for the edit form).

    Raises:
        NotFound, Gone.
    """
    return await ctx(request).access.own_record(p, rid)


def record_type_param(raw: str | None, required: bool = False) -> str | None:
    """Raises InvalidParameter for anything but a record type (or absent, when allowed)."""
    if raw in (None, "") and not required:
        return None
    if raw not in RECORD_TYPES:
        raise InvalidParameter(f"type must be one of {', '.join(RECORD_TYPES)}", parameter="type")
    return raw
