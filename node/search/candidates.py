"""Consortium candidates from the search index (DESIGN §16): per-tag look-ups, never a full scan.

The reader's scope is a :class:`SearchQuery` made by ``node.access`` (``search_scope``): its
visibilities, and whether the restricted part of the documents may match. It is turned into a plan
and a WHERE condition by the very functions search uses (``sql.validate``, ``conditions``), so the
builder sees exactly the organisations search would show this reader — a second visibility policy
would be a bug waiting for its first divergence (house rule 11). Tags come from the public fields
only (``documents.py``), so what a candidate *holds* is public for every reader; the text evidence
matches the public part of a document for anonymous readers and the restricted part too for those
who may see it, as search does.

Retrieval, bounded whatever the index size:

1. ``ranked``: the organisations holding any wanted tag (the primary key ``(dim, value, doc)``
   serves each look-up), scored by the weights of what they hold, and for each (wanted tag,
   country) the best ``per_country`` of them — so every country stays represented for every tag.
2. ``evidence``: for each wanted tag, up to ``per_tag`` organisations whose visible text has the
   tag's label as a phrase but not the tag (full-text index).
3. ``details``: id, title, country and wanted/related tags of the chosen documents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .base import SearchQuery
from .sql import SqlSearchBackend, validate
from .text import Clause

#: The dimensions a consortium tag may have (and the related domains of sub-domains).
TAG_DIMENSIONS = ("subdomain", "domain", "sector", "technology")


@dataclass(frozen=True)
class Found:
    """A document the reader may see: its id, public title, country, and the tags it holds among
    those asked about (``(dim, value)``), plus the wanted tags its visible text mentions."""

    doc: int
    id: str
    title: str
    country: str
    tags: frozenset[tuple[str, str]]
    mentions: frozenset[str] = frozenset()


def _organisations(backend: SqlSearchBackend, scope: SearchQuery) -> tuple[str, list[Any], bool]:
    """The WHERE condition on alias ``d`` of the organisations ``scope`` may see (search's own)."""
    plan, _ = validate(replace(scope, q="", cursor=None, limit=1, filters={"type": ("organisation",)}))
    where, params = backend.conditions(plan)
    return where, params, bool(plan.visibilities)


def _pairs(alias: str, pairs: Sequence[tuple[str, str]]) -> tuple[str, list[Any]]:
    sql = " OR ".join(f"({alias}.dim = ? AND {alias}.value = ?)" for _ in pairs)
    return f"({sql})", [x for pair in pairs for x in pair]


async def ranked(
    backend: SqlSearchBackend,
    conn: Any,
    scope: SearchQuery,
    weights: Mapping[tuple[str, str], float],
    wanted: Sequence[tuple[str, str]],
    per_country: int,
) -> list[int]:
    """Documents (``doc`` numbers) holding a ``wanted`` tag: per wanted tag and country, the best
    ``per_country`` by the summed ``weights`` of the tags they hold (ties: lowest ``doc``)."""
    where, params, any_visible = _organisations(backend, scope)
    if not wanted or not any_visible:
        return []
    keys = list(weights)
    # weights are the builder's constants: literals, so that PostgreSQL needs no parameter type
    score_sql = " ".join(f"WHEN w.dim = ? AND w.value = ? THEN {float(weights[key])!r}" for key in keys)
    score_params: list[Any] = [x for key in keys for x in key]
    held_sql, held_params = _pairs("w", keys)
    want_sql, want_params = _pairs("h", list(wanted))
    text = (
        "WITH m AS (SELECT w.doc AS doc, SUM(CASE " + score_sql + " ELSE 0 END) AS score "
        f"FROM search_tags w WHERE {held_sql} GROUP BY w.doc), "
        "r AS (SELECT m.doc AS doc, ROW_NUMBER() OVER (PARTITION BY h.dim, h.value, c.value "
        "ORDER BY m.score DESC, m.doc) AS rn FROM m JOIN search_docs d ON d.doc = m.doc "
        f"JOIN search_tags h ON h.doc = m.doc AND {want_sql} "
        "JOIN search_tags c ON c.doc = m.doc AND c.dim = 'country' "
        f"WHERE {where}) SELECT DISTINCT doc FROM r WHERE rn <= ? ORDER BY doc"
    )
    rows = await backend.execute(conn, text, [*score_params, *held_params, *want_params, *params, per_country])
    return [int(row[0]) for row in rows]


async def mentioning(
    backend: SqlSearchBackend,
    conn: Any,
    scope: SearchQuery,
    tag: tuple[str, str],
    phrase: Clause,
    limit: int,
) -> list[int]:
    """Up to ``limit`` documents whose visible text has ``phrase`` and which do not hold ``tag``."""
    plan, _ = validate(replace(scope, q="", cursor=None, limit=1, filters={"type": ("organisation",)}))
    if not plan.visibilities or not phrase.tokens:
        return []
    where, params = backend.conditions(plan)
    match, match_params = backend.match_condition((phrase,), plan.restricted)
    rows = await backend.execute(
        conn,
        f"SELECT d.doc FROM search_docs d WHERE {where} AND {match} AND d.doc NOT IN "
        "(SELECT x.doc FROM search_tags x WHERE x.dim = ? AND x.value = ?) ORDER BY d.doc LIMIT ?",
        [*params, *match_params, *tag, limit],
    )
    return [int(row[0]) for row in rows]


async def details(
    backend: SqlSearchBackend, conn: Any, docs: Sequence[int], asked: Sequence[tuple[str, str]]
) -> list[Found]:
    """Id, title, country and the ``asked`` tags held, of each of ``docs`` (missing ones left out)."""
    unique = sorted(set(docs))
    if not unique:
        return []
    docs_sql, docs_params = backend.in_list("d.doc", unique)
    rows = await backend.execute(
        conn,
        "SELECT d.doc, d.id, d.title, c.value FROM search_docs d "
        f"JOIN search_tags c ON c.doc = d.doc AND c.dim = 'country' WHERE {docs_sql}",
        docs_params,
    )
    asked_set = set(asked)
    tags: dict[int, set[tuple[str, str]]] = {}
    if asked_set:
        in_docs, in_params = backend.in_list("t.doc", unique)
        dims_sql, dims_params = backend.in_list("t.dim", sorted({dim for dim, _ in asked_set}))
        for doc, dim, value in await backend.execute(
            conn, f"SELECT t.doc, t.dim, t.value FROM search_tags t WHERE {in_docs} AND {dims_sql}",
            [*in_params, *dims_params],
        ):
            if (dim, value) in asked_set:
                tags.setdefault(int(doc), set()).add((str(dim), str(value)))
    return [Found(int(r[0]), str(r[1]), str(r[2]), str(r[3]), frozenset(tags.get(int(r[0]), ()))) for r in rows]
