"""In-process search accelerator: roaring bitmaps derived from the search tables.

Three modules: ``accel_index.py`` the pure index (bitmaps and per-doc arrays, no I/O; its memory
layout is documented there), ``accel_query.py`` the query (bitmap algebra, facets, ranking,
phrase verification), and this one the :class:`Accelerator` of a database — building the index
and keeping it current from the change log — and the per-process registry. Names of the other two
are re-exported here. ``accel_candidates.py`` answers the consortium builder's candidate ranking
from the same index (:meth:`Accelerator.on_index`).

The database stays the source of truth; this is a *rebuildable derivative* of ``search_docs`` and
``search_tags`` held in the process that answers queries:

- token -> bitmap of internal ``doc`` numbers, separately for title and body tokens;
- (dimension, value) -> bitmap, visibility -> bitmap (the live documents);
- per-doc numpy arrays indexed by ``doc``: issue time (recency order), title and body lengths
  (BM25 length normalisation);
- every token in order, for prefix expansion (``accel_postings.Postings.prefixed``).

A query is bitmap algebra: visibility ∪, clauses ∩ (prefix = ∪ of the expanded tokens, capped),
filters ∪ within / ∩ across dimensions. Facet counts (of the match set without the dimension's own
filter, so they stay disjunctive) come from the docs' tag ids (CSR arrays, ``np.bincount``) when
the set is small, as the visible docs' per-visibility counts minus the unmatched visible docs'
when its complement is small, else from ``intersection_cardinality`` with every tag bitmap.
Ranking scores the match set with numpy: BM25 with a term frequency of 1 (presence) per field,
title ×10 as in the SQLite backend, ties newest first, then by ``doc`` (newest written first).
Large sets are ranked from an exact subset: the title hits when their k-th score beats any
body-only score, or (empty ``q``) the docs of a "newest" level.
Phrases are candidates (every token present in one field) verified against the stored folded
text; up to :data:`VERIFY_ALL` candidates all of them, beyond that a sample estimates the share
that match (``total`` and facets are then estimates) and the page is verified in rank order.

Consistency: every write appends the ``doc`` numbers it removed and added to ``search_changes``
in the record's transaction. Before answering, the accelerator reads the log past its position
(one indexed ``max(id)`` read when nothing changed) and applies it: a logged ``doc`` that still
exists is indexed, one that is gone is dropped (``doc`` numbers are never reused, so this is
idempotent). Several processes sharing one database therefore stay correct, and a crash loses
nothing (the next process rebuilds from the tables). Ids that appear out of order (PostgreSQL
sequences are allocated before commit) are re-read for :data:`GAP_SECONDS`. A log that was reset
or pruned past the position triggers a rebuild. While a large build or catch-up runs in the
background, queries are answered in SQL.

Removed documents leave stale bits in token and tag bitmaps; every query intersects with the live
visibility bitmaps, so they never match. They are dropped by the next rebuild (started once the
stale share passes :data:`STALE_REBUILD`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from node.memory import release_free_memory

from .accel_index import AVAILABLE, PREFIX_MAX_TOKENS, RECENT_LEVELS, Index, _intersection, _union
from .base import SearchQuery, SearchResult
from .text import Clause

if AVAILABLE:
    from .accel_query import (
        DENSE_SCORING,
        FACET_GATHER_MIN,
        FACET_GATHER_SHARE,
        FETCH_CHUNK,
        K1,
        NARROW_MIN,
        PHRASE_SAMPLE,
        PHRASE_SCAN_MAX,
        TITLE_WEIGHT,
        VERIFY_ALL,
        B,
        _Clause,
        _doc_in,
        _Query,
        _rows,
    )

__all__ = [
    "AVAILABLE",
    "DENSE_SCORING",
    "FACET_GATHER_MIN",
    "FACET_GATHER_SHARE",
    "FETCH_CHUNK",
    "K1",
    "NARROW_MIN",
    "PHRASE_SAMPLE",
    "PHRASE_SCAN_MAX",
    "PREFIX_MAX_TOKENS",
    "RECENT_LEVELS",
    "TITLE_WEIGHT",
    "VERIFY_ALL",
    "Accelerator",
    "B",
    "Index",
    "_intersection",
    "_union",
    "accelerator_of",
    "enabled",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Documents per read when building: the rows, their tokens and postings of one chunk are the
#: build's transient memory, which the allocator keeps afterwards (5,000: +12 MB of RSS at 95k
#: records against 1,000, for the same build time).
BUILD_CHUNK = 1000
#: Change-log rows per read when catching up.
CATCH_UP_CHUNK = 20_000
#: Larger indexes (or backlogs) are built (applied) in the background while SQL answers.
INLINE_BUILD_MAX = 100_000
INLINE_CATCH_UP_MAX = 50_000
GAP_SECONDS = 120.0
GAP_LOOKBACK = 1000
MAX_GAPS = 10_000
STALE_REBUILD = 0.5


def enabled() -> bool:
    """True when the accelerator can be used (pyroaring and numpy importable).

    Whether it *should* be is the instance setting ``search_accelerator`` (node.config), passed
    down as ``backend_for(..., accelerated=...)``.
    """
    return AVAILABLE


class Accelerator:
    """The accelerator of one database (shared by every backend object of this process)."""

    def __init__(self) -> None:
        self.index: Index | None = None
        self.lock = asyncio.Lock()
        self.task: asyncio.Task[None] | None = None
        self.rebuild: asyncio.Task[None] | None = None
        self.build_seconds: float | None = None

    # --- keeping current ---------------------------------------------------------------------

    async def warm(self, conn: Any, backend: Any) -> None:
        """Build now (whatever the size) and catch up."""
        async with self.lock:
            if self.task is not None:
                await asyncio.wait([self.task])
                self.task = None
            if (
                self.index is None
                or await self._catch_up(conn, backend, self.index, inline=True) == "rebuild"
            ):
                self.index = await self._build_current(conn, backend)

    async def _ready(self, conn: Any, backend: Any) -> bool:
        if self.task is not None:
            if not self.task.done():
                return False
            task, self.task = self.task, None
            if task.exception() is not None:
                log.error("search accelerator build failed", exc_info=task.exception())
                self.index = None
        if self.index is not None:
            state = await self._catch_up(conn, backend, self.index, inline=False)
            if state != "rebuild":
                return state == "ok"
            self.index = None
        held = await _rows(conn, "SELECT count(*) FROM search_docs")
        if int(held[0][0]) <= INLINE_BUILD_MAX:
            self.index = await self._build_current(conn, backend)
            return True
        self.task = asyncio.get_running_loop().create_task(self._build_and_swap(conn, backend))
        return False

    async def _build_current(self, conn: Any, backend: Any) -> Index:
        """Build and catch up (again, should the log be pruned meanwhile)."""
        for _ in range(3):
            index = await self._build(conn, backend)
            if await self._catch_up(conn, backend, index, inline=True) == "ok":
                return index
        raise RuntimeError("search change log keeps moving past the accelerator's position")

    async def _build_and_swap(self, conn: Any, backend: Any) -> None:
        self.index = await self._build_current(conn, backend)

    async def _build(self, conn: Any, backend: Any) -> Index:
        started = time.perf_counter()
        index = Index()
        top = await _rows(conn, "SELECT max(id) FROM search_changes")
        position = int(top[0][0] or 0)
        # Ids at or below the position that are not visible yet may belong to transactions still
        # in flight (PostgreSQL): watch for them like any other gap.
        recent = await _rows(
            conn,
            backend.sql("SELECT id FROM search_changes WHERE id > ? ORDER BY id"),
            [position - GAP_LOOKBACK],
        )
        seen = {int(row[0]) for row in recent}
        now = time.monotonic()
        index.gaps = {
            i: now for i in range(max(1, position - GAP_LOOKBACK + 1), position + 1) if i not in seen
        }
        last = 0
        while True:
            docs = await _rows(
                conn,
                backend.sql(
                    f"SELECT doc, visibility, issued_at, {backend.folded_columns}, origin FROM search_docs "
                    "WHERE doc > ? ORDER BY doc LIMIT ?"
                ),
                [last, BUILD_CHUNK],
            )
            if not docs:
                break
            high = int(docs[-1][0])
            tags = await _rows(
                conn,
                backend.sql("SELECT doc, dim, value FROM search_tags WHERE doc > ? AND doc <= ?"),
                [last, high],
            )
            index.add(docs, tags, backend.folded)
            last = high
            await asyncio.sleep(0)
        index.optimize()
        index.applied = position
        self.build_seconds = time.perf_counter() - started
        release_free_memory()
        return index

    async def _catch_up(self, conn: Any, backend: Any, index: Index, inline: bool) -> str:
        """Apply the change log past ``index.applied``: "ok", "background" (a large backlog is
        being applied by a task) or "rebuild" (the log was reset or pruned past the position)."""
        bounds = await _rows(
            conn, "SELECT (SELECT min(id) FROM search_changes), (SELECT max(id) FROM search_changes)"
        )
        low, high = bounds[0][0], int(bounds[0][1] or 0)
        if high < index.applied or (low is not None and int(low) > index.applied + 1):
            return "rebuild"
        if high == index.applied and not index.gaps:
            return "ok"
        if not inline and high - index.applied > INLINE_CATCH_UP_MAX:
            self.task = asyncio.get_running_loop().create_task(self._catch_up_task(conn, backend, index))
            return "background"
        while True:
            gaps = sorted(index.gaps)[:MAX_GAPS]
            text = "SELECT id, doc FROM search_changes WHERE id > ?"
            params: list[Any] = [index.applied]
            if gaps:
                if backend.dialect == "postgres":
                    text += " OR id = ANY(?::bigint[])"
                    params.append(gaps)
                else:
                    text += f" OR id IN ({', '.join('?' * len(gaps))})"
                    params += gaps
            text += " ORDER BY id LIMIT ?"
            params.append(CATCH_UP_CHUNK)
            changes = await _rows(conn, backend.sql(text), params)
            if not changes:
                break
            now = time.monotonic()
            docs: list[int] = []
            expected = index.applied + 1
            for change_id, doc in changes:
                change_id = int(change_id)
                docs.append(int(doc))
                if change_id in index.gaps:
                    del index.gaps[change_id]
                    continue
                for missing in range(expected, change_id):
                    if len(index.gaps) < MAX_GAPS:
                        index.gaps[missing] = now
                expected = max(expected, change_id + 1)
                index.applied = max(index.applied, change_id)
            await self._apply(conn, backend, index, docs)
            if len(changes) < CATCH_UP_CHUNK:
                break
        now = time.monotonic()
        for change_id, since in list(index.gaps.items()):
            if now - since > GAP_SECONDS:
                del index.gaps[change_id]
        if index.stale > STALE_REBUILD * max(len(index.live), 1000) and self.rebuild is None:
            self.rebuild = asyncio.get_running_loop().create_task(self._rebuild_for_stale(conn, backend))
        return "ok"

    async def _catch_up_task(self, conn: Any, backend: Any, index: Index) -> None:
        if await self._catch_up(conn, backend, index, inline=True) == "rebuild":
            self.index = await self._build_current(conn, backend)

    async def _rebuild_for_stale(self, conn: Any, backend: Any) -> None:
        # Searches go on against the current index (it stays correct) while the new one is built.
        try:
            index = await self._build(conn, backend)
            async with self.lock:
                if await self._catch_up(conn, backend, index, inline=True) == "ok":
                    self.index = index
        finally:
            self.rebuild = None

    async def _apply(self, conn: Any, backend: Any, index: Index, docs: list[int]) -> None:
        unique = sorted(set(docs))
        for start in range(0, len(unique), FETCH_CHUNK):
            batch = unique[start : start + FETCH_CHUNK]
            where, params = _doc_in(backend.dialect, batch)
            rows = await _rows(
                conn,
                backend.sql(
                    f"SELECT doc, visibility, issued_at, {backend.folded_columns}, origin FROM search_docs WHERE "
                )
                + where,
                params,
            )
            tags = await _rows(conn, "SELECT doc, dim, value FROM search_tags WHERE " + where, params)
            present = {int(row[0]) for row in rows}
            index.remove([doc for doc in batch if doc not in present])
            index.add(rows, tags, backend.folded)

    # --- answering ---------------------------------------------------------------------------

    async def search(
        self, conn: Any, backend: Any, query: SearchQuery, plan: Any, offset: int
    ) -> SearchResult | None:
        """Answer ``plan`` from the bitmaps, or None when the accelerator is not ready."""
        async with self.lock:
            if not await self._ready(conn, backend):
                return None
            assert self.index is not None
            return await _Query(self.index, conn, backend, plan).run(query, offset)

    async def on_index(self, conn: Any, backend: Any, compute: Callable[[Index], T]) -> T | None:
        """``compute(index)`` on the current index (caught up, under the lock, as :meth:`search`),
        or None when the accelerator is not ready."""
        async with self.lock:
            if not await self._ready(conn, backend):
                return None
            assert self.index is not None
            return compute(self.index)

    async def absent_clauses(self, conn: Any, backend: Any, plan: Any) -> list[Clause] | None:
        """The clauses of ``plan`` that match no visible doc on their own, or None when the
        accelerator is not ready. Words and prefixes are answered from the bitmaps; a phrase whose
        words do occur together in a field is checked in SQL (it needs positions)."""
        async with self.lock:
            if not await self._ready(conn, backend):
                return None
            assert self.index is not None
            index = self.index
            visible = _union([index.vis[v] for v in plan.visibilities if v in index.vis])
            absent: list[Clause] = []
            maybe: list[Clause] = []
            for clause in plan.clauses:
                resolved = _Clause(index, clause, plan.restricted)
                if not resolved.match.intersect(visible):
                    absent.append(clause)
                elif resolved.phrase:
                    maybe.append(clause)
        for clause in maybe:
            if not await backend.clause_exists(conn, clause, plan.visibilities, plan.restricted):
                absent.append(clause)
        return [clause for clause in plan.clauses if clause in absent]


_REGISTRY: dict[tuple[str, ...], Accelerator] = {}
_REGISTRY_MAX = 16


def _identity(conn: Any, dialect: str) -> tuple[str, ...]:
    root = conn
    while getattr(root, "_parent", None) is not None:
        root = root._parent
    if dialect == "sqlite":
        filename = str(getattr(root, "filename", ""))
        if filename in ("", ":memory:") or "mode=memory" in filename:
            return ("sqlite-memory", str(id(root)))
        return ("sqlite", os.path.abspath(filename))
    return (
        dialect,
        str(getattr(root, "host", "")),
        str(getattr(root, "port", "")),
        str(getattr(root, "database", "")),
    )


def accelerator_of(conn: Any, dialect: str) -> Accelerator:
    """The process-wide accelerator of ``conn``'s database (created empty on first use)."""
    key = _identity(conn, dialect)
    accelerator = _REGISTRY.get(key)
    if accelerator is None:
        while len(_REGISTRY) >= _REGISTRY_MAX:
            _REGISTRY.pop(next(iter(_REGISTRY)))
        accelerator = _REGISTRY[key] = Accelerator()
    return accelerator
