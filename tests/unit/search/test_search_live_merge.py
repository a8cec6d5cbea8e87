"""The hub's merged paging (node.services.live): one ranked list per source, one offset per source.

Regression: the hub merged each node's first page into every page and counted the hits it had not
seen on that page into ``total``, so ``total`` changed from page to page (12, then 11) and records
repeated across pages.
"""

from __future__ import annotations

import random

from node.services.live import _add_facets, _Source, merge_page


def ranked(name: str, n: int, rng: random.Random) -> list[dict[str, object]]:
    scores = sorted((round(rng.random(), 2) for _ in range(n)), reverse=True)  # ties on purpose
    return [{"id": f"{name}-{i}", "origin": name, "score": score} for i, score in enumerate(scores)]


def page_through(lists: dict[str, list[dict[str, object]]], limit: int) -> list[str]:
    """Page as the hub does: each source answers ``limit`` hits from its offset."""
    offsets = dict.fromkeys(lists, 0)
    seen: list[str] = []
    while True:
        sources = [_Source(name, offsets[name], len(hits), hits[offsets[name] : offsets[name] + limit])
                   for name, hits in lists.items()]
        seen += [str(hit["id"]) for _, hit in merge_page(sources, limit)]
        offsets = {s.name: s.offset + s.taken for s in sources}
        if all(s.exhausted() for s in sources):
            return seen


def test_paging_the_merge_equals_merging_everything_once() -> None:
    rng = random.Random(7)
    for _ in range(50):
        lists = {name: ranked(name, rng.randrange(0, 30), rng) for name in ("_", "AT", "FR")}
        everything = [_Source(name, 0, len(hits), hits) for name, hits in lists.items()]
        whole = [str(hit["id"]) for _, hit in merge_page(everything, 1000)]
        for limit in (1, 2, 7, 20):
            paged = page_through(lists, limit)
            assert paged == whole  # same order: no duplicates, no gaps, whatever the page size
        assert len(whole) == sum(len(hits) for hits in lists.values())


def test_ties_go_to_the_earlier_source() -> None:
    sources = [_Source("_", 0, 1, [{"id": "a", "score": 1.0}]), _Source("AT", 0, 1, [{"id": "b", "score": 1.0}])]
    assert [hit["id"] for _, hit in merge_page(sources, 2)] == ["a", "b"]


def test_facets_of_a_node_are_added_only_when_well_formed() -> None:
    facets = {"country": {"DE": 2}}
    _add_facets(facets, {"country": {"AT": 1, "DE": True, "FR": -1, "EE": "3"}, "colour": {"red": 1}})
    assert facets == {"country": {"DE": 2, "AT": 1}}
