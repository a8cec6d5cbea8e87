"""Token postings of one accelerator field without a Python object per token.

A registry has a few thousand common tokens and millions of rare ones: every record brings its own
identifiers, e-mail address, phone number, street and surname (mostly in the restricted part). One
``str`` key and one ``BitMap`` object per distinct token cost ~400 B of Python and allocator
overhead per token — ~1 KB per record, the accelerator's largest part. Here:

- ``big``: tokens of more than :data:`SMALL` docs keep a pyroaring ``BitMap`` each (few tokens);
- every other token lives in sorted **runs**: one ``bytes`` blob of the UTF-8 tokens end to end,
  ``array('I')`` of where each token ends, of where its doc ids end, and of the doc ids — about
  ``len(token) + 8 + 4 × docs`` bytes per token, found by binary search (UTF-8 orders like ``str``);
- ``delta``: tokens added since the last run (token -> ``array('I')`` of docs), turned into a new
  run past :data:`FLUSH_TOKENS`. Runs are merged like a binary counter (a run is merged into the
  one before it while that one is at most twice its size), so there are O(log n) of them and each
  token is rewritten O(log n) times.

A token whose docs pass :data:`SMALL` moves to ``big`` (its old run entries are then ignored).
Lookups return a ``BitMap`` (a fresh one for a rare token). The class is a read-only ``Mapping``
token -> ``BitMap`` (``in``, ``get``, ``[]``, iteration — iteration materialises every token: tests
and diagnostics only); :meth:`add` adds postings, :meth:`prefixed` lists tokens by prefix in order.
"""

from __future__ import annotations

import bisect
import heapq
from array import array
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pyroaring import BitMap

#: Tokens of more docs than this get a BitMap of their own.
SMALL = 48
#: New rare tokens kept in the delta dict before they become a run.
FLUSH_TOKENS = 8192


def _encode(token: str) -> bytes:
    return token.encode("utf-8", "surrogatepass")


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogatepass")


class _Run:
    """An immutable sorted run of rare tokens and their doc ids."""

    __slots__ = ("docs", "key_end", "keys", "post_end")

    def __init__(self, entries: Iterator[tuple[bytes, Any]]) -> None:
        keys = bytearray()
        key_end = array("I")
        post_end = array("I")
        docs = array("I")
        for key, held in entries:
            keys += key
            key_end.append(len(keys))
            docs.extend(held)
            post_end.append(len(docs))
        self.keys = bytes(keys)
        self.key_end = key_end
        self.post_end = post_end
        self.docs = docs

    def __len__(self) -> int:
        return len(self.key_end)

    def key(self, i: int) -> bytes:
        return self.keys[self.key_end[i - 1] if i else 0 : self.key_end[i]]

    def postings(self, i: int) -> array[int]:
        return self.docs[self.post_end[i - 1] if i else 0 : self.post_end[i]]

    def lower_bound(self, key: bytes) -> int:
        lo, hi = 0, len(self.key_end)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.key(mid) < key:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def find(self, key: bytes) -> int:
        i = self.lower_bound(key)
        return i if i < len(self.key_end) and self.key(i) == key else -1

    def entries(self) -> Iterator[tuple[bytes, array[int]]]:
        for i in range(len(self.key_end)):
            yield self.key(i), self.postings(i)

    def nbytes(self) -> int:
        return len(self.keys) + 4 * (len(self.key_end) + len(self.post_end) + len(self.docs))


class Postings(Mapping[str, BitMap]):
    """token -> docs of one field (see the module doc)."""

    def __init__(self) -> None:
        self.big: dict[str, BitMap] = {}
        self.delta: dict[str, array[int]] = {}
        self.runs: list[_Run] = []
        #: tokens of ``big`` and ``delta``, sorted (prefix expansion)
        self._loose: list[str] = []
        #: ``big``'s tokens, encoded (their run entries are left out when runs merge)
        self._big_keys: set[bytes] = set()

    # -- reading ----------------------------------------------------------------------------------

    def _rare(self, token: str) -> array[int]:
        """The doc ids of a token that is not in ``big`` (runs, then the delta)."""
        found = array("I")
        key = _encode(token)
        for run in self.runs:
            i = run.find(key)
            if i >= 0:
                found.extend(run.postings(i))
        held = self.delta.get(token)
        if held is not None:
            found.extend(held)
        return found

    def __getitem__(self, token: str) -> BitMap:
        bitmap = self.big.get(token)
        if bitmap is not None:
            return bitmap
        found = self._rare(token)
        if not found:
            raise KeyError(token)
        return BitMap(found)

    def get(self, token: str, default: Any = None) -> Any:  # type: ignore[override]
        try:
            return self[token]
        except KeyError:
            return default

    def __contains__(self, token: object) -> bool:
        if not isinstance(token, str):
            return False
        if token in self.big or token in self.delta:
            return True
        key = _encode(token)
        return any(run.find(key) >= 0 for run in self.runs)

    def _tokens(self) -> set[str]:
        out = set(self.big) | set(self.delta)
        for run in self.runs:
            out.update(_decode(key) for key, _ in run.entries())
        return out

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._tokens()))

    def __len__(self) -> int:
        return len(self._tokens())

    def prefixed(self, prefix: str, limit: int) -> list[str]:
        """The first ``limit`` tokens (in order) that start with ``prefix``."""
        found: set[str] = set()
        start = bisect.bisect_left(self._loose, prefix)
        for token in self._loose[start : start + limit]:
            if not token.startswith(prefix):
                break
            found.add(token)
        key = _encode(prefix)
        for run in self.runs:
            i = run.lower_bound(key)
            end = min(len(run), i + limit)
            while i < end:
                raw = run.key(i)
                if not raw.startswith(key):
                    break
                found.add(_decode(raw))
                i += 1
        return sorted(found)[:limit]

    def union_of(self, words: Sequence[str]) -> BitMap:
        """The docs of any of ``words`` (sorted, as :meth:`prefixed` lists them): the rare ones are
        gathered in one forward walk per run, not one binary search per word (a prefix expands to
        up to thousands of words)."""
        parts = [self.big[word] for word in words if word in self.big]
        found = array("I")
        for word in words:
            held = self.delta.get(word)
            if held is not None:
                found.extend(held)
        if words:
            keys = [_encode(word) for word in words]
            for run in self.runs:
                i, k, end = run.lower_bound(keys[0]), 0, len(run)
                while i < end and k < len(keys):
                    key = run.key(i)
                    if key == keys[k]:
                        found.extend(run.postings(i))
                        i += 1
                        k += 1
                    elif key < keys[k]:
                        i += 1
                    else:
                        k += 1
        if found:
            parts.append(BitMap(found))
        if not parts:
            return BitMap()
        return parts[0] if len(parts) == 1 else BitMap.union(*parts)

    def nbytes(self) -> int:
        """Bytes of the runs' arrays (not counting ``big`` and ``delta``)."""
        return sum(run.nbytes() for run in self.runs)

    # -- writing ----------------------------------------------------------------------------------

    def add(self, postings: Mapping[str, list[int]]) -> None:
        """Add ``postings`` (token -> doc ids)."""
        big, delta = self.big, self.delta
        fresh: list[str] = []
        promote: list[str] = []
        for token, docs in postings.items():
            bitmap = big.get(token)
            if bitmap is not None:
                bitmap.update(docs)
                continue
            held = delta.get(token)
            if held is None:
                fresh.append(token)
                held = delta[token] = array("I")
            held.extend(docs)
            if len(held) > SMALL:
                promote.append(token)
        for token in promote:
            self._promote(token, self.delta.pop(token))
        if len(fresh) > 64:
            self._loose = sorted(set(self._loose).union(fresh))
        else:
            for token in fresh:
                bisect.insort(self._loose, token)
        if len(self.delta) >= FLUSH_TOKENS:
            self.flush()

    def _promote(self, token: str, held: Any) -> None:
        """Give ``token`` a BitMap of ``held`` and of whatever the runs and the delta hold of it."""
        bitmap = BitMap(held)
        bitmap.update(self._rare(token))
        self.delta.pop(token, None)
        self.big[token] = bitmap
        self._big_keys.add(_encode(token))

    def flush(self) -> None:
        """Turn the delta into a run and merge runs (see the module doc)."""
        if not self.delta:
            return
        ordered = sorted((_encode(token), held) for token, held in self.delta.items())
        self.delta = {}
        self.runs.append(_Run(iter(ordered)))
        del ordered
        while len(self.runs) > 1 and len(self.runs[-2]) <= 2 * len(self.runs[-1]):
            self._merge_last_two()
        self._loose = sorted(self.big)

    def _merge_last_two(self) -> None:
        """Replace the two newest runs by one (a token in both: older docs first), leaving out tokens
        now in ``big`` and moving there those past :data:`SMALL` docs (with their docs in any other
        run: ``_promote``)."""
        newer = self.runs.pop()
        older = self.runs.pop()

        def entries() -> Iterator[tuple[bytes, Any]]:
            merged = heapq.merge(older.entries(), newer.entries(), key=lambda entry: entry[0])
            pending: tuple[bytes, Any] | None = None
            for key, held in merged:
                if pending is not None and pending[0] == key:
                    pending = (key, pending[1] + held)
                    continue
                if pending is not None:
                    yield from self._keep(pending)
                pending = (key, held)
            if pending is not None:
                yield from self._keep(pending)

        self.runs.append(_Run(entries()))

    def _keep(self, entry: tuple[bytes, Any]) -> Iterator[tuple[bytes, Any]]:
        key, held = entry
        if key in self._big_keys:
            return
        if len(held) > SMALL:
            self._promote(_decode(key), held)  # (the two runs merged are off self.runs meanwhile)
            return
        yield entry

    def optimize(self) -> None:
        """Compress the BitMaps and fold everything rare into one run (after a build)."""
        self.flush()
        while len(self.runs) > 1:
            self._merge_last_two()
        self._loose = sorted(self.big)
        for bitmap in self.big.values():
            bitmap.run_optimize()
            bitmap.shrink_to_fit()
