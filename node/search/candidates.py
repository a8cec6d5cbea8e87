"""Consortium candidates from the search index (DESIGN §16): per-tag look-ups, never a full scan.

The reader's scope is a :class:`SearchQuery` made by ``node.access`` (``search_scope``): its
visibilities, and whether the restricted part of the documents may match. It is turned into a plan
and a WHERE condition by the very functions search uses (``sql.validate``, ``conditions``), so the
builder sees exactly the organisations search would show this reader — a second visibility policy
would be a bug waiting for its first divergence (house rule 11). Tags come from the public fields
only (``documents.py``), so what a candidate *holds* is public for every reader; the text evidence
matches the public part of a document for anonymous readers and the restricted part too for those
who may see it, as search does.

Retrieval:

1. ``ranked``: the organisations holding any wanted tag (the primary key ``(dim, value, doc)``
   serves each look-up), scored by the weights of what they hold, kept when the reader may see
   them; of the best by score and the first holders of each tag, for each (wanted tag, country)
   the best ``per_country`` — so every country with holders stays represented for every tag.
   Its work grows with the holders (a row each in SQL): when the search accelerator is in use and
   ready, the same list comes from its bitmaps (``accel_candidates.py``, the same plan of the
   reader's scope), else from one SQL statement (``ranked_in_sql``).
2. ``mentioning``: for each wanted tag, a few organisations whose visible text has the tag's
   label as a phrase but not the tag (full-text index, a bounded number of matches examined:
   ``first_matches`` of the backend, whatever the index size).
3. ``details``: id, title, country and wanted/related tags of the chosen documents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .base import SearchQuery
from .sql import Plan, SqlSearchBackend, validate
from .text import Clause


@dataclass(frozen=True)
class Found:
    """A document the reader may see: its id, public title, country, and the tags it holds among
    those asked about (``(dim, value)``)."""

    doc: int
    id: str
    title: str
    country: str
    tags: frozenset[tuple[str, str]]


#: The record type of the candidates.
ORGANISATION = "organisation"


def _plan(scope: SearchQuery) -> Plan:
    """Search's plan of what ``scope`` may see (visibilities, and whatever else the reader's scope
    holds), without text, filters or paging."""
    return validate(replace(scope, q="", cursor=None, limit=1, filters={}))[0]


def _organisations(backend: SqlSearchBackend, scope: SearchQuery) -> tuple[str, list[Any], bool]:
    """The WHERE condition on alias ``d`` of the organisations ``scope`` may see: search's own
    condition (:func:`_plan`) and the record type."""
    plan = _plan(scope)
    where, params = backend.conditions(plan)
    return f"{where} AND d.type = '{ORGANISATION}'", params, bool(plan.visibilities)


def _union(pairs: Sequence[tuple[str, str]], columns: Sequence[str]) -> tuple[str, list[Any]]:
    """One index look-up per tag: ``SELECT doc, <columns[i]> FROM search_tags WHERE dim/value`` ∪ …"""
    parts = [f"SELECT doc, {column} FROM search_tags WHERE dim = ? AND value = ?" for column in columns]
    return " UNION ALL ".join(parts), [x for pair in pairs for x in pair]


async def ranked(
    backend: SqlSearchBackend,
    conn: Any,
    scope: SearchQuery,
    weights: Mapping[tuple[str, str], float],
    wanted: Sequence[tuple[str, str]],
    per_country: int,
    best: int = 1000,
    per_tag: int = 100,
) -> list[int]:
    """Documents (``doc`` numbers) holding a ``wanted`` tag, per wanted tag and country the best
    ``per_country`` the reader may see by the summed ``weights`` of the tags they hold (ties: lowest
    ``doc``).

    Scores come from the tag index alone (the other ``weights`` only add to holders of a wanted
    tag); each scored document's visibility is checked (search's
    condition) before anything is cut, so a record the reader may not see never takes a place. Of
    the visible ones, the ``best`` by score and the first ``per_tag`` holders of each wanted tag (so
    that the holders of a rare tag are never crowded out by those of common ones) go on to the
    per-country ranking.

    Answered from the search accelerator's bitmaps when the backend uses it and it is ready
    (``accel_candidates.py``: the same list, without a row per holder), else by :func:`ranked_in_sql`.
    """
    if backend.accelerated and wanted:
        from . import accel, accel_candidates

        plan = _plan(scope)
        found = await accel.accelerator_of(conn, backend.dialect).on_index(
            conn,
            backend,
            lambda index: accel_candidates.ranked(
                index, plan, ORGANISATION, weights, wanted, per_country, best, per_tag
            ),
        )
        if found is not None:
            return found
    return await ranked_in_sql(backend, conn, scope, weights, wanted, per_country, best, per_tag)


async def ranked_in_sql(
    backend: SqlSearchBackend,
    conn: Any,
    scope: SearchQuery,
    weights: Mapping[tuple[str, str], float],
    wanted: Sequence[tuple[str, str]],
    per_country: int,
    best: int = 1000,
    per_tag: int = 100,
) -> list[int]:
    """:func:`ranked` in one SQL statement (its cost grows with the holders of the tags)."""
    where, params, any_visible = _organisations(backend, scope)
    if not wanted or not any_visible:
        return []
    keys = list(weights)
    # weights are the builder's constants: literals, so that PostgreSQL needs no parameter type
    wanted_set = set(wanted)
    scored_sql, scored_params = _union(
        keys, [f"{float(weights[key])!r} AS w, {int(key in wanted_set)} AS k" for key in keys]
    )
    first_sql = " UNION ALL ".join(
        f"SELECT f{i}.doc FROM (SELECT t.doc AS doc FROM search_tags t JOIN v ON v.doc = t.doc "
        f"WHERE t.dim = ? AND t.value = ? ORDER BY t.doc LIMIT ?) f{i}"
        for i in range(len(wanted))
    )
    first_params = [x for pair in wanted for x in (*pair, per_tag)]
    held_sql = " OR ".join("(h.dim = ? AND h.value = ?)" for _ in wanted)
    held_params = [x for pair in wanted for x in pair]
    # visibility first (v), then the cuts: what the reader may not see never takes a place
    text = (
        f"WITH m AS (SELECT u.doc AS doc, SUM(u.w) AS score FROM ({scored_sql}) u GROUP BY u.doc "
        "HAVING SUM(u.k) > 0), "
        f"v AS (SELECT m.doc AS doc, m.score AS score FROM m JOIN search_docs d ON d.doc = m.doc WHERE {where}), "
        "top AS (SELECT b.doc AS doc, b.score AS score FROM (SELECT doc, score FROM v ORDER BY score DESC, doc "
        f"LIMIT ?) b UNION SELECT v.doc, v.score FROM v WHERE v.doc IN ({first_sql})), "
        "r AS (SELECT top.doc AS doc, ROW_NUMBER() OVER (PARTITION BY h.dim, h.value, c.value ORDER BY "
        "top.score DESC, top.doc) AS rn FROM top "
        f"JOIN search_tags h ON h.doc = top.doc AND ({held_sql}) "
        "JOIN search_tags c ON c.doc = top.doc AND c.dim = 'country') "
        "SELECT DISTINCT r.doc FROM r WHERE r.rn <= ? ORDER BY r.doc"
    )
    rows = await backend.execute(
        conn, text, [*scored_params, *params, best, *first_params, *held_params, per_country]
    )
    return [int(row[0]) for row in rows]


async def mentioning(
    backend: SqlSearchBackend,
    conn: Any,
    scope: SearchQuery,
    tag: tuple[str, str],
    phrase: Clause,
    limit: int,
    scan: int = 500,
) -> list[int]:
    """Up to ``limit`` documents whose visible text has ``phrase`` and which do not hold ``tag``,
    among the first ``scan`` with the phrase (driven by the full-text match: the first found)."""
    where, params, any_visible = _organisations(backend, scope)
    if not any_visible or not phrase.tokens:
        return []
    # bounded work: the first ``scan`` documents with the phrase (most hold the tag: its label is in
    # their text), whatever the index size
    first_sql, first_params = backend.first_matches((phrase,), _plan(scope).restricted, scan)
    rows = await backend.execute(
        conn,
        f"SELECT d.doc FROM search_docs d WHERE d.doc IN (SELECT e.doc FROM ({first_sql}) e) AND {where} "
        "AND NOT EXISTS (SELECT 1 FROM search_tags x WHERE x.dim = ? AND x.value = ? AND x.doc = d.doc) LIMIT ?",
        [*first_params, *params, *tag, limit],
    )
    return [int(row[0]) for row in rows]


async def details(
    backend: SqlSearchBackend, conn: Any, docs: Sequence[int], asked: Sequence[tuple[str, str]]
) -> list[Found]:
    """Id, title, country and the ``asked`` tags held, of each of ``docs`` (missing ones left out)."""
    unique = sorted({int(doc) for doc in docs})
    if not unique:
        return []
    # integers read from the index itself: inlined (the dialects' in_list binds text)
    listed = ", ".join(str(doc) for doc in unique)
    rows = await backend.execute(
        conn,
        "SELECT d.doc, d.id, d.title, c.value FROM search_docs d "
        f"JOIN search_tags c ON c.doc = d.doc AND c.dim = 'country' WHERE d.doc IN ({listed})",
    )
    asked_set = set(asked)
    tags: dict[int, set[tuple[str, str]]] = {}
    if asked_set:
        dims_sql, dims_params = backend.in_list("t.dim", sorted({dim for dim, _ in asked_set}))
        for doc, dim, value in await backend.execute(
            conn,
            f"SELECT t.doc, t.dim, t.value FROM search_tags t WHERE t.doc IN ({listed}) AND {dims_sql}",
            dims_params,
        ):
            if (dim, value) in asked_set:
                tags.setdefault(int(doc), set()).add((str(dim), str(value)))
    return [
        Found(int(r[0]), str(r[1]), str(r[2]), str(r[3]), frozenset(tags.get(int(r[0]), ()))) for r in rows
    ]
