"""In-process search accelerator: roaring bitmaps derived from the search tables.

The database stays the source of truth; this is a *rebuildable derivative* of ``search_docs`` and
``search_tags`` held in the process that answers queries:

- token -> bitmap of internal ``doc`` numbers, separately for title and body tokens;
- (dimension, value) -> bitmap, visibility -> bitmap (the live documents);
- per-doc numpy arrays indexed by ``doc``: issue time (recency order), title and body lengths
  (BM25 length normalisation);
- a sorted list of every token, for prefix expansion by bisection.

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
import bisect
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

try:
    import numpy as np
    from pyroaring import BitMap

    AVAILABLE = True
except ImportError:  # pragma: no cover - the SQL path remains
    AVAILABLE = False

from .base import DIMENSIONS, Hit, SearchQuery, SearchResult
from .cursor import encode_cursor
from .text import Clause, shown_text, snippet

log = logging.getLogger(__name__)

K1 = 1.2
B = 0.75
TITLE_WEIGHT = 10.0
#: A prefix expands to at most this many tokens (the alphabetically first ones).
PREFIX_MAX_TOKENS = 4096
#: Phrase candidates verified exhaustively up to this many; beyond, estimated from a sample.
VERIFY_ALL = 400
PHRASE_SAMPLE = 200
#: Most phrase candidates verified (in rank order) to fill one page.
PHRASE_SCAN_MAX = 20_000
#: Rows per read when building or catching up.
BUILD_CHUNK = 5000
FETCH_CHUNK = 500
#: Larger indexes (or backlogs) are built (applied) in the background while SQL answers.
INLINE_BUILD_MAX = 100_000
INLINE_CATCH_UP_MAX = 50_000
GAP_SECONDS = 120.0
GAP_LOOKBACK = 1000
MAX_GAPS = 10_000
STALE_REBUILD = 0.5
#: Match sets above this size are scored through a dense per-doc scratch array.
DENSE_SCORING = 20_000
#: Facets of at most max(FACET_GATHER_MIN, FACET_GATHER_SHARE × live docs) docs (or of all visible
#: docs but at most that many) are counted from the docs' tag ids with numpy; between, with one
#: bitmap intersection per tag (whose cost grows with the index, not with the set: measured
#: break-even ~4-8 % of the index at 200k and 1M docs).
FACET_GATHER_MIN = 2_000
FACET_GATHER_SHARE = 0.04
#: Match sets above this size are ranked from a subset when that is exact (see ``_Query.rank``).
NARROW_MIN = 5_000
#: Sizes (at build) of the "newest docs" bitmaps that rank large text-less match sets.
RECENT_LEVELS = (2_000, 16_000, 128_000)


def enabled() -> bool:
    """True when the accelerator can be used (pyroaring and numpy importable).

    Whether it *should* be is the instance setting ``search_accelerator`` (node.config), passed
    down as ``backend_for(..., accelerated=...)``.
    """
    return AVAILABLE


def _issued_key(issued_at: str) -> int:
    """Map 2026-01-02T03:04:05Z to 20260102030405 (orders like the timestamp, no parsing)."""
    digits = "".join(ch for ch in issued_at if ch.isdigit())
    return int(digits[:14] or 0)


def _doc_in(dialect: str, docs: Sequence[int]) -> tuple[str, list[Any]]:
    if dialect == "postgres":
        return "doc = ANY($1::bigint[])", [list(docs)]
    return f"doc IN ({', '.join('?' * len(docs))})", list(docs)


async def _rows(conn: Any, text: str, params: Sequence[Any] = ()) -> list[Any]:
    _, rows = await conn.execute_query(text, list(params))
    return list(rows)


class Index:
    """The bitmaps and per-doc arrays (no I/O)."""

    def __init__(self) -> None:
        self.title: dict[str, BitMap] = {}
        self.body: dict[str, BitMap] = {}
        #: tokens of the documents' restricted parts (DESIGN §11): only restricted queries use them
        self.rest: dict[str, BitMap] = {}
        self.words: list[str] = []
        self.tags: dict[str, dict[str, BitMap]] = {dim: {} for dim in DIMENSIONS}
        self.vis: dict[str, BitMap] = {}
        #: origin country -> docs (stale bits like the tag bitmaps; only ever used to subtract)
        self.origins: dict[str, BitMap] = {}
        self.live = BitMap()
        self.issued = np.zeros(1024, dtype=np.int64)
        self.tlen = np.zeros(1024, dtype=np.uint16)
        self.blen = np.zeros(1024, dtype=np.uint16)
        self.tsum = 0
        self.bsum = 0
        # Tag ids per doc (CSR: tag_buf[tag_start[doc] : tag_start[doc] + tag_count[doc]]) and the
        # tag counts of the live docs per visibility, for counting facets with numpy.
        self.tag_keys: list[tuple[str, str]] = []
        self.tag_ids: dict[tuple[str, str], int] = {}
        self.dim_ids: dict[str, tuple[list[str], list[int]]] = {}
        self.tag_start = np.zeros(1024, dtype=np.uint32)
        self.tag_count = np.zeros(1024, dtype=np.uint16)
        self.tag_buf = np.zeros(4096, dtype=np.uint8)  # widened when the ids need it
        self.tag_fill = 0
        self.vis_codes: dict[str, int] = {}
        self.vis_counts = np.zeros((0, 0), dtype=np.int64)
        self.stale = 0
        self.applied = 0  # highest change id applied
        self.gaps: dict[int, float] = {}  # change ids not seen yet -> when first missed
        self.version = 0
        #: Bitmaps of the docs issued at or after each threshold (newest first ranking).
        self.recent: list[BitMap] = []
        self.recent_since: list[int] = []

    def _room(self, top: int) -> None:
        if top < len(self.issued):
            return
        size = max(top + 1, len(self.issued) * 3 // 2)
        for name in ("issued", "tlen", "blen", "tag_start", "tag_count"):
            old = getattr(self, name)
            new = np.zeros(size, dtype=old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def add(
        self,
        docs: Sequence[Sequence[Any]],
        tags: Sequence[Sequence[Any]],
        folded: Callable[[str, str, str], tuple[str, str, str]],
    ) -> None:
        """Index ``docs`` rows ``(doc, visibility, issued_at, title, body, restricted[, origin])`` and
        their ``tags`` rows ``(doc, dim, value)``; documents already indexed are skipped."""
        fresh = [row for row in docs if int(row[0]) not in self.live]
        if not fresh:
            return
        self._room(max(int(row[0]) for row in fresh))
        title_postings: dict[str, list[int]] = {}
        body_postings: dict[str, list[int]] = {}
        rest_postings: dict[str, list[int]] = {}
        by_visibility: dict[str, list[int]] = {}
        by_origin: dict[str, list[int]] = {}
        issued, tlen, blen = self.issued, self.tlen, self.blen
        for row in fresh:
            doc = int(row[0])
            title, body, rest = folded(row[3], row[4], row[5] or "")
            title_tokens = title.split()
            body_tokens = body.split()
            for token in set(rest.split()):
                rest_postings.setdefault(token, []).append(doc)
            for token in set(title_tokens):
                held = title_postings.get(token)
                if held is None:
                    title_postings[token] = [doc]
                else:
                    held.append(doc)
            for token in set(body_tokens):
                held = body_postings.get(token)
                if held is None:
                    body_postings[token] = [doc]
                else:
                    held.append(doc)
            by_visibility.setdefault(row[1], []).append(doc)
            if len(row) > 6:
                by_origin.setdefault(row[6], []).append(doc)
            issued[doc] = _issued_key(row[2])
            tlen[doc] = min(len(title_tokens), 65535)
            blen[doc] = min(len(body_tokens), 65535)
            self.tsum += int(tlen[doc])
            self.bsum += int(blen[doc])
        new_words: list[str] = []
        for postings, field, others in (
            (title_postings, self.title, (self.body, self.rest)),
            (body_postings, self.body, (self.title, self.rest)),
            (rest_postings, self.rest, (self.title, self.body)),
        ):
            for token, held in postings.items():
                bitmap = field.get(token)
                if bitmap is None:
                    field[token] = BitMap(held)
                    if all(token not in other for other in others):
                        new_words.append(token)
                else:
                    bitmap.update(held)
        if len(new_words) > 64:
            self.words = sorted(set(self.words).union(new_words))
        else:
            for word in new_words:
                position = bisect.bisect_left(self.words, word)
                if position == len(self.words) or self.words[position] != word:
                    self.words.insert(position, word)
        fresh_docs = {int(row[0]) for row in fresh}
        grouped: dict[tuple[str, str], list[int]] = {}
        per_doc: dict[int, list[int]] = {}
        tag_ids = self.tag_ids
        for doc, dim, value in tags:
            doc = int(doc)
            if doc in fresh_docs:
                key = (dim, value)
                grouped.setdefault(key, []).append(doc)
                tag_id = tag_ids.get(key)
                if tag_id is None:
                    tag_id = self._new_tag(key)
                per_doc.setdefault(doc, []).append(tag_id)
        self._add_tag_ids([int(row[0]) for row in fresh], [row[1] for row in fresh], per_doc)
        for (dim, value), held in grouped.items():
            values = self.tags.setdefault(dim, {})
            bitmap = values.get(value)
            if bitmap is None:
                values[value] = BitMap(held)
            else:
                bitmap.update(held)
        for visibility, held in by_visibility.items():
            self.vis.setdefault(visibility, BitMap()).update(held)
        for origin, held in by_origin.items():
            self.origins.setdefault(origin, BitMap()).update(held)
        if self.recent:
            added = np.fromiter(fresh_docs, dtype=np.int64, count=len(fresh_docs))
            for since, level in zip(self.recent_since, self.recent):
                level.update(added[issued[added] >= since].tolist())
        self.live.update(fresh_docs)
        self.version += 1

    def _new_tag(self, key: tuple[str, str]) -> int:
        tag_id = self.tag_ids[key] = len(self.tag_keys)
        self.tag_keys.append(key)
        values, ids = self.dim_ids.setdefault(key[0], ([], []))
        values.append(key[1])
        ids.append(tag_id)
        if tag_id > np.iinfo(self.tag_buf.dtype).max:
            self.tag_buf = self.tag_buf.astype(np.uint16 if tag_id <= 0xFFFF else np.uint32)
        return tag_id

    def _add_tag_ids(self, docs: list[int], visibilities: list[str], per_doc: dict[int, list[int]]) -> None:
        """Append the tag ids of ``docs`` to the CSR arrays and to the per-visibility counts."""
        for visibility in visibilities:
            if visibility not in self.vis_codes:
                self.vis_codes[visibility] = len(self.vis_codes)
        rows, width = len(self.vis_codes), len(self.tag_keys)
        if self.vis_counts.shape[0] < rows or self.vis_counts.shape[1] < width:
            grown = np.zeros((rows, max(width, self.vis_counts.shape[1] * 3 // 2, 64)), dtype=np.int64)
            grown[: self.vis_counts.shape[0], : self.vis_counts.shape[1]] = self.vis_counts
            self.vis_counts = grown
        flat: list[int] = []
        counts: list[int] = []
        for doc in docs:
            held = per_doc.get(doc, ())
            flat.extend(held)
            counts.append(len(held))
        need = self.tag_fill + len(flat)
        if need > len(self.tag_buf):
            grown_buf = np.zeros(max(need, len(self.tag_buf) * 3 // 2), dtype=self.tag_buf.dtype)
            grown_buf[: self.tag_fill] = self.tag_buf[: self.tag_fill]
            self.tag_buf = grown_buf
        ids = np.array(flat, dtype=np.int64)
        number = np.array(counts, dtype=np.int64)
        array = np.array(docs, dtype=np.int64)
        codes = np.array([self.vis_codes[v] for v in visibilities], dtype=np.int64)
        self.tag_buf[self.tag_fill : need] = ids
        self.tag_start[array] = self.tag_fill + np.cumsum(number) - number
        self.tag_count[array] = number
        self.tag_fill = need
        width = self.vis_counts.shape[1]
        self.vis_counts += np.bincount(
            np.repeat(codes, number) * width + ids, minlength=self.vis_counts.size
        ).reshape(self.vis_counts.shape)

    def tag_ids_of(self, docs: np.ndarray) -> np.ndarray:
        """The tag ids of ``docs`` (concatenated)."""
        number = self.tag_count[docs].astype(np.int64)
        ends = np.cumsum(number)
        starts = self.tag_start[docs].astype(np.int64) - (ends - number)
        return self.tag_buf[np.arange(int(ends[-1]) if len(ends) else 0) + np.repeat(starts, number)]

    def tag_counts(self, docs: BitMap) -> np.ndarray:
        """Number of ``docs`` per tag id."""
        array = np.frombuffer(docs.to_array(), dtype=np.uint32)
        return np.bincount(self.tag_ids_of(array), minlength=len(self.tag_keys))

    def remove(self, docs: Sequence[int]) -> None:
        """Drop ``docs`` from the live set (their token/tag bits go stale)."""
        gone = BitMap(int(doc) for doc in docs) & self.live
        if not gone:
            return
        for visibility, bitmap in self.vis.items():
            held = np.frombuffer((gone & bitmap).to_array(), dtype=np.uint32)
            if len(held):
                counts = np.bincount(self.tag_ids_of(held), minlength=self.vis_counts.shape[1])
                self.vis_counts[self.vis_codes[visibility]] -= counts
        for bitmap in self.vis.values():
            bitmap.difference_update(gone)
        self.live.difference_update(gone)
        array = np.frombuffer(gone.to_array(), dtype=np.uint32)
        self.tsum -= int(self.tlen[array].sum())
        self.bsum -= int(self.blen[array].sum())
        self.stale += len(gone)
        self.version += 1

    def optimize(self) -> None:
        """Compress runs and release slack, set the newest-docs levels (after a build)."""
        for group in (self.title, self.body, self.rest, self.vis, self.origins, *self.tags.values()):
            for bitmap in group.values():
                bitmap.run_optimize()
                bitmap.shrink_to_fit()
        self.tag_buf = self.tag_buf[: self.tag_fill + self.tag_fill // 32 + 4096].copy()
        size = int(self.live.max()) + 1 if self.live else 0
        size += size // 32 + 1024
        if size < len(self.issued):
            for name in ("issued", "tlen", "blen", "tag_start", "tag_count"):
                setattr(self, name, getattr(self, name)[:size].copy())
        self.settle_recent()

    def settle_recent(self) -> None:
        """Level ``i`` holds every doc issued at or after ``recent_since[i]`` (about
        ``RECENT_LEVELS[i]`` docs now; later additions join the levels they qualify for)."""
        docs = np.frombuffer(self.live.to_array(), dtype=np.uint32)
        issued = self.issued[docs]
        self.recent, self.recent_since = [], []
        for size in RECENT_LEVELS:
            if size * 2 > len(docs):
                break
            since = int(np.partition(issued, len(docs) - size)[len(docs) - size])
            self.recent_since.append(since)
            self.recent.append(BitMap(docs[issued >= since].tolist()))

    def expand(self, prefix: str) -> list[str]:
        """Tokens starting with ``prefix``, at most :data:`PREFIX_MAX_TOKENS`."""
        start = bisect.bisect_left(self.words, prefix)
        found: list[str] = []
        for word in self.words[start : start + PREFIX_MAX_TOKENS]:
            if not word.startswith(prefix):
                break
            found.append(word)
        return found


def _union(bitmaps: list[BitMap]) -> BitMap:
    if not bitmaps:
        return BitMap()
    if len(bitmaps) == 1:
        return bitmaps[0]
    return BitMap.union(*bitmaps)


def _intersection(bitmaps: list[BitMap]) -> BitMap:
    if not bitmaps:
        return BitMap()
    ordered = sorted(bitmaps, key=len)
    result = ordered[0] & ordered[1] if len(ordered) > 1 else ordered[0].copy()
    for bitmap in ordered[2:]:
        if not result:
            break
        result &= bitmap
    return result


class _Clause:
    """A clause resolved against the index: title/body candidate bitmaps and the phrase needle.

    With ``restricted`` the restricted part counts as body (match and rank); without it, it is
    never looked at: anonymous queries see public fields only.
    """

    def __init__(self, index: Index, clause: Clause, restricted: bool = False) -> None:
        empty = BitMap()
        title_parts: list[BitMap] = []
        body_parts: list[BitMap] = []
        bodies = (index.body, index.rest) if restricted else (index.body,)
        for position, token in enumerate(clause.tokens):
            if clause.prefix and position == len(clause.tokens) - 1:
                words = index.expand(token)
                title_parts.append(_union([index.title[w] for w in words if w in index.title]))
                body_parts.append(_union([field[w] for field in bodies for w in words if w in field]))
            else:
                title_parts.append(index.title.get(token, empty))
                body_parts.append(_union([field[token] for field in bodies if token in field]))
        self.title = _intersection(title_parts)
        self.body = _intersection(body_parts)
        self.match = self.title | self.body
        self.phrase = len(clause.tokens) > 1
        needle = " " + " ".join(clause.tokens)
        self.needle = needle if clause.prefix else needle + " "


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
            params.append(BUILD_CHUNK * 4)
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
            if len(changes) < BUILD_CHUNK * 4:
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


class _Query:
    """One query against an index."""

    def __init__(self, index: Index, conn: Any, backend: Any, plan: Any) -> None:
        self.index = index
        self.conn = conn
        self.backend = backend
        self.plan = plan
        self.clauses = [_Clause(index, clause, plan.restricted) for clause in plan.clauses]
        self.phrases = [c for c in self.clauses if c.phrase]
        self.verified: dict[int, bool] = {}
        self.base = BitMap()
        #: visible docs left out of ``base`` (excluded origins): the kept counts include them
        self.left_out = BitMap()

    # phrase verification ---------------------------------------------------------------------

    async def _verify(self, docs: Sequence[int]) -> None:
        todo = [doc for doc in docs if doc not in self.verified]
        for start in range(0, len(todo), FETCH_CHUNK):
            batch = todo[start : start + FETCH_CHUNK]
            where, params = _doc_in(self.backend.dialect, batch)
            rows = await _rows(
                self.conn,
                f"SELECT doc, {self.backend.folded_columns} FROM search_docs WHERE " + where,
                params,
            )
            for doc in batch:
                self.verified[doc] = False
            for doc, title, body, rest in rows:
                folded_title, folded_body, folded_rest = self.backend.folded(title, body, rest or "")
                fields: tuple[str, ...] = (" " + folded_title + " ", " " + folded_body + " ")
                if self.plan.restricted:
                    fields += (" " + folded_rest + " ",)
                self.verified[int(doc)] = all(
                    any(clause.needle in field for field in fields) for clause in self.phrases
                )

    async def exact(self, candidates: BitMap) -> tuple[BitMap, float]:
        """The phrase-verified subset of ``candidates`` and a scale (1.0 when exact)."""
        if not self.phrases or not candidates:
            return candidates, 1.0
        if len(candidates) <= VERIFY_ALL:
            docs = list(candidates)
            await self._verify(docs)
            return BitMap(doc for doc in docs if self.verified[doc]), 1.0
        step = len(candidates) / PHRASE_SAMPLE
        sample = [candidates[int(i * step)] for i in range(PHRASE_SAMPLE)]
        await self._verify(sample)
        share = sum(self.verified[doc] for doc in sample) / len(sample)
        return candidates, share

    # facets, ranking ---------------------------------------------------------------------------

    def counts(self, matches: BitMap, dims: Sequence[str], scale: float) -> dict[str, dict[str, int]]:
        """Facet counts of ``matches`` (a subset of the visible docs ``self.base``).

        Per tag id with numpy over the matches' tag ids (CSR) when they are few; as the visible
        docs' counts (kept per visibility) minus those of the visible docs *not* matched when
        those are few; else one ``intersection_cardinality`` per tag bitmap.
        """
        index = self.index
        size, rest = len(matches), len(self.base) - len(matches)
        if min(size, rest) > max(FACET_GATHER_MIN, FACET_GATHER_SHARE * len(index.live)):
            return self.counts_by_bitmap(matches, dims, scale)
        if size <= rest:
            vector = index.tag_counts(matches)
        else:
            vector = self.base_counts()
            if rest:
                vector = vector - index.tag_counts(self.base - matches)
        out: dict[str, dict[str, int]] = {}
        for dim in dims:
            values, ids = index.dim_ids.get(dim, ((), ()))
            numbers = vector[list(ids)] if ids else vector[:0]
            if scale != 1.0:
                numbers = np.round(numbers * scale)
            out[dim] = {values[i]: int(numbers[i]) for i in np.nonzero(numbers)[0].tolist()}
        return out

    def base_counts(self) -> np.ndarray:
        index = self.index
        vector = np.zeros(len(index.tag_keys), dtype=np.int64)
        for visibility in self.plan.visibilities:
            code = index.vis_codes.get(visibility)
            if code is not None:
                vector += index.vis_counts[code, : len(index.tag_keys)]
        if self.left_out:
            vector = vector - index.tag_counts(self.left_out)
        return vector

    def counts_by_bitmap(
        self, matches: BitMap, dims: Sequence[str], scale: float
    ) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for dim in dims:
            counted: dict[str, int] = {}
            for value, bitmap in self.index.tags.get(dim, {}).items():
                number = matches.intersection_cardinality(bitmap)
                if number:
                    number = round(number * scale) if scale != 1.0 else number
                    if number:
                        counted[value] = number
            out[dim] = counted
        return out

    def rank(self, matches: BitMap, wanted: int) -> tuple[np.ndarray, np.ndarray]:
        """The best ``wanted`` docs of ``matches`` in order, and their scores.

        Large match sets are narrowed first, exactly: empty ``q`` ranks only the newest docs of
        ``matches`` (:meth:`Index.recent` levels), a text query only the docs with a title hit when
        the ``wanted``-th of those outscores every possible body-only doc (:meth:`body_bound`).
        """
        if len(matches) > NARROW_MIN and wanted < len(matches):
            if not self.clauses:
                for level in self.index.recent:
                    newest = level & matches
                    if len(newest) >= wanted:
                        return self.top(newest, wanted)
            else:
                titled = _union([clause.title for clause in self.clauses]) & matches
                if len(titled) >= wanted:
                    docs, scores = self.top(titled, wanted)
                    if float(scores[-1]) > self.body_bound():
                        return docs, scores
        return self.top(matches, wanted)

    def top(self, matches: BitMap, wanted: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`rank` by scoring every doc of ``matches``."""
        index = self.index
        docs = np.frombuffer(matches.to_array(), dtype=np.uint32)
        issued = index.issued[docs]
        if self.clauses:
            scores = self.scores(matches, docs)
        else:
            scores = np.zeros(len(docs), dtype=np.float32)
        primary = scores if self.clauses else issued
        if len(docs) > wanted:
            threshold = np.partition(primary, len(docs) - wanted)[len(docs) - wanted]
            chosen = np.nonzero(primary >= threshold)[0]
        else:
            chosen = np.arange(len(docs))
        keys = (-docs[chosen].astype(np.int64), -issued[chosen], -scores[chosen].astype(np.float64))
        order = chosen[np.lexsort(keys)][:wanted]
        return docs[order], scores[order]

    def _idf(self, clause: _Clause) -> float:
        total = max(len(self.index.live), 1)
        frequency = len(clause.match)
        return math.log(1.0 + (total - frequency + 0.5) / (frequency + 0.5))

    def body_bound(self) -> float:
        """An upper bound of the score of a doc without a title hit (body gains at length 0),
        with a margin for the float32 arithmetic of :meth:`scores`."""
        return sum(self._idf(clause) * (K1 + 1.0) / (1.0 + K1 * (1.0 - B)) for clause in self.clauses) * (
            1.0 + 1e-4
        )

    def scores(self, matches: BitMap, docs: np.ndarray) -> np.ndarray:
        index = self.index
        total = max(len(index.live), 1)
        avg_title = max(index.tsum / total, 1.0)
        avg_body = max(index.bsum / total, 1.0)
        dense = len(docs) > DENSE_SCORING
        scratch = np.zeros(len(index.issued) if dense else len(docs), dtype=np.float32)
        for clause in self.clauses:
            idf = self._idf(clause)
            for field, lengths, average, weight in (
                (clause.title, index.tlen, avg_title, TITLE_WEIGHT),
                (clause.body, index.blen, avg_body, 1.0),
            ):
                hit = field & matches
                if not hit:
                    continue
                hits = np.frombuffer(hit.to_array(), dtype=np.uint32)
                norm = 1.0 - B + B * (lengths[hits].astype(np.float32) / np.float32(average))
                gain = np.float32(idf * weight * (K1 + 1.0)) / (np.float32(1.0) + np.float32(K1) * norm)
                if dense:
                    scratch[hits] += gain
                else:
                    scratch[np.searchsorted(docs, hits)] += gain
        return scratch[docs] if dense else scratch

    async def rows(self, docs: Sequence[int]) -> dict[int, Any]:
        if not docs:
            return {}
        where, params = _doc_in(self.backend.dialect, list(docs))
        rows = await _rows(
            self.conn,
            "SELECT doc, id, type, origin, title, text, version, rtext FROM search_docs WHERE " + where,
            params,
        )
        return {int(row[0]): row for row in rows}

    # the query ---------------------------------------------------------------------------------

    async def run(self, query: SearchQuery, offset: int) -> SearchResult:
        index, plan = self.index, self.plan
        base = _union([index.vis[v] for v in plan.visibilities if v in index.vis])
        if plan.exclude_origins:
            gone = _union([index.origins[o] for o in plan.exclude_origins if o in index.origins]) & base
            if gone:
                self.left_out = gone
                base = base - gone
        self.base = base
        filters = {
            dim: _union([index.tags.get(dim, {})[v] for v in values if v in index.tags.get(dim, {})])
            for dim, values in plan.filters.items()
        }
        text = _intersection([base] + [clause.match for clause in self.clauses]) if self.clauses else base

        def narrowed(skip: str | None) -> BitMap:
            parts = [bitmap for dim, bitmap in filters.items() if dim != skip]
            return _intersection([text, *parts]) if parts else text

        matches, scale = await self.exact(narrowed(None))
        total = round(len(matches) * scale)
        facets = self.counts(matches, [d for d in DIMENSIONS if d not in filters], scale)
        for dim in filters:
            subset, subset_scale = await self.exact(narrowed(dim))
            facets.update(self.counts(subset, [dim], subset_scale))
        for dim, values in plan.filters.items():
            for value in values:
                facets[dim].setdefault(value, 0)
        facets = {
            dim: dict(sorted(facets[dim].items(), key=lambda kv: (-kv[1], kv[0]))) for dim in DIMENSIONS
        }

        wanted = offset + query.limit
        page: list[tuple[int, float]] = []
        if offset < total and matches:
            if scale == 1.0:
                docs, scores = self.rank(matches, wanted)
                page = list(zip(docs[offset:].tolist(), scores[offset:].tolist()))
            else:
                page, exhausted, found = await self.scan_phrases(matches, wanted, scale)
                page = page[offset:]
                if exhausted:
                    total = found
        rows = await self.rows([doc for doc, _ in page])
        hits = [
            Hit(
                id=row[1],
                type=row[2],
                origin=row[3],
                title=row[4],
                snippet=snippet(shown_text(row[5], row[7], plan.restricted), plan.clauses),
                score=round(float(score), 6),
                version=int(row[6]),
            )
            for doc, score in page
            if (row := rows.get(doc)) is not None
        ]
        next_offset = offset + query.limit
        next_cursor = encode_cursor(next_offset, query) if next_offset < total else None
        return SearchResult(total, hits, facets, next_cursor)

    async def scan_phrases(
        self, candidates: BitMap, wanted: int, share: float
    ) -> tuple[list[tuple[int, float]], bool, int]:
        """Verify ranked candidates until ``wanted`` match; (hits, every candidate seen, found)."""
        limit = min(len(candidates), PHRASE_SCAN_MAX)
        # Ranked as far as the batches reach (top-n is a prefix of top-m for n < m: the order is
        # total), rather than all ``limit`` up front.
        ranked = 0
        docs = np.zeros(0, dtype=np.uint32)
        scores = np.zeros(0, dtype=np.float32)
        found: list[tuple[int, float]] = []
        position = 0
        while position < limit and len(found) < wanted:
            need = wanted - len(found)
            batch = max(64, int(need / max(share, 0.01) * 1.3))
            if position + batch > ranked and ranked < limit:
                ranked = min(limit, max(position + batch, 2 * ranked))
                docs, scores = self.rank(candidates, ranked)
            chunk = docs[position : position + batch].tolist()
            await self._verify(chunk)
            for doc, score in zip(chunk, scores[position : position + batch].tolist()):
                if self.verified[doc]:
                    found.append((doc, score))
            position += len(chunk)
        exhausted = position >= len(candidates)
        return found[:wanted], exhausted, len(found)


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
