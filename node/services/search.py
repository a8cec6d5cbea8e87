"""Search as the service layer sees it: documents from envelopes, the dialect's backend, and the
translation of query parameters into a :class:`node.search.SearchQuery`.

The index lives in the same database as the records and is written in the same transaction
(``index``/``remove`` take the caller's connection), so the two never drift apart.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.connection import connections

from node.config import country_code
from node.errors import InvalidParameter
from node.memory import IdleTrim
from node.search import (
    DIMENSIONS,
    SearchBackend,
    SearchDoc,
    SearchQuery,
    SearchResult,
    backend_for,
    document_from_envelope,
)
from node.search.base import MEMBERSHIP_NOT_APPLICABLE, MEMBERSHIP_STATUSES
from node.search.documents import VOCABULARY_DIMENSIONS
from schemas import RECORD_TYPES, load_vocabularies


class SearchService:
    """Indexes verified envelopes and answers queries over them."""

    def __init__(self, accelerated: bool = True) -> None:
        self.vocabularies = load_vocabularies()
        self.accelerated = accelerated
        self._backends: dict[str, SearchBackend] = {}
        self._idle_trim = IdleTrim()  # a burst of searches leaves freed heap pages: returned once it ends

    def backend(self, conn: BaseDBAsyncClient) -> SearchBackend:
        dialect = str(conn.capabilities.dialect)
        if dialect not in self._backends:
            self._backends[dialect] = backend_for(dialect, accelerated=self.accelerated)
        return self._backends[dialect]

    async def warm(self) -> None:
        """Build the accelerator now (else, above 100k documents, it builds in the background)."""
        conn = connections.get("default")
        warm = getattr(self.backend(conn), "warm", None)
        if warm is not None:
            await warm(conn)

    async def prune(self, keep: int = 100_000) -> None:
        """Drop old entries of the index change log (the accelerator rebuilds if it falls behind)."""
        conn = connections.get("default")
        prune = getattr(self.backend(conn), "prune_changes", None)
        if prune is not None:
            await prune(conn, keep=keep)

    async def index(self, conn: BaseDBAsyncClient, envelope: Mapping[str, Any]) -> None:
        """Add or replace one record (a tombstone removes it)."""
        await self.index_many(conn, [envelope])

    async def index_many(self, conn: BaseDBAsyncClient, envelopes: Iterable[Mapping[str, Any]]) -> None:
        docs, gone = [], []
        for env in envelopes:
            doc = document_from_envelope(env, self.vocabularies)
            if doc is None:
                gone.append(str(env["id"]))
            else:
                docs.append(doc)
        if docs:
            await self.backend(conn).upsert(conn, docs)
        if gone:
            await self.backend(conn).delete(conn, gone)

    def document(self, envelope: Mapping[str, Any]) -> SearchDoc | None:
        """The search document of an envelope (None for a tombstone)."""
        return document_from_envelope(envelope, self.vocabularies)

    async def insert_new(self, conn: BaseDBAsyncClient, docs: Sequence[SearchDoc]) -> None:
        """Index documents of records just made (ids this index cannot hold): :meth:`index_many`
        without the look-ups of held documents. A held id raises the driver's error."""
        if docs:
            await self.backend(conn).insert_new(conn, docs)

    async def scrub(self, conn: BaseDBAsyncClient) -> None:
        """Rewrite what the index keeps of deleted documents (erasure, see ``node/services/erasure.py``)."""
        await self.backend(conn).scrub(conn)  # type: ignore[attr-defined]

    async def remove(self, conn: BaseDBAsyncClient, record_ids: list[str]) -> None:
        if record_ids:
            await self.backend(conn).delete(conn, record_ids)

    async def search(self, query: SearchQuery) -> SearchResult:
        conn = connections.get("default")
        result = await self.backend(conn).search(conn, query)
        self._idle_trim.touch()
        result.facets.get("membership", {}).pop(MEMBERSHIP_NOT_APPLICABLE, None)  # not a status: never shown
        return result

    async def held_versions(self, ids: Sequence[str]) -> dict[str, int]:
        """The indexed version of each of ``ids`` held here (unknown ids are left out)."""
        conn = connections.get("default")
        held = getattr(self.backend(conn), "held_versions", None)
        return await held(conn, ids) if held is not None else {}


def repeated(params: Mapping[str, Any], name: str) -> list[str]:
    """A repeatable query parameter's values, in order and without repeats: given several times
    (``?domain=a&domain=b``) or comma-separated (``?domain=a,b``), blanks dropped."""
    getall = getattr(params, "getall", None)
    raw = getall(name, []) if getall else params.get(name, [])
    if not isinstance(raw, list):
        raw = [raw]
    out: list[str] = []
    for item in raw:
        out.extend(v.strip() for v in str(item).split(",") if v.strip())
    return list(dict.fromkeys(out))


@functools.cache
def filter_values() -> dict[str, frozenset[str]]:
    """The values each filter dimension accepts: record types, and vocabulary ids (countries too)."""
    vocabularies = load_vocabularies()
    allowed: dict[str, set[str]] = {"type": set(RECORD_TYPES), "membership": set(MEMBERSHIP_STATUSES)}
    names = {**VOCABULARY_DIMENSIONS, "countries": "country"}
    for name, dimension in names.items():
        for term in vocabularies.get(name, []):
            if isinstance(term.get("id"), str):
                allowed.setdefault(dimension, set()).add(term["id"])
    return {dim: frozenset(allowed.get(dim, ())) for dim in DIMENSIONS}


def _country_or_raw(text: str) -> str:
    try:
        return country_code(text)
    except ValueError:
        return text


def bool_param(params: Mapping[str, Any], name: str) -> bool:
    """A boolean query parameter: true/1/yes or false/0/no (any case); absent or empty is false.

    Raises:
        InvalidParameter: any other value.
    """
    raw = str(params.get(name) or "").strip().lower()
    if raw in ("", "false", "0", "no"):
        return False
    if raw in ("true", "1", "yes"):
        return True
    raise InvalidParameter(f"{name} must be true or false", parameter=name)


def query_from_params(
    params: Mapping[str, Any], visibilities: frozenset[str], max_limit: int
) -> SearchQuery:
    """Build a query from request parameters (a multidict: filters repeat).

    Raises:
        InvalidParameter: a bad ``limit``, a ``q`` over 500 characters, or a filter value that is
            not a record type (``type``) or an id of the dimension's vocabulary (the others).
            Garbage cursors are rejected by the backend.
    """

    def values(name: str) -> tuple[str, ...]:
        return tuple(repeated(params, name))

    limit_raw = params.get("limit")
    limit = 20
    if limit_raw not in (None, ""):
        try:
            limit = int(str(limit_raw))
        except ValueError as exc:
            raise InvalidParameter("limit must be an integer", parameter="limit") from exc
        if not 1 <= limit <= max_limit:
            raise InvalidParameter(f"limit must be between 1 and {max_limit}", parameter="limit")
    filters = {dim: values(dim) for dim in DIMENSIONS if values(dim)}
    if "country" in filters:  # any case, as everywhere a country is typed (unknown ones fail below)
        filters["country"] = tuple(dict.fromkeys(_country_or_raw(v) for v in filters["country"]))
    # the hub forwards its filters to live queries, the "not an organisation" marker included
    membership = tuple(v for v in filters.pop("membership", ()) if v != MEMBERSHIP_NOT_APPLICABLE)
    if membership:
        filters["membership"] = membership
    allowed = filter_values()
    for dim, chosen in filters.items():
        unknown = [value for value in chosen if value not in allowed[dim]]
        if unknown:
            what = "record type" if dim == "type" else f"{dim} id"
            raise InvalidParameter(f"unknown {what}: {', '.join(unknown[:5])}"[:300], parameter=dim)
    if "membership" in filters:  # organisations by status; records of other types are unaffected
        filters["membership"] = (*filters["membership"], MEMBERSHIP_NOT_APPLICABLE)
    cursor = params.get("cursor") or None
    q = str(params.get("q") or "")
    if len(q) > 500:
        raise InvalidParameter("q is longer than 500 characters", parameter="q")
    return SearchQuery(q=q, filters=filters, visibilities=visibilities, limit=limit, cursor=cursor)


def result_to_json(result: SearchResult, verified: bool = True) -> dict[str, Any]:
    return {
        "total": result.total,
        "results": [
            {"id": h.id, "type": h.type, "origin": h.origin, "title": h.title, "snippet": h.snippet,
             "score": h.score, "version": h.version, "verified": verified}
            for h in result.hits
        ],
        "facets": result.facets,
        "next_cursor": result.next_cursor,
        "ignored_terms": list(result.ignored),
    }
