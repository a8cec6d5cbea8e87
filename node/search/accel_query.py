"""Answering a query from an accelerator :class:`~node.search.accel_index.Index`: bitmap algebra,
facet counts, BM25 ranking and phrase verification (which reads the stored folded text).

See ``node/search/accel.py`` for the whole design; this module holds the query half.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from pyroaring import BitMap

from .accel_index import Index, _intersection, _union
from .base import DIMENSIONS, Hit, SearchQuery, SearchResult
from .cursor import encode_cursor
from .text import Clause, shown_text, snippet

K1 = 1.2
B = 0.75
TITLE_WEIGHT = 10.0
#: Phrase candidates verified exhaustively up to this many; beyond, estimated from a sample.
VERIFY_ALL = 400
PHRASE_SAMPLE = 200
#: Most phrase candidates verified (in rank order) to fill one page.
PHRASE_SCAN_MAX = 20_000
#: Rows per read when verifying phrases.
FETCH_CHUNK = 500
#: Match sets above this size are scored through a dense per-doc scratch array.
DENSE_SCORING = 20_000
#: Facets of at most max(FACET_GATHER_MIN, FACET_GATHER_SHARE × live docs) docs (or of all visible
#: docs but at most that many) are counted from the docs' tag ids with numpy; between, with one
#: bitmap intersection per tag (whose cost grows with the index, not with the set: measured
#: break-even ~4-8 % of the index at 200k and 1M docs).
FACET_GATHER_MIN = 2_000
FACET_GATHER_SHARE = 0.04
#: Greatest distinct values of an integer ranking key taken one by one (masks) before partitioning.
TOP_VALUES = 3
#: Match sets above this size are ranked from a subset when that is exact (see ``_Query.rank``).
NARROW_MIN = 5_000


def _doc_in(dialect: str, docs: Sequence[int]) -> tuple[str, list[Any]]:
    if dialect == "postgres":
        return "doc = ANY($1::bigint[])", [list(docs)]
    return f"doc IN ({', '.join('?' * len(docs))})", list(docs)


async def _rows(conn: Any, text: str, params: Sequence[Any] = ()) -> list[Any]:
    _, rows = await conn.execute_query(text, list(params))
    return list(rows)


def _best(keys: Sequence[np.ndarray], chosen: np.ndarray, wanted: int) -> np.ndarray:
    """The positions among ``chosen`` (ascending) of the ``wanted`` greatest entries in the
    lexicographic order of ``keys`` (most significant first), unordered. The last key must have no
    ties (doc numbers). (It was taken to ascend with the position — true of a bitmap's array, not of
    every caller's: a live search without words then repeated records across pages.)

    Ties on a key are settled by the next key among the tied entries only (before, every entry
    tied with the ``wanted``-th was sorted: a whole index when records share their ``issued_at``
    second, as after a bulk import), and a key whose greatest value alone fills the page needs
    no partition (~1-3 ms per 100k entries).
    """
    if len(chosen) <= wanted:
        return chosen
    if wanted <= 0:
        return chosen[:0]
    if len(keys) == 1:  # the last key has no ties (doc numbers): its ``wanted`` greatest values
        values = keys[0][chosen]
        return chosen[np.argpartition(values, len(chosen) - wanted)[len(chosen) - wanted :]]
    values = keys[0][chosen]
    taken: list[np.ndarray] = []
    # Integer keys (issue times) have few distinct values: the greatest ones, by masks, when they
    # fill the page; scores (floats) are nearly all distinct: straight to the partition.
    for _ in range(TOP_VALUES if values.dtype.kind in "iu" else 0):
        at_top = values == values.max()
        count = int(np.count_nonzero(at_top))
        if count >= wanted:
            return np.concatenate([*taken, _best(keys[1:], chosen[at_top], wanted)])
        taken.append(chosen[at_top])
        wanted -= count
        chosen, values = chosen[~at_top], values[~at_top]
    cut = len(chosen) - wanted
    threshold = np.partition(values, cut)[cut]
    above = chosen[values > threshold]
    tied = chosen[values == threshold]
    return np.concatenate([*taken, above, _best(keys[1:], tied, wanted - len(above))])


def visible(index: Index, plan: Any) -> tuple[BitMap, BitMap]:
    """The live docs ``plan``'s reader may see — of its visibilities, less its excluded origins —
    and the visible docs those origins leave out. Search and the consortium candidates
    (``accel_candidates.py``) both start here: one visibility policy for the bitmaps, as
    ``SqlSearchBackend.conditions`` is for SQL. Either bitmap may be one of the index's own:
    never update it in place."""
    base = _union([index.vis[v] for v in plan.visibilities if v in index.vis])
    if plan.exclude_origins:
        gone = _union([index.origins[o] for o in plan.exclude_origins if o in index.origins]) & base
        if gone:
            return base - gone, gone
    return base, BitMap()


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
                title_parts.append(index.title.union_of(words))
                body_parts.append(_union([field.union_of(words) for field in bodies]))
            else:
                title_parts.append(index.title.get(token, empty))
                body_parts.append(
                    _union([held for field in bodies if (held := field.get(token)) is not None])
                )
        self.title = _intersection(title_parts)
        self.body = _intersection(body_parts)
        self.match = self.title | self.body
        self.phrase = len(clause.tokens) > 1
        needle = " " + " ".join(clause.tokens)
        self.needle = needle if clause.prefix else needle + " "


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
        if self.backend.dialect == "sqlite":
            await self._verify_in_sqlite(todo)
        else:
            await self._verify_in_python(todo)

    async def _verify_in_python(self, todo: Sequence[int]) -> None:
        """Read each doc's folded text (PostgreSQL: folded here) and look for every phrase's needle
        in a field padded with spaces."""
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

    async def _verify_in_sqlite(self, todo: Sequence[int]) -> None:
        """:meth:`_verify` where the folded text is stored (SQLite's ``ftitle``/``fbody``/``frest``):
        the same test — each phrase's needle in a field padded with spaces — by ``instr`` in the
        database, which returns only the docs that pass (no text row crosses into Python: that
        was most of a phrase query's time)."""
        columns = ("ftitle", "fbody", "frest") if self.plan.restricted else ("ftitle", "fbody")
        test = " AND ".join(
            "(" + " OR ".join(f"instr(' ' || {column} || ' ', ?) > 0" for column in columns) + ")"
            for _ in self.phrases
        )
        needles = [clause.needle for clause in self.phrases for _ in columns]
        for start in range(0, len(todo), FETCH_CHUNK):
            batch = todo[start : start + FETCH_CHUNK]
            where, params = _doc_in("sqlite", batch)
            rows = await _rows(
                self.conn, f"SELECT doc FROM search_docs WHERE {where} AND {test}", [*params, *needles]
            )
            for doc in batch:
                self.verified[doc] = False
            for (doc,) in rows:
                self.verified[int(doc)] = True

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
        # Best first: score, then newest, then highest doc number (unique: a total order).
        order_keys = (scores, issued, docs) if self.clauses else (issued, docs)
        chosen = _best(order_keys, np.arange(len(docs)), wanted)
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
        base, self.left_out = visible(index, plan)
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
