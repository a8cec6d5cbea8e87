"""Consortium candidates from the accelerator's bitmaps (``accel_candidates.py``): the very list of
the SQL statement (``candidates.ranked_in_sql``) for the same data and reader, stale tag bits and
excluded origins included, and nothing a reader may not see."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest

from federation.consortium import TAG_WEIGHTS
from node.search import SearchQuery, accel, accel_candidates, candidates
from node.search.accel_index import Index
from node.search.sql import validate

from .conftest import make_doc

GROUP = "group:nordic-cert:FR"
#: The readers' scopes as ``Access.search_scope`` makes them (anonymous, analyst, a node's user with
#: a sharing group), one with an origin left out (as the hub's live merge does), and one that sees
#: nothing.
SCOPES: dict[str, SearchQuery] = {
    "anonymous": SearchQuery(visibilities=frozenset({"public"})),
    "analyst": SearchQuery(visibilities=frozenset({"public", "network"}), restricted=True),
    "node user": SearchQuery(
        visibilities=frozenset({"public", "network", "national", GROUP}), restricted=True
    ),
    "group analyst": SearchQuery(visibilities=frozenset({"public", "network", GROUP}), restricted=True),
    "without DE": SearchQuery(
        visibilities=frozenset({"public", "network"}), exclude_origins=frozenset({"DE"})
    ),
    "nobody": SearchQuery(visibilities=frozenset()),
}
COUNTRIES = ["DE", "FR", "AT", "IT", "PL", "ES"]
VISIBILITIES = ["public", "public", "public", "network", "national", GROUP]
POOL: dict[str, list[str]] = {
    "subdomain": ["cry.10", "cry.01", "net.02"],
    "domain": ["cry", "net", "aac"],
    "sector": ["sec.energy", "sec.health"],
    "technology": ["tech.ai", "tech.big-data"],
    "org_type": ["ctype.industry-sme", "ctype.academic-research"],
}
WEIGHT = TAG_WEIGHTS  # the builder's own weights


def random_doc(rng: random.Random, n: int) -> Any:
    origin, kind = rng.choice(COUNTRIES), rng.choice(["organisation"] * 5 + ["project"])
    return make_doc(
        n, origin=origin, type=kind, visibility=rng.choice(VISIBILITIES), tags=random_tags(rng, origin, kind)
    )


def random_tags(rng: random.Random, origin: str, kind: str) -> dict[str, list[str]]:
    """Random tags of the pool, the record's type as every document has it (``documents.py``)."""
    tags = {dim: rng.sample(values, rng.choice([0, 0, 1, 1, 2])) for dim, values in POOL.items()}
    tags["type"] = [kind]
    # most in their origin's country; some in another, or in two (the SQL takes both: so must the bitmaps)
    tags["country"] = rng.choice([[origin]] * 8 + [[rng.choice(COUNTRIES)], rng.sample(COUNTRIES, 2)])
    return {dim: values for dim, values in tags.items() if values}


def random_request(
    rng: random.Random,
) -> tuple[dict[tuple[str, str], float], list[tuple[str, str]], dict[str, int]]:
    """Weights, wanted tags and cuts as ``node.services.consortium.candidates`` makes them (and, now
    and then, a wanted tag without a weight), the cuts small so that they bite."""
    wanted = [
        (dim, value) for dim in WEIGHT for value in rng.sample(POOL[dim], rng.choice([0, 1, 1, 2]))
    ] or [("sector", "sec.energy")]
    weights = {("domain", "cry"): 0.5} if ("subdomain", "cry.10") in wanted else {}
    weights |= {key: WEIGHT[key[0]] for key in wanted}
    if rng.random() < 0.5:  # sme=true: the SME type, weight 0
        weights[("org_type", "ctype.industry-sme")] = 0.0
        wanted.append(("org_type", "ctype.industry-sme"))
    if rng.random() < 0.2:
        wanted.append(("technology", "tech.unweighted"))
    cuts = {
        "per_country": rng.choice([1, 2, 4]),
        "best": rng.choice([5, 20, 1000]),
        "per_tag": rng.choice([2, 7, 100]),
    }
    return weights, wanted, cuts


@pytest.mark.parametrize("search_mode", ["sql"])
@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_same_list_as_sql_for_every_reader(
    pair: Any, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    sql, fast, conn = pair
    rng = random.Random(seed)
    docs = [random_doc(rng, n) for n in range(1, 301)]
    await sql.upsert(conn, docs)
    assert await fast.warm(conn)
    # Updated and removed records leave stale bits of their old doc numbers in the tag bitmaps.
    await sql.upsert(
        conn,
        [
            replace(
                docs[n],
                visibility=rng.choice(VISIBILITIES),
                tags=random_tags(rng, docs[n].origin, docs[n].type),
            )
            for n in rng.sample(range(300), 60)
        ],
    )
    await sql.delete(conn, [docs[n].id for n in rng.sample(range(300), 30)])

    in_sql = candidates.ranked_in_sql

    async def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("SQL path used")

    monkeypatch.setattr(candidates, "ranked_in_sql", boom)
    nonempty = 0
    for _ in range(12):
        weights, wanted, cuts = random_request(rng)
        for name, scope in SCOPES.items():
            expected = await in_sql(sql, conn, scope, weights, wanted, **cuts)
            got = await candidates.ranked(fast, conn, scope, weights, wanted, **cuts)
            assert got == expected, (name, weights, wanted, cuts)
            nonempty += bool(expected)
    assert nonempty > 30
    index = accel.accelerator_of(conn, fast.dialect).index
    assert index is not None and index.stale >= 60  # the comparison did meet stale bits


@pytest.mark.parametrize("search_mode", ["sql"])
async def test_a_reader_is_never_given_what_it_may_not_see(
    pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hidden organisations of the same country score best: they never take a place, however few."""
    sql, fast, conn = pair
    everything = {"subdomain": ["cry.10"], "sector": ["sec.energy"], "org_type": ["ctype.industry-sme"]}
    docs = [
        make_doc(1, origin="IT", visibility="network", tags=everything),
        make_doc(2, origin="IT", visibility=GROUP, tags=everything),
        make_doc(3, origin="IT", visibility="national", tags=everything),
        make_doc(4, origin="IT", tags={"sector": ["sec.energy"]}),
        make_doc(5, origin="IT", type="project", tags=everything),
    ]
    await sql.upsert(conn, docs)
    assert await fast.warm(conn)

    async def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("SQL path used")

    monkeypatch.setattr(candidates, "ranked_in_sql", boom)
    weights = {
        ("subdomain", "cry.10"): 3.0,
        ("sector", "sec.energy"): 1.0,
        ("org_type", "ctype.industry-sme"): 0.0,
    }

    async def found(name: str, per_country: int, **cuts: int) -> set[str]:
        numbers = await candidates.ranked(
            fast, conn, SCOPES[name], weights, list(weights), per_country, **cuts
        )
        return {f.id for f in await candidates.details(sql, conn, numbers, [])}

    public = docs[3].id
    assert await found("anonymous", 4) == {public}
    assert await found("anonymous", 1, best=1, per_tag=1) == {public}
    assert await found("analyst", 4) == {docs[0].id, public}
    assert await found("group analyst", 4) == {docs[0].id, docs[1].id, public}
    assert await found("node user", 4) == {docs[0].id, docs[1].id, docs[2].id, public}
    assert await found("nobody", 4) == set()


def test_the_pure_computation_on_an_index_without_a_database() -> None:
    """Scores sum the weights of held keys; per (wanted tag, country) the best by score, then doc;
    stale bits of a removed doc and docs of another type never count."""
    index = Index()
    rows = [
        (1, "public", "2026-01-01T00:00:00Z", "", "", "", "DE"),
        (2, "public", "2026-01-01T00:00:00Z", "", "", "", "DE"),
        (3, "public", "2026-01-01T00:00:00Z", "", "", "", "DE"),
        (4, "network", "2026-01-01T00:00:00Z", "", "", "", "FR"),
        (5, "public", "2026-01-01T00:00:00Z", "", "", "", "FR"),
        (6, "public", "2026-01-01T00:00:00Z", "", "", "", "FR"),
    ]
    tags = [(doc, "type", "organisation") for doc in range(1, 6)] + [(6, "type", "project")]
    tags += [(row[0], "country", row[6]) for row in rows]
    tags += [(1, "sector", "sec.energy"), (2, "sector", "sec.energy"), (2, "domain", "cry")]
    tags += [(3, "sector", "sec.energy"), (3, "domain", "cry"), (4, "sector", "sec.energy")]
    tags += [(5, "sector", "sec.energy"), (6, "sector", "sec.energy"), (6, "domain", "cry")]
    index.add(rows, tags, lambda title, body, rest: (title, body, rest))
    index.remove([3])  # its bits stay in the tag bitmaps
    weights = {("sector", "sec.energy"): 1.0, ("domain", "cry"): 0.5}
    wanted = [("sector", "sec.energy")]

    def ranked(visibilities: tuple[str, ...], per_country: int, **kwargs: Any) -> list[int]:
        plan = validate(SearchQuery(visibilities=frozenset(visibilities), **kwargs))[0]
        return accel_candidates.ranked(index, plan, "organisation", weights, wanted, per_country, 1000, 100)

    assert ranked(("public",), 1) == [2, 5]  # DE: 2 (1.5) beats 1 (1.0); FR: 5 (4 is network)
    assert ranked(("public", "network"), 1) == [2, 4]  # FR: a tie, the lower doc
    assert ranked(("public", "network"), 2) == [1, 2, 4, 5]
    assert ranked(("public", "network"), 2, exclude_origins=frozenset({"FR"})) == [1, 2]
    assert ranked((), 2) == []
