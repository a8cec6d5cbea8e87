"""An append-only Merkle log with RFC 9162 (Certificate Transparency v2) hashing — pure.

Hashing: ``leaf = SHA-256(0x00 ‖ entry)``, ``node = SHA-256(0x01 ‖ left ‖ right)``; the tree of ``n``
leaves splits at ``k``, the largest power of two below ``n`` (RFC 9162 §2.1.1).

Storage model, so that a log of millions of entries needs neither the whole tree in memory nor a
full recompute: every *perfect* subtree (``2**level`` leaves starting at ``index * 2**level``) is
stored once, when it completes, under ``(level, index)`` — level 0 are the leaf hashes. Every
subtree the RFC's algorithms visit is either such a perfect, aligned subtree or a suffix ending at the
tree size, whose hash is computed from O(log n) perfect ones. So:

- appending is O(1) amortised: :func:`append` turns the right edge (the "frontier", one perfect
  subtree per set bit of the size) and a new leaf into the nodes that completed;
- a root, an inclusion path or a consistency path needs O(log n) stored nodes: :func:`nodes_for_root`,
  :func:`nodes_for_inclusion`, :func:`nodes_for_consistency` name them, the caller fetches them in
  one query, and :func:`root`, :func:`inclusion_path`, :func:`consistency_path` compute the answer
  from that mapping;
- :func:`verify_inclusion` and :func:`verify_consistency` are the client's checks (RFC 9162
  §2.1.3.2, §2.1.4.2), used by node audits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence

Key = tuple[int, int]  # (level, index) of a perfect subtree
Nodes = Mapping[Key, bytes]

EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """Arguments no proof exists for (an index outside the tree, sizes out of order)."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


# -- appending ----------------------------------------------------------------------------------


def frontier_keys(size: int) -> list[Key]:
    """The perfect subtrees on the right edge of a tree of ``size`` leaves, largest first."""
    keys: list[Key] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size & (1 << level):
            keys.append((level, start >> level))
            start += 1 << level
    return keys


def append(size: int, frontier: Sequence[bytes], leaf: bytes) -> list[tuple[Key, bytes]]:
    """The perfect subtrees completed by appending ``leaf`` as leaf number ``size``.

    ``frontier`` holds the hashes of :func:`frontier_keys(size)`, in that order. Returns the new
    nodes, the leaf first: ``((0, size), leaf)`` and one node per level it completes.

    Raises:
        ProofError: ``frontier`` does not fit ``size``.
    """
    if len(frontier) != size.bit_count():
        raise ProofError(f"a tree of {size} leaves has {size.bit_count()} frontier nodes, not {len(frontier)}")
    created = [((0, size), leaf)]
    current, index, level = leaf, size, 0
    remaining = list(frontier)
    while index & 1:  # the subtree to the left at this level is complete: merge
        current = node_hash(remaining.pop(), current)
        index >>= 1
        level += 1
        created.append(((level, index), current))
    return created


def next_frontier(size: int, frontier: Sequence[bytes], created: Sequence[tuple[Key, bytes]]) -> list[bytes]:
    """The frontier of the tree of ``size + 1`` leaves, from the one of ``size`` and what
    :func:`append` created (the last created node replaces the frontier nodes it merged)."""
    merged = len(created) - 1
    return [*frontier[: len(frontier) - merged], created[-1][1]]


# -- which stored nodes an answer needs, and the answer --------------------------------------------


class _Recorder(dict[Key, bytes]):
    """A mapping that records every key asked for (answers a placeholder)."""

    def __missing__(self, key: Key) -> bytes:
        self[key] = b"\x00" * 32
        return self[key]


def _subtree(start: int, end: int, nodes: Nodes) -> bytes:
    """MTH of leaves ``[start, end)``: a perfect aligned subtree read from ``nodes``, or a suffix
    composed of them."""
    size = end - start
    if size & (size - 1) == 0 and start % size == 0:
        level = size.bit_length() - 1
        return nodes[(level, start >> level)]
    k = _split(size)
    return node_hash(_subtree(start, start + k, nodes), _subtree(start + k, end, nodes))


def _needed(compute: Callable[[Nodes], object]) -> list[Key]:
    recorder = _Recorder()
    compute(recorder)
    return sorted(recorder)


def root(size: int, nodes: Nodes) -> bytes:
    """The tree head hash of the first ``size`` leaves."""
    return EMPTY_ROOT if size == 0 else _subtree(0, size, nodes)


def nodes_for_root(size: int) -> list[Key]:
    return [] if size == 0 else _needed(lambda nodes: root(size, nodes))


def _path(m: int, start: int, end: int, nodes: Nodes) -> list[bytes]:
    """RFC 9162 PATH(m, D[start:end]), ``m`` relative to ``start``."""
    size = end - start
    if size == 1:
        return []
    k = _split(size)
    if m < k:
        return [*_path(m, start, start + k, nodes), _subtree(start + k, end, nodes)]
    return [*_path(m - k, start + k, end, nodes), _subtree(start, start + k, nodes)]


def inclusion_path(index: int, size: int, nodes: Nodes) -> list[bytes]:
    """The audit path of leaf ``index`` (0-based) in the tree of ``size`` leaves.

    Raises:
        ProofError: ``index`` is not in the tree.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size}")
    return _path(index, 0, size, nodes)


def nodes_for_inclusion(index: int, size: int) -> list[Key]:
    return _needed(lambda nodes: inclusion_path(index, size, nodes))


def _subproof(m: int, start: int, end: int, complete: bool, nodes: Nodes) -> list[bytes]:
    """RFC 9162 SUBPROOF(m, D[start:end], b)."""
    size = end - start
    if m == size:
        return [] if complete else [_subtree(start, end, nodes)]
    k = _split(size)
    if m <= k:
        return [*_subproof(m, start, start + k, complete, nodes), _subtree(start + k, end, nodes)]
    return [*_subproof(m - k, start + k, end, False, nodes), _subtree(start, start + k, nodes)]


def consistency_path(first: int, second: int, nodes: Nodes) -> list[bytes]:
    """The proof that the tree of ``first`` leaves is a prefix of the tree of ``second``.

    Raises:
        ProofError: not ``0 < first <= second`` (an empty tree needs no proof).
    """
    if not 0 < first <= second:
        raise ProofError(f"no consistency proof from {first} to {second}")
    return _subproof(first, 0, second, True, nodes)


def nodes_for_consistency(first: int, second: int) -> list[Key]:
    return _needed(lambda nodes: consistency_path(first, second, nodes))


# -- verification (the auditor's side) -------------------------------------------------------------


def root_from_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """RFC 9162 §2.1.3.2: the root that ``path`` proves leaf ``index`` under, or None if it cannot."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], expected_root: bytes) -> bool:
    """Does ``path`` prove leaf ``index`` in the tree of ``size`` leaves with this root?"""
    return root_from_inclusion(leaf, index, size, path) == expected_root


def verify_consistency(first: int, second: int, path: Sequence[bytes], first_root: bytes,
                       second_root: bytes) -> bool:
    """RFC 9162 §2.1.4.2: does ``path`` prove the tree of ``first`` leaves a prefix of ``second``'s?"""
    if first == second:
        return not path and first_root == second_root
    if not 0 < first < second or not path:
        return False
    proof = list(path)
    if first & (first - 1) == 0:  # a power of two: the first tree is itself a node of the second
        proof.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0
