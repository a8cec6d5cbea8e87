"""The accelerator's index on its own: no database, rows in, bitmaps and arrays out."""

from __future__ import annotations

import numpy as np
import pytest
from pyroaring import BitMap

from node.search import accel_index
from node.search.accel_index import Index, _intersection, _union


def same(title: str, body: str, restricted: str) -> tuple[str, str, str]:
    return title, body, restricted  # the rows already hold folded text (as SQLite's columns do)


DOCS = [
    (1, "public", "2026-01-01T00:00:00Z", "quantum lab", "post quantum cryptography grid", "", "AT"),
    (2, "network", "2026-01-02T00:00:00Z", "grid security", "energy grid incident response", "mueller", "DE"),
    (3, "public", "2026-01-03T00:00:00Z", "crypto", "quantum quantum keys", None, "AT"),
]
TAGS = [(1, "domain", "cry"), (1, "type", "organisation"), (2, "domain", "nds"), (2, "type", "organisation"),
        (3, "domain", "cry"), (3, "type", "project")]


def built() -> Index:
    index = Index()
    index.add(DOCS, TAGS, same)
    return index


def test_tokens_tags_and_visibility_become_bitmaps() -> None:
    index = built()
    assert index.title["quantum"] == BitMap([1]) and index.body["quantum"] == BitMap([1, 3])
    assert index.body["grid"] == BitMap([1, 2]) and "grid" in index.title
    assert index.rest == {"mueller": BitMap([2])} and "mueller" in index.words  # the restricted part
    assert index.tags["domain"]["cry"] == BitMap([1, 3]) and index.tags["type"]["project"] == BitMap([3])
    assert index.vis == {"public": BitMap([1, 3]), "network": BitMap([2])}
    assert index.origins == {"AT": BitMap([1, 3]), "DE": BitMap([2])}
    assert index.live == BitMap([1, 2, 3])
    assert index.words == sorted(set(index.words)) and "cryptography" in index.words


def test_per_doc_arrays_hold_lengths_and_issue_times() -> None:
    index = built()
    assert int(index.issued[2]) == 20260102000000
    assert (int(index.tlen[1]), int(index.blen[1])) == (2, 4)
    assert int(index.blen[3]) == 3  # token count (BM25 length), repeats included
    assert (index.tsum, index.bsum) == (2 + 2 + 1, 4 + 4 + 3)


def test_tag_ids_in_csr_arrays_count_facets() -> None:
    index = built()
    counts = index.tag_counts(BitMap([1, 3]))
    named = {index.tag_keys[i]: int(n) for i, n in enumerate(counts) if n}
    assert named == {("domain", "cry"): 2, ("type", "organisation"): 1, ("type", "project"): 1}
    public = index.vis_counts[index.vis_codes["public"], : len(index.tag_keys)]
    assert {index.tag_keys[i]: int(n) for i, n in enumerate(public) if n} == named
    assert index.tag_buf.dtype == np.uint8  # few distinct tags: one byte per (doc, tag)


def test_adding_again_is_a_no_op_and_removal_leaves_only_stale_bits() -> None:
    index = built()
    version = index.version
    index.add(DOCS[:1], TAGS[:2], same)
    assert index.version == version and index.tsum == 5
    index.remove([1, 99])
    assert index.live == BitMap([2, 3]) and index.vis["public"] == BitMap([3])
    assert index.body["quantum"] == BitMap([1, 3])  # stale bit: queries intersect with the live docs
    assert index.stale == 1 and (index.tsum, index.bsum) == (3, 7)
    public = index.vis_counts[index.vis_codes["public"], : len(index.tag_keys)]
    assert int(public[index.tag_ids[("domain", "cry")]]) == 1


def test_prefix_expansion_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    index = built()
    assert index.expand("cry") == ["crypto", "cryptography"]
    monkeypatch.setattr(accel_index, "PREFIX_MAX_TOKENS", 1)
    assert index.expand("cry") == ["crypto"]
    assert index.expand("zzz") == []


def test_many_distinct_tags_widen_the_tag_buffer() -> None:
    index = Index()
    docs = [(n, "public", "2026-01-01T00:00:00Z", "t", "b", "") for n in range(1, 301)]
    index.add(docs, [(n, "sector", f"sec.{n}") for n in range(1, 301)], same)
    assert index.tag_buf.dtype == np.uint16
    assert int(index.tag_counts(BitMap([300]))[index.tag_ids[("sector", "sec.300")]]) == 1


def test_newest_levels_and_optimize(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accel_index, "RECENT_LEVELS", (10, 40, 80))
    index = Index()
    docs = [(n, "public", f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}Z", "t", "b", "") for n in range(1, 101)]
    index.add(docs, [], same)
    index.optimize()
    assert [len(level) for level in index.recent] == [10, 40]  # 80 × 2 > 100 docs: no third level
    assert index.recent[0] == BitMap(range(91, 101))
    index.add([(101, "public", "2026-01-02T00:00:00Z", "t", "b", "")], [], same)
    assert 101 in index.recent[0] and 101 in index.recent[1]  # a newer doc joins the levels


def test_set_helpers() -> None:
    a, b = BitMap([1, 2, 3]), BitMap([2, 3, 4])
    assert _union([]) == BitMap() and _union([a]) is a and _union([a, b]) == BitMap([1, 2, 3, 4])
    assert _intersection([a, b, BitMap([3, 9])]) == BitMap([3]) and _intersection([]) == BitMap()


# --- compact postings (node/search/accel_postings.py) ---------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_compact_postings_answer_like_a_dict_of_bitmaps(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """Runs, their merges, the delta and promotion to a BitMap of one's own never lose or invent a
    doc: every lookup, membership and prefix listing equals a plain dict of sets (tiny thresholds so
    that every path runs many times)."""
    import random

    from node.search import accel_postings
    from node.search.accel_postings import Postings

    monkeypatch.setattr(accel_postings, "SMALL", 3)
    monkeypatch.setattr(accel_postings, "FLUSH_TOKENS", 5)
    rng = random.Random(seed)
    words = [f"{a}{b}" for a in ("kry", "krü", "sec", "z", "é") for b in ("", "a", "ab", "b", "ü", "1", "22")]
    postings, reference = Postings(), {}
    doc = 0
    for _ in range(60):
        batch: dict[str, list[int]] = {}
        for _ in range(rng.randint(1, 6)):
            doc += 1
            for word in rng.sample(words, rng.randint(1, 4)):
                batch.setdefault(word, []).append(doc)
                reference.setdefault(word, set()).add(doc)
        postings.add(batch)
        if rng.random() < 0.1:
            postings.optimize()
        probe = rng.choice(words)
        assert (probe in postings) == (probe in reference)
        assert set(postings.get(probe, BitMap())) == reference.get(probe, set())
        prefix = rng.choice(["kr", "krü", "s", "é", "", "zz", "k"])
        expected = sorted(w for w in reference if w.startswith(prefix))
        assert postings.prefixed(prefix, 4) == expected[:4]
        listed = postings.prefixed(prefix, 1000)
        chosen = sorted(rng.sample(listed, min(len(listed), 5))) + ["zzz-absent"]
        assert set(postings.union_of(chosen)) == set().union(*(reference.get(w, set()) for w in chosen))
    assert postings.runs and postings.big  # both kinds were exercised
    assert {word: set(bitmap) for word, bitmap in postings.items()} == reference
    assert "missing" not in postings and postings.get("missing") is None


def test_rare_tokens_take_no_python_object_each() -> None:
    """Singletons (identifiers, addresses) end in one run of arrays, not one BitMap per token."""
    from node.search.accel_postings import Postings

    postings = Postings()
    postings.add({f"id{n:06d}": [n] for n in range(1, 20_001)})
    postings.optimize()
    assert not postings.big and not postings.delta and len(postings.runs) == 1
    assert postings.nbytes() <= 20_000 * 20  # 8 B of token + 12 B of offsets and doc id
    assert postings["id012345"] == BitMap([12345]) and postings.prefixed("id0199", 3) == [
        "id019900", "id019901", "id019902"]
