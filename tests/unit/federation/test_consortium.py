"""The consortium builder's algorithm (DESIGN §16): planted cases and properties."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.consortium import (
    Candidate,
    ConsortiumError,
    RequiredTag,
    Requirements,
    Result,
    propose,
)

A, B, C = (
    RequiredTag("subdomain", "cry.10"),
    RequiredTag("sector", "sec.energy"),
    RequiredTag("technology", "tech.big-data"),
)
ABC = (A, B, C)


def cand(
    cid: str,
    country: str,
    *tags: str,
    sme: bool = False,
    evidence: tuple[str, ...] = (),
    related: tuple[str, ...] = (),
) -> Candidate:
    return Candidate(cid, country, cid.upper(), sme, frozenset(tags), frozenset(evidence), frozenset(related))


def ids(result: Result, n: int = 0) -> set[str]:
    return {m.id for m in result.consortia[n].members}


def test_the_only_three_country_cover_is_found_first_despite_the_greedy_trap() -> None:
    """``x`` covers two tags at once, but the only holder of the third is in the same country:
    most-tags-first greedy takes ``x`` and misses; rarest-first finds {a, b, y}."""
    pool = [
        cand("x", "DE", "cry.10", "sec.energy"),
        cand("y", "DE", "tech.big-data"),
        cand("a", "FR", "cry.10"),
        cand("b", "IT", "sec.energy"),
    ]
    result = propose(Requirements(ABC, min_countries=3, size=3), pool)
    first = result.consortia[0]
    assert ids(result) == {"a", "b", "y"}
    assert first.missing == () and first.unmet == ()
    assert first.covers == ("cry.10", "sec.energy", "tech.big-data")
    assert first.countries == ("DE", "FR", "IT")
    assert result.missing == ()
    # every other proposal misses something, and proposals differ by at least one member
    assert all(p.missing for p in result.consortia[1:])
    assert len({frozenset(m.id for m in p.members) for p in result.consortia}) == len(result.consortia)


def test_each_member_says_what_it_brings() -> None:
    pool = [
        cand("a", "FR", "cry.10"),
        cand("b", "IT", "sec.energy", evidence=("tech.big-data",)),
        cand("c", "PL", "tech.big-data"),
    ]
    first = propose(Requirements(ABC, min_countries=3, size=3), pool).consortia[0]
    brings = {m.id: (m.covers, m.evidence) for m in first.members}
    assert brings["a"] == (("cry.10",), ())
    assert brings["c"] == (("tech.big-data",), ())
    assert brings["b"] == (("sec.energy", "tech.big-data"), ("tech.big-data",))


def test_exact_tags_rank_above_domain_and_description_evidence() -> None:
    exact, domain, text = (
        cand("e", "DE", "cry.10"),
        cand("d", "DE", related=("cry.10",)),
        cand("t", "DE", evidence=("cry.10",)),
    )
    result = propose(Requirements((A,), min_countries=1, size=1, k=3), [text, domain, exact])
    assert [p.members[0].id for p in result.consortia] == ["e", "t"]  # the domain alone covers nothing
    assert [p.score for p in result.consortia] == [3.0, 0.5]
    assert result.consortia[0].members[0].score > result.consortia[1].members[0].score


def test_sme_constraint_holds_when_an_sme_exists() -> None:
    pool = [
        cand("a", "FR", "cry.10", "sec.energy", "tech.big-data"),
        cand("b", "IT", "cry.10"),
        cand("c", "PL", "sec.energy"),
        cand("s", "ES", sme=True),
    ]
    result = propose(Requirements(ABC, min_countries=3, size=3, sme=True, k=5), pool)
    for proposal in result.consortia:
        assert any(m.sme for m in proposal.members), proposal
        assert len(proposal.members) <= 3
    assert "s" in ids(result) and result.consortia[0].unmet == ()


def test_sme_impossible_is_reported_not_failed() -> None:
    pool = [cand("a", "FR", "cry.10"), cand("b", "IT", "sec.energy"), cand("c", "PL", "tech.big-data")]
    result = propose(Requirements(ABC, min_countries=3, size=3, sme=True), pool)
    assert result.consortia and result.consortia[0].unmet == ("sme",)
    assert result.consortia[0].missing == ()


def test_excluded_ids_are_never_proposed() -> None:
    pool = [
        cand("a", "FR", "cry.10", "sec.energy", "tech.big-data"),
        cand("b", "IT", "cry.10"),
        cand("c", "PL", "sec.energy"),
        cand("d", "DE", "tech.big-data"),
    ]
    result = propose(
        Requirements(ABC, min_countries=3, size=3, exclude=frozenset({"a", "nobody"}), k=10), pool
    )
    assert all("a" not in {m.id for m in p.members} for p in result.consortia)
    assert ids(result) == {"b", "c", "d"}


def test_an_impossible_request_says_what_is_missing() -> None:
    pool = [cand("a", "FR", "cry.10"), cand("b", "FR", "sec.energy")]
    result = propose(Requirements(ABC, min_countries=3, size=5), pool)
    assert result.missing == ("tech.big-data",)
    first = result.consortia[0]
    assert first.missing == ("tech.big-data",) and "min_countries" in first.unmet
    assert propose(Requirements(ABC), []) == Result((), ("cry.10", "sec.energy", "tech.big-data"))


def test_no_country_twice_unless_fewer_countries_than_size() -> None:
    pool = [
        cand(f"{c}{i}", c, t)
        for i, t in enumerate(("cry.10", "sec.energy", "tech.big-data"))
        for c in ("DE", "FR")
    ]
    # two countries for a size of 3: a repeat is allowed, once both countries are in
    result = propose(Requirements(ABC, min_countries=2, size=3), pool)
    assert result.consortia[0].missing == ()
    assert result.consortia[0].countries == ("DE", "FR")
    # five countries for a size of 3: never a repeat
    pool += [cand("x", "IT", "cry.10"), cand("y", "PL", "sec.energy"), cand("z", "ES")]
    for proposal in propose(Requirements(ABC, min_countries=2, size=3, k=10), pool).consortia:
        assert len(proposal.countries) == len(proposal.members)


def test_bounds_are_checked() -> None:
    for bad in (
        Requirements(()),
        Requirements(ABC, size=11),
        Requirements(ABC, min_countries=6, size=5),
        Requirements(ABC, k=0),
        Requirements((RequiredTag("role", "ecsf.ciso"),)),
    ):
        with pytest.raises(ConsortiumError):
            propose(bad, [])


# -- properties -------------------------------------------------------------------------------------

TAGS = (A, B, C, RequiredTag("domain", "nds"))
COUNTRIES = ("DE", "FR", "IT", "PL", "ES")

candidate = st.builds(
    Candidate,
    id=st.sampled_from([f"o{i}" for i in range(14)]),
    country=st.sampled_from(COUNTRIES),
    title=st.just(""),
    sme=st.booleans(),
    tags=st.frozensets(st.sampled_from([t.value for t in TAGS] + ["other"])),
    evidence=st.frozensets(st.sampled_from([t.value for t in TAGS])),
    related=st.frozensets(st.sampled_from(["cry.10"])),
)
candidates = st.lists(candidate, max_size=14)


@st.composite
def requests(draw: st.DrawFn) -> Requirements:
    size = draw(st.integers(1, 5))
    return Requirements(
        tags=tuple(draw(st.lists(st.sampled_from(TAGS), min_size=1, max_size=4, unique=True))),
        min_countries=draw(st.integers(1, size)),
        size=size,
        sme=draw(st.booleans()),
        exclude=frozenset(draw(st.lists(st.sampled_from([f"o{i}" for i in range(14)]), max_size=3))),
        k=draw(st.integers(1, 4)),
    )


def covers_of(c: Candidate, wanted: set[str]) -> set[str]:
    return (set(c.tags) | set(c.evidence)) & wanted


@settings(max_examples=300, deadline=None)
@given(req=requests(), pool=candidates)
def test_proposals_keep_every_rule(req: Requirements, pool: list[Candidate]) -> None:
    result = propose(req, pool)
    wanted = [t.value for t in req.tags]
    first: dict[str, Candidate] = {}
    for c in pool:
        first.setdefault(c.id, c)
    usable = {cid: c for cid, c in first.items() if cid not in req.exclude}
    countries_with_candidates = {c.country for c in usable.values()}
    coverable = set().union(*(covers_of(c, set(wanted)) for c in usable.values())) if usable else set()
    assert result.missing == tuple(t for t in wanted if t not in coverable)
    assert len(result.consortia) <= req.k
    seen = set()
    for p in result.consortia:
        members = [m.id for m in p.members]
        assert 1 <= len(members) <= req.size and len(set(members)) == len(members)
        assert set(members) <= set(usable)
        assert frozenset(members) not in seen
        seen.add(frozenset(members))
        for m in p.members:
            source = usable[m.id]
            assert m.country == source.country and m.sme == source.sme
            assert set(m.covers) == covers_of(source, set(wanted))
            assert set(m.evidence) == (set(source.evidence) - set(source.tags)) & set(wanted)
        covered = set().union(*(set(m.covers) for m in p.members))
        assert covered, "a proposal brings at least one required tag"
        assert set(p.covers) == covered and set(p.missing) == set(wanted) - covered
        assert list(p.covers) == [t for t in wanted if t in covered]
        assert set(result.missing) <= set(p.missing)
        assert p.countries == tuple(sorted({m.country for m in p.members}))
        if len(p.countries) < len(p.members):  # a country twice: only when all are in and too few
            assert len(countries_with_candidates) < req.size
            assert set(p.countries) == countries_with_candidates
        assert ("min_countries" in p.unmet) == (len(p.countries) < req.min_countries)
        assert ("sme" in p.unmet) == (req.sme and not any(m.sme for m in p.members))
    for p in result.consortia:  # none beaten on both counts by another
        assert not any(
            set(q.missing) <= set(p.missing) and set(q.unmet) < set(p.unmet) for q in result.consortia
        )
    keys = [(len(p.missing), len(p.unmet), -p.score) for p in result.consortia]
    assert keys == sorted(keys)


@settings(max_examples=300, deadline=None)
@given(req=requests(), pool=st.lists(candidate, max_size=6))
def test_small_pools_get_the_best_team_there_is(req: Requirements, pool: list[Candidate]) -> None:
    """Whenever an allowed team covers every tag and meets the constraints, the first proposal does."""
    wanted = {t.value for t in req.tags}
    first: dict[str, Candidate] = {}
    for c in pool:
        first.setdefault(c.id, c)
    usable = [c for cid, c in first.items() if cid not in req.exclude]
    exists = any(
        set().union(*(covers_of(c, wanted) for c in team)) == wanted
        and len({c.country for c in team}) == len(team)
        and len(team) >= req.min_countries
        and (not req.sme or any(c.sme for c in team))
        for n in range(1, req.size + 1)
        for team in itertools.combinations(usable, n)
    )
    result = propose(req, usable)
    if exists:
        assert result.consortia and result.consortia[0].missing == () and result.consortia[0].unmet == ()


def test_same_input_same_answer() -> None:
    pool = [
        cand(f"o{i}", COUNTRIES[i % 5], *(t.value for t in TAGS[: i % 4 + 1]), sme=i % 3 == 0)
        for i in range(30)
    ]
    req = Requirements(TAGS, k=5)
    assert propose(req, pool) == propose(req, list(reversed(pool)))
