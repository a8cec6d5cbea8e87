"""Search logic shared by the SQL backends; dialects supply the full-text pieces.

Tables (all prefixed ``search_``):

- ``search_docs``: one row per document, keyed by an integer ``doc``; the display fields and the
  original title/text (for snippets).
- ``search_tags(dim, value, doc)``: one row per tag, the primary key serving filters and a
  ``(doc, dim, value)`` index serving facet counts.
- ``search_counts(visibility, dim, value, n)``: tag counts per visibility, adjusted by every write
  in the same transaction, so facets of the unfiltered, text-less listing (the landing page, and
  the worst case for counting: every document matches) cost one small grouped read.
- the dialect's full-text structure (FTS5 table or ``tsvector`` column).
- ``search_changes(id, doc)``: the change log. Every write appends the internal ``doc`` numbers it
  removed and added, in the same transaction; ``doc`` numbers are never reused (a replaced document
  gets a new one), so "the row exists → index it, it is gone → drop it" is all a reader of the log
  needs. The in-process accelerator (``accel.py``) catches up from it before answering.

Visibility, text match and filters are all conditions of the one SQL query; nothing is filtered
after ranking. Facets are disjunctive: dimensions without a filter are counted in one grouped
query under every filter; each filtered dimension gets its own query without its own filter.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from node.errors import InvalidParameter

from .base import DIMENSIONS, MAX_LIMIT, Hit, SearchDoc, SearchQuery, SearchResult
from .cursor import decode_cursor, encode_cursor
from .text import Clause, parse_terms, relaxable, shown_text, snippet

MAX_FILTER_VALUES = 100

_WRITE_BATCH = 500


@dataclass(frozen=True)
class Plan:
    """A validated query: clauses, filters (dimension -> values), visibilities, the origins left
    out, the words of ``q`` not among the clauses (``ignored``), and whether the restricted part of
    the documents may match (``restricted``; else public fields only)."""

    clauses: tuple[Clause, ...]
    filters: dict[str, tuple[str, ...]]
    visibilities: tuple[str, ...]
    exclude_origins: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()
    restricted: bool = False


def validate(query: SearchQuery) -> tuple[Plan, int]:
    """Return the plan and the page offset of ``query``.

    Raises ``InvalidParameter`` for a limit outside 1..100, a bad cursor, an unknown filter
    dimension or too many values for one dimension.
    """
    if isinstance(query.limit, bool) or not isinstance(query.limit, int) or not 1 <= query.limit <= MAX_LIMIT:
        raise InvalidParameter(f"limit must be an integer from 1 to {MAX_LIMIT}", parameter="limit")
    offset = decode_cursor(query.cursor, query)
    filters: dict[str, tuple[str, ...]] = {}
    for dimension, values in query.filters.items():
        if dimension not in DIMENSIONS:
            raise InvalidParameter(f"unknown filter: {dimension}", parameter=dimension)
        kept = tuple(dict.fromkeys(v for v in values if isinstance(v, str) and v))
        if len(kept) > MAX_FILTER_VALUES:
            raise InvalidParameter(f"too many values for {dimension}", parameter=dimension)
        if kept:
            filters[dimension] = kept
    q = query.q if isinstance(query.q, str) else ""
    parsed = parse_terms(q)
    clauses, ignored = parsed.clauses, parsed.stop_words
    dropped = tuple(c for c in clauses if c.text in query.drop_terms)
    if dropped and len(dropped) < len(clauses):
        clauses = tuple(c for c in clauses if c not in dropped)
        ignored += tuple(c.text for c in dropped)
    excluded = tuple(sorted(o for o in query.exclude_origins if isinstance(o, str)))
    plan = Plan(clauses, filters, tuple(sorted(query.visibilities)), excluded, ignored, query.restricted is True)
    return plan, offset


class SqlSearchBackend:
    """Search orchestration over ``search_docs``/``search_tags``; subclasses add full text."""

    dialect = ""

    #: DDL of the change log (dialect's autoincrement).
    changes_ddl = ""
    #: Columns holding a document's title, text and restricted part, and how to fold them (see ``folded``).
    folded_columns = ""

    def __init__(self, accelerated: bool | None = None) -> None:
        from . import accel

        self.accelerated = accel.enabled() if accelerated is None else (accelerated and accel.AVAILABLE)

    @staticmethod
    def folded(title: str, body: str, restricted: str = "") -> tuple[str, str, str]:
        """Return (title, body, restricted) read from ``folded_columns`` as folded tokens joined by spaces."""
        raise NotImplementedError

    # --- dialect hooks -------------------------------------------------------------------------

    #: How facet queries join documents to tags; SQLite needs CROSS JOIN to drive from the matches.
    facet_join = "JOIN"

    def sql(self, text: str) -> str:
        """Return ``text`` with ``?`` placeholders in the dialect's style."""
        return text

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """Return a condition ``column IN values`` and its parameters."""
        return f"{column} IN ({', '.join('?' * len(values))})", list(values)

    def match_condition(self, clauses: tuple[Clause, ...], restricted: bool = False) -> tuple[str, list[Any]]:
        """Return a condition on alias ``d`` true when the document matches every clause (in its
        public part only, unless ``restricted``)."""
        raise NotImplementedError

    def first_matches(
        self, clauses: tuple[Clause, ...], restricted: bool, limit: int
    ) -> tuple[str, list[Any]]:
        """Return a query selecting ``doc`` of at most ``limit`` documents that match every clause
        (:meth:`match_condition`), whichever the engine finds first: bounded work, however many match."""
        match, params = self.match_condition(clauses, restricted)
        return f"SELECT d.doc AS doc FROM search_docs d WHERE {match} LIMIT ?", [*params, limit]

    def ranked_page(self, plan: Plan, limit: int, offset: int) -> tuple[str, list[Any]]:
        """Return a query selecting ``d.id, d.type, d.origin, d.title, d.text, d.version, score,
        d.rtext`` for one page of ``plan`` (which has clauses), best first, ties newest first then by id."""
        raise NotImplementedError

    async def write_docs(self, conn: Any, docs: Sequence[SearchDoc]) -> None:
        """Insert rows for ``docs`` (none of whose ids is present) into the dialect's tables."""
        raise NotImplementedError

    async def delete_ids(self, conn: Any, ids: Sequence[str]) -> None:
        """Delete the documents (rows, tags, full text) with these ids."""
        raise NotImplementedError

    # --- the interface -------------------------------------------------------------------------

    async def execute(self, conn: Any, text: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run one statement and return its rows (sequences indexable by position)."""
        _, rows = await conn.execute_query(self.sql(text), list(params))
        return list(rows)

    async def upsert(self, conn: Any, docs: Sequence[SearchDoc]) -> None:
        """Insert ``docs``, replacing held documents with the same ids, in a savepoint of ``conn``.

        Later duplicates within ``docs`` win. Raises the driver's errors (wrapped by tortoise).
        """
        latest = list({doc.id: doc for doc in docs}.values())
        if not latest:
            return
        # tortoise's public in_transaction() needs a registered connection name; this is its core.
        async with conn._in_transaction() as tconn:
            for start in range(0, len(latest), _WRITE_BATCH):
                batch = latest[start : start + _WRITE_BATCH]
                ids = [doc.id for doc in batch]
                deltas = await self.held_counts(tconn, ids, -1)
                await self.log_changes(tconn, ids)
                await self.delete_ids(tconn, ids)
                await self.write_docs(tconn, batch)
                await self.log_changes(tconn, ids)
                for doc in batch:
                    for dim, values in doc.tags.items():
                        for value in set(values):
                            deltas[(doc.visibility, dim, value)] += 1
                await self.apply_counts(tconn, deltas)

    async def insert_new(self, conn: Any, docs: Sequence[SearchDoc]) -> None:
        """Insert ``docs`` of records this index cannot hold yet (ids just made: ``ncc import``), in a
        savepoint of ``conn``: :meth:`upsert` without its look-ups of held documents (their counts,
        change-log entries and rows), which find nothing for a new id.

        An id that is held after all, or repeated in ``docs``, breaks ``search_docs``' unique id: the
        driver's error is raised (wrapped by tortoise) and nothing of ``docs`` is written.
        """
        if not docs:
            return
        async with conn._in_transaction() as tconn:
            for start in range(0, len(docs), _WRITE_BATCH):
                batch = docs[start : start + _WRITE_BATCH]
                await self.write_new_docs(tconn, batch)
                deltas: Counter[tuple[str, str, str]] = Counter()
                for doc in batch:
                    for dim, values in doc.tags.items():
                        for value in set(values):
                            deltas[(doc.visibility, dim, value)] += 1
                await self.apply_counts(tconn, deltas)

    async def write_new_docs(self, conn: Any, docs: Sequence[SearchDoc]) -> None:
        """:meth:`write_docs` and the change-log entries of the new documents (for :meth:`insert_new`)."""
        await self.write_docs(conn, docs)
        await self.log_changes(conn, [doc.id for doc in docs])

    async def delete(self, conn: Any, ids: Sequence[str]) -> None:
        """Remove the documents with ``ids`` (unknown ids are ignored), in a savepoint of ``conn``."""
        unique = list(dict.fromkeys(ids))
        if not unique:
            return
        async with conn._in_transaction() as tconn:
            for start in range(0, len(unique), _WRITE_BATCH):
                batch = unique[start : start + _WRITE_BATCH]
                deltas = await self.held_counts(tconn, batch, -1)
                await self.log_changes(tconn, batch)
                await self.delete_ids(tconn, batch)
                await self.apply_counts(tconn, deltas)

    async def log_changes(self, conn: Any, ids: Sequence[str]) -> None:
        """Append the ``doc`` numbers currently held under ``ids`` to ``search_changes``."""
        ids_sql, params = self.in_list("id", ids)
        await self.execute(
            conn,
            f"INSERT INTO search_changes (doc) SELECT doc FROM search_docs WHERE {ids_sql} ORDER BY doc",
            params,
        )

    async def create_changes(self, conn: Any) -> None:
        """Create the change log ``search_changes`` if missing (idempotent, no commit)."""
        await self.execute(conn, self.changes_ddl)

    async def prune_changes(self, conn: Any, keep: int = 100_000) -> int:
        """Delete all but the newest ``keep`` (at least 1) change-log rows; return how many went.

        An accelerator whose position falls behind the oldest kept row rebuilds from the tables.
        """
        rows = await self.execute(conn, "SELECT max(id) FROM search_changes")
        if rows[0][0] is None:
            return 0
        bound = int(rows[0][0]) - max(1, keep)
        gone = await self.execute(conn, "SELECT count(*) FROM search_changes WHERE id <= ?", [bound])
        await self.execute(conn, "DELETE FROM search_changes WHERE id <= ?", [bound])
        return int(gone[0][0])

    async def held_counts(self, conn: Any, ids: Sequence[str], sign: int) -> Counter[tuple[str, str, str]]:
        """Return ``sign`` × the tag counts (visibility, dim, value) of the held documents ``ids``."""
        ids_sql, params = self.in_list("d.id", ids)
        rows = await self.execute(
            conn,
            "SELECT d.visibility, t.dim, t.value, count(*) FROM search_docs d JOIN search_tags t ON t.doc = d.doc "
            f"WHERE {ids_sql} GROUP BY d.visibility, t.dim, t.value",
            params,
        )
        return Counter({(row[0], row[1], row[2]): sign * int(row[3]) for row in rows})

    async def apply_counts(self, conn: Any, deltas: Counter[tuple[str, str, str]]) -> None:
        """Add ``deltas`` to ``search_counts`` (in key order, so concurrent writers cannot deadlock)."""
        rows = [[*key, delta] for key, delta in sorted(deltas.items()) if delta]
        if rows:
            await conn.execute_many(
                self.sql(
                    "INSERT INTO search_counts (visibility, dim, value, n) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (visibility, dim, value) DO UPDATE SET n = search_counts.n + excluded.n"
                ),
                rows,
            )

    async def rebuild_counts(self, conn: Any) -> None:
        """Recompute ``search_counts`` from the documents (repair, or after adding the table)."""
        async with conn._in_transaction() as tconn:
            await self.execute(tconn, "DELETE FROM search_counts")
            await self.execute(
                tconn,
                "INSERT INTO search_counts (visibility, dim, value, n) SELECT d.visibility, t.dim, t.value, "
                "count(*) FROM search_docs d JOIN search_tags t ON t.doc = d.doc GROUP BY d.visibility, t.dim, t.value",
            )

    async def create_counts(self, conn: Any) -> None:
        """Create ``search_counts`` if missing and fill it when documents predate it."""
        await self.execute(
            conn,
            "CREATE TABLE IF NOT EXISTS search_counts (visibility TEXT NOT NULL, dim TEXT NOT NULL, "
            "value TEXT NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (visibility, dim, value))",
        )
        counted = await self.execute(conn, "SELECT 1 FROM search_counts LIMIT 1")
        held = await self.execute(conn, "SELECT 1 FROM search_docs LIMIT 1")
        if held and not counted:
            await self.rebuild_counts(conn)

    async def warm(self, conn: Any) -> bool:
        """Build (or catch up) this database's accelerator now; False when it is not in use."""
        if not self.accelerated:
            return False
        from . import accel

        await accel.accelerator_of(conn, self.dialect).warm(conn, self)
        return True

    async def count(self, conn: Any) -> int:
        """Return the number of indexed documents."""
        rows = await self.execute(conn, "SELECT count(*) FROM search_docs")
        return int(rows[0][0])

    async def search(self, conn: Any, query: SearchQuery) -> SearchResult:
        """Run ``query``. Raises ``InvalidParameter`` (see :func:`validate`).

        A query that matches nothing is looked at word by word: when it reads as a question (one
        word, or phrase, that occurs in no record the reader may see, at least three that do: see
        ``text.relaxable``) that word is left out and the rest is run again, still AND-ed, so that
        "europe" in a question does not empty the answer. Queries with matches never pay for this
        (an absent word always means no match).
        """
        plan, offset = validate(query)
        if not plan.visibilities:
            facets = {dim: dict.fromkeys(plan.filters.get(dim, ()), 0) for dim in DIMENSIONS}
            return SearchResult(0, [], facets, None, plan.ignored)
        result = await self.answer(conn, query, plan, offset)
        if result.total == 0 and len(plan.clauses) > 1:
            absent = await self.absent_clauses(conn, plan)
            if not query.relax:
                return replace(result, ignored=plan.ignored, absent=tuple(c.text for c in absent))
            if relaxable(len(absent), len(plan.clauses)):
                plan = replace(
                    plan,
                    clauses=tuple(c for c in plan.clauses if c not in absent),
                    ignored=plan.ignored + tuple(c.text for c in absent),
                )
                result = await self.answer(conn, query, plan, offset)
        return replace(result, ignored=plan.ignored)

    async def answer(self, conn: Any, query: SearchQuery, plan: Plan, offset: int) -> SearchResult:
        """One page of ``plan`` with its total and facets (accelerated when ready, else SQL)."""
        if self.accelerated:
            from . import accel

            answer = await accel.accelerator_of(conn, self.dialect).search(conn, self, query, plan, offset)
            if answer is not None:
                return answer
        facets = await self.facets(conn, plan)
        total = self.total_from_facets(plan, facets)
        hits: list[Hit] = []
        if offset < total:
            hits = await self.page(conn, plan, query.limit, offset)
        next_offset = offset + query.limit
        next_cursor = encode_cursor(next_offset, query) if next_offset < total else None
        return SearchResult(total, hits, facets, next_cursor)

    async def absent_clauses(self, conn: Any, plan: Plan) -> list[Clause]:
        """The clauses of ``plan`` that match no document of its visibilities on their own
        (filters and excluded origins aside: a word is judged against the whole visible index)."""
        if self.accelerated:
            from . import accel

            found = await accel.accelerator_of(conn, self.dialect).absent_clauses(conn, self, plan)
            if found is not None:
                return found
        return [clause for clause in plan.clauses
                if not await self.clause_exists(conn, clause, plan.visibilities, plan.restricted)]

    async def clause_exists(
        self, conn: Any, clause: Clause, visibilities: Sequence[str], restricted: bool = False
    ) -> bool:
        """True when a document of ``visibilities`` matches ``clause`` (restricted part included
        only with ``restricted``)."""
        visibility, params = self.in_list("d.visibility", visibilities)
        match, match_params = self.match_condition((clause,), restricted)
        rows = await self.execute(
            conn, f"SELECT 1 FROM search_docs d WHERE {match} AND {visibility} LIMIT 1", match_params + params
        )
        return bool(rows)

    async def held_versions(self, conn: Any, ids: Sequence[str]) -> dict[str, int]:
        """The version indexed for each of ``ids`` that is held (unknown ids are left out)."""
        unique = list(dict.fromkeys(ids))
        if not unique:
            return {}
        ids_sql, params = self.in_list("id", unique)
        rows = await self.execute(conn, f"SELECT id, version FROM search_docs WHERE {ids_sql}", params)
        return {str(row[0]): int(row[1]) for row in rows}

    # --- pieces --------------------------------------------------------------------------------

    def conditions(
        self, plan: Plan, skip: str | None = None, text_match: bool = True
    ) -> tuple[str, list[Any]]:
        """Return the WHERE condition (on alias ``d``) of ``plan``, leaving out filter ``skip``
        (and the text match when ``text_match`` is false: the ranked query joins it itself)."""
        visibility, params = self.in_list("d.visibility", plan.visibilities)
        parts = [visibility]
        if plan.exclude_origins:
            origins, origin_params = self.in_list("d.origin", plan.exclude_origins)
            parts.append(f"NOT ({origins})")
            params += origin_params
        if plan.clauses and text_match:
            match, match_params = self.match_condition(plan.clauses, plan.restricted)
            parts.append(match)
            params += match_params
        for dimension, values in plan.filters.items():
            if dimension == skip:
                continue
            values_sql, values_params = self.in_list("t.value", values)
            parts.append(f"d.doc IN (SELECT t.doc FROM search_tags t WHERE t.dim = ? AND {values_sql})")
            params += [dimension, *values_params]
        return " AND ".join(parts), params

    async def facets(self, conn: Any, plan: Plan) -> dict[str, dict[str, int]]:
        """Return disjunctive counts for every dimension."""
        counts: dict[str, dict[str, int]] = {dim: {} for dim in DIMENSIONS}
        unfiltered = [dim for dim in DIMENSIONS if dim not in plan.filters]
        groups: list[tuple[list[str], str | None]] = [(unfiltered, None)] if unfiltered else []
        groups += [([dim], dim) for dim in plan.filters]
        for dims, skip in groups:
            dims_sql, dims_params = self.in_list("f.dim", dims)
            if not plan.clauses and not plan.exclude_origins and set(plan.filters) <= {skip}:
                # Nothing narrows this group but visibility: read the maintained counts.
                visibility, params = self.in_list("f.visibility", plan.visibilities)
                rows = await self.execute(
                    conn,
                    f"SELECT f.dim, f.value, sum(f.n) FROM search_counts f WHERE {visibility} AND {dims_sql} "
                    "AND f.n > 0 GROUP BY f.dim, f.value",
                    params + dims_params,
                )
                for dim, value, number in rows:
                    counts[dim][value] = int(number)
                continue
            where, params = self.conditions(plan, skip)
            rows = await self.execute(
                conn,
                f"SELECT f.dim, f.value, count(*) FROM search_docs d {self.facet_join} search_tags f "
                f"ON f.doc = d.doc WHERE {where} AND {dims_sql} GROUP BY f.dim, f.value",
                params + dims_params,
            )
            for dim, value, number in rows:
                counts[dim][value] = int(number)
        for dim, values in plan.filters.items():
            for value in values:
                counts[dim].setdefault(value, 0)
        return {
            dim: dict(sorted(values.items(), key=lambda kv: (-kv[1], kv[0])))
            for dim, values in counts.items()
        }

    @staticmethod
    def total_from_facets(plan: Plan, facets: Mapping[str, Mapping[str, int]]) -> int:
        """Every document has exactly one ``type`` tag, so the type facet sums to the total."""
        selected = plan.filters.get("type")
        counts = facets["type"]
        return sum(counts.get(v, 0) for v in selected) if selected else sum(counts.values())

    async def page(self, conn: Any, plan: Plan, limit: int, offset: int) -> list[Hit]:
        """Return one page of hits, ranked (or newest first without clauses)."""
        if plan.clauses:
            text, values = self.ranked_page(plan, limit, offset)
        else:
            where, params = self.conditions(plan)
            text = (
                "SELECT d.id, d.type, d.origin, d.title, d.text, d.version, 0.0, d.rtext FROM search_docs d "
                f"WHERE {where} ORDER BY d.issued_at DESC, d.id DESC LIMIT ? OFFSET ?"
            )
            values = params + [limit, offset]
        rows = await self.execute(conn, text, values)
        return [
            Hit(
                id=row[0],
                type=row[1],
                origin=row[2],
                title=row[3],
                snippet=snippet(shown_text(row[4], row[7], plan.restricted), plan.clauses),
                score=round(float(row[6]), 6),
                version=int(row[5]),
            )
            for row in rows
        ]
