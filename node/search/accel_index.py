"""The accelerator's index: roaring bitmaps and numpy arrays over the search documents (pure: no I/O).

Built from rows of ``search_docs``/``search_tags`` (:meth:`Index.add`), shrunk by :meth:`Index.remove`;
nothing here reads a database, so it is unit-tested on its own (``tests/unit/search/test_accel_index.py``).
``node/search/accel.py`` keeps it current from the change log, ``accel_query.py`` answers queries.

Memory layout (one :class:`Index` per database per process):

- ``title`` / ``body`` / ``rest``: token -> pyroaring ``BitMap`` of the docs whose folded
  title / public body / restricted part holds the token (presence, no positions; ``rest`` is only
  read by restricted queries), each a :class:`~node.search.accel_postings.Postings`: tokens of
  more than a few dozen docs keep a ``BitMap`` each; the rare ones (identifiers, e-mail
  addresses, names: most distinct tokens, ~2 per record) live in sorted compact runs
  (``bytes`` + ``array('I')``, no Python object per token: ~20 B instead of ~400 B each).
  Prefix expansion reads the fields' sorted tokens (:meth:`Index.expand`).
- ``tags[dim][value]``, ``vis[visibility]``, ``origins[country]``, ``live``: bitmaps of docs.
- per-doc numpy arrays indexed by the internal ``doc`` number (dense, grown by 1.5×):
  ``issued`` int64 (YYYYMMDDhhmmss), ``tlen``/``blen`` uint16 (tokens, BM25 length normalisation),
  ``tag_start`` uint32 / ``tag_count`` uint16 into ``tag_buf`` (CSR of tag ids; uint8, widened to
  uint16/uint32 past 255/65535 distinct tags): ~17 B per doc plus ~10 tag ids.
- ``vis_counts``: tag counts of the live docs per visibility (int64 matrix visibilities × tags).
- ``recent``: bitmaps of the newest ~2k/16k/128k docs (ranking of text-less queries).

Removed docs leave stale bits in the token/tag bitmaps (queries intersect with the live
visibility bitmaps); a rebuild drops them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

try:
    import numpy as np
    from pyroaring import BitMap

    from .accel_postings import Postings

    AVAILABLE = True
except ImportError:  # pragma: no cover - the SQL path remains
    AVAILABLE = False

from .base import DIMENSIONS

#: A prefix expands to at most this many tokens (the alphabetically first ones).
PREFIX_MAX_TOKENS = 4096
#: Sizes (at build) of the "newest docs" bitmaps that rank large text-less match sets.
RECENT_LEVELS = (2_000, 16_000, 128_000)


def _issued_key(issued_at: str) -> int:
    """Map 2026-01-02T03:04:05Z to 20260102030405 (orders like the timestamp, no parsing)."""
    digits = "".join(ch for ch in issued_at if ch.isdigit())
    return int(digits[:14] or 0)


class Index:
    """The bitmaps and per-doc arrays (no I/O)."""

    def __init__(self) -> None:
        self.title = Postings()
        self.body = Postings()
        #: tokens of the documents' restricted parts (DESIGN §11): only restricted queries use them
        self.rest = Postings()
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
        self.title.add(title_postings)
        self.body.add(body_postings)
        self.rest.add(rest_postings)
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
        for field in (self.title, self.body, self.rest):
            field.optimize()
        for group in (self.vis, self.origins, *self.tags.values()):
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
        """Tokens starting with ``prefix``, at most :data:`PREFIX_MAX_TOKENS` (the first in order)."""
        found: set[str] = set()
        for field in (self.title, self.body, self.rest):
            found.update(field.prefixed(prefix, PREFIX_MAX_TOKENS))
        return sorted(found)[:PREFIX_MAX_TOKENS]

    @property
    def words(self) -> list[str]:
        """Every distinct token, sorted (materialised: tests and diagnostics only)."""
        return sorted(set(self.title) | set(self.body) | set(self.rest))


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
