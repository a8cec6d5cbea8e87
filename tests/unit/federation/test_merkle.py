"""federation.merkle against RFC 6962/9162's published values and a naive reference implementation."""

from __future__ import annotations

import hashlib

import pytest

from federation import merkle

# The Certificate Transparency reference inputs and the roots of their first n leaves (n = 0..8).
CT_LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (0-based leaf index, tree size, audit path) from the same reference data.
CT_INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]


def naive_root(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 9162 §2.1.1."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return merkle.node_hash(naive_root(leaves[:k]), naive_root(leaves[k:]))


def naive_path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m < k:
        return [*naive_path(m, leaves[:k]), naive_root(leaves[k:])]
    return [*naive_path(m - k, leaves[k:]), naive_root(leaves[:k])]


def naive_subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [naive_root(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*naive_subproof(m, leaves[:k], complete), naive_root(leaves[k:])]
    return [*naive_subproof(m - k, leaves[k:], False), naive_root(leaves[:k])]


def build(leaves: list[bytes]) -> dict[merkle.Key, bytes]:
    """The stored nodes, made by appending one leaf at a time."""
    nodes: dict[merkle.Key, bytes] = {}
    frontier: list[bytes] = []
    for size, leaf in enumerate(leaves):
        assert [nodes[k] for k in merkle.frontier_keys(size)] == frontier
        created = merkle.append(size, frontier, leaf)
        nodes.update(created)
        frontier = merkle.next_frontier(size, frontier, created)
    return nodes


def test_roots_match_the_reference_values() -> None:
    leaves = [merkle.leaf_hash(e) for e in CT_LEAVES]
    nodes = build(leaves)
    for n, expected in enumerate(CT_ROOTS):
        assert merkle.root(n, nodes).hex() == expected
        assert naive_root(leaves[:n]).hex() == expected


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION)
def test_inclusion_paths_match_the_reference_values(index: int, size: int, path: list[str]) -> None:
    leaves = [merkle.leaf_hash(e) for e in CT_LEAVES]
    nodes = build(leaves)
    assert [p.hex() for p in merkle.inclusion_path(index, size, nodes)] == path
    assert merkle.verify_inclusion(leaves[index], index, size, [bytes.fromhex(p) for p in path],
                                   bytes.fromhex(CT_ROOTS[size]))


def test_every_proof_equals_the_reference_and_verifies() -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(70)]
    nodes = build(leaves)
    for n in range(1, len(leaves) + 1):
        root_n = merkle.root(n, nodes)
        assert root_n == naive_root(leaves[:n])
        for m in range(n):
            path = merkle.inclusion_path(m, n, nodes)
            assert path == naive_path(m, leaves[:n])
            assert merkle.verify_inclusion(leaves[m], m, n, path, root_n)
            assert not merkle.verify_inclusion(leaves[(m + 1) % n], m, n, path, root_n) or n == 1
        for m in range(1, n + 1):
            proof = merkle.consistency_path(m, n, nodes)
            assert proof == naive_subproof(m, leaves[:n], True)
            assert merkle.verify_consistency(m, n, proof, merkle.root(m, nodes), root_n)
            if m < n:
                assert not merkle.verify_consistency(m, n, proof, merkle.root(m, nodes), leaves[0])
                bad = [bytes(32), *proof[1:]]
                assert not merkle.verify_consistency(m, n, bad, merkle.root(m, nodes), root_n)


def test_proofs_read_few_nodes_in_a_large_log() -> None:
    """At a million entries an answer needs O(log n) stored nodes, never a full recompute."""
    n = 1_000_003
    assert len(merkle.nodes_for_root(n)) <= 20
    assert len(merkle.nodes_for_inclusion(123_456, n)) <= 2 * 20
    assert len(merkle.nodes_for_consistency(777_777, n)) <= 2 * 20
    # appending completes one node per trailing set bit: O(1) amortised
    created = sum(len(merkle.append(s, [bytes(32)] * s.bit_count(), bytes(32))) for s in range(4096))
    assert created < 2 * 4096


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(merkle.ProofError):
        merkle.inclusion_path(5, 5, {})
    with pytest.raises(merkle.ProofError):
        merkle.consistency_path(0, 5, {})
    with pytest.raises(merkle.ProofError):
        merkle.consistency_path(6, 5, {})
    assert not merkle.verify_inclusion(bytes(32), 3, 2, [], bytes(32))
    assert not merkle.verify_consistency(3, 2, [bytes(32)], bytes(32), bytes(32))
