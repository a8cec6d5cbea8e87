"""The consortium builder's algorithm (DESIGN §16): candidates in, proposals out. No I/O.

A coordinator asks for partners covering a call's topics (required vocabulary tags) from at least
``min_countries`` countries, at most ``size`` members, an SME when asked. The service hands this
module the organisations the reader may see (``node/services/consortium.py``); this module ranks
them and proposes up to ``k`` consortia that differ by at least one member.

**What a candidate brings.** For each required tag, the strongest of:

- the tag itself (*exact*): weight by specificity — sub-domain 3 > domain 2 > sector/technology 1
  (a required domain is held when the organisation holds it or one of its sub-domains);
- *description evidence*: the tag's label occurs in the text the reader may see, without the tag
  (weight 0.5; it covers the tag, but any exact holder is preferred);
- for a required sub-domain only, its *domain* (weight 0.5, ranking only: it does not cover).

A candidate's score is the sum over required tags; a proposal's score is, per required tag, the
best weight among its members, summed (how well the team covers the call).

**Search.** Greedy set cover, rarest tag first: while some tag is uncovered, take the tag the
fewest candidates cover and add the candidate covering it that adds the most (new tags, then new
exact tags, then a new country, then score). Rarest-first is what avoids the classic trap of taking
the candidate that covers most tags when it blocks the only holder of a rare tag (same country).
Then the constraints: members from new countries until ``min_countries``, an SME when asked (the
last free slots are reserved for them, so they are never crowded out: one run counting a slot
per open constraint, one counting a single slot for both), then upgrades of tags
covered by evidence only. No country twice unless fewer than ``size`` countries have candidates,
and then only once every one of them is in.

A pool of at most ``EXACT_POOL`` candidates (after pruning) is also searched exhaustively, so
small requests get the best team there is.

**Diversity.** Each proposal found spawns variants that ban one of its members (weakest first);
runs prefer members no earlier proposal used. Distinct member sets are kept (one that another
beats — no more missing tags, fewer unmet constraints — is dropped), ordered by fewest missing
tags, then fewest unmet constraints, then score, then fewer members, then discovery order; the
first ``k`` are returned. The number of runs is bounded, so the cost is bounded whatever ``k``.

Every result is a function of its inputs only (ties broken by id): the same candidates give the
same proposals.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

#: Weight of an exact match, by the dimension of the required tag.
TAG_WEIGHTS: dict[str, float] = {"subdomain": 3.0, "domain": 2.0, "sector": 1.0, "technology": 1.0}
#: Weight of description evidence (the label in the visible text, the tag absent).
EVIDENCE_WEIGHT = 0.5
#: Weight of holding the domain of a required sub-domain (ranks, does not cover).
RELATED_WEIGHT = 0.5
#: Dimensions a required tag may have.
DIMENSIONS: tuple[str, ...] = tuple(TAG_WEIGHTS)
MAX_SIZE = 10
MAX_K = 10
#: Per country, a candidate dominated (covers no more, scores no higher, no SME edge) by this many
#: kept ones is dropped before the search: they are interchangeable for every proposal.
KEEP_DOMINATED = 3
#: Greedy runs per request at most (the first, then variants).
MAX_RUNS = 40
#: A pool this small (after pruning) is searched exhaustively: every allowed team is tried.
EXACT_POOL = 10


class ConsortiumError(ValueError):
    """A request the builder cannot take (the service checks parameters first; this is the guard)."""


@dataclass(frozen=True)
class RequiredTag:
    """One tag the call needs: its dimension (``subdomain``, ``domain``, ``sector``, ``technology``)
    and its vocabulary id (unique across vocabularies)."""

    dim: str
    value: str


@dataclass(frozen=True)
class Requirements:
    """What the coordinator asks (DESIGN §16 defaults)."""

    tags: tuple[RequiredTag, ...]
    min_countries: int = 3
    size: int = 5
    sme: bool = False
    exclude: frozenset[str] = frozenset()
    k: int = 3

    def check(self) -> None:
        """Raises ConsortiumError for a request outside §16's bounds."""
        if not self.tags:
            raise ConsortiumError("at least one required tag")
        if any(t.dim not in TAG_WEIGHTS for t in self.tags):
            raise ConsortiumError("a required tag of an unknown dimension")
        if not 1 <= self.size <= MAX_SIZE:
            raise ConsortiumError(f"size must be from 1 to {MAX_SIZE}")
        if not 1 <= self.min_countries <= self.size:
            raise ConsortiumError("min_countries must be from 1 to size")
        if not 1 <= self.k <= MAX_K:
            raise ConsortiumError(f"k must be from 1 to {MAX_K}")


@dataclass(frozen=True)
class Candidate:
    """An organisation the reader may see, with what of the request it holds.

    ``tags``: required tag ids it holds (a domain also when it holds one of its sub-domains);
    ``evidence``: required tag ids its visible text mentions; ``related``: required sub-domain ids
    whose domain it holds. Ids outside the request are ignored.
    """

    id: str
    country: str
    title: str = ""
    sme: bool = False
    tags: frozenset[str] = frozenset()
    evidence: frozenset[str] = frozenset()
    related: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Member:
    """A proposed member: what it brings (``covers``, in the request's order), and which of those
    rest on description evidence only (``evidence``)."""

    id: str
    country: str
    title: str
    covers: tuple[str, ...]
    evidence: tuple[str, ...]
    sme: bool
    score: float


@dataclass(frozen=True)
class Proposal:
    """One consortium: members in the order chosen, the tags covered and missing (request order),
    its countries (sorted), its score, and the constraints it could not meet (``min_countries``,
    ``sme``)."""

    members: tuple[Member, ...]
    covers: tuple[str, ...]
    missing: tuple[str, ...]
    countries: tuple[str, ...]
    score: float
    unmet: tuple[str, ...] = ()


@dataclass(frozen=True)
class Result:
    """Up to ``k`` proposals, best first, and the required tags no candidate covers."""

    consortia: tuple[Proposal, ...]
    missing: tuple[str, ...]


@dataclass
class _Cand:
    index: int
    source: Candidate
    strong: int  # bit i: holds required tag i
    weak: int  # bit i: evidence only
    score: float
    weights: tuple[float, ...] = field(default=())  # per required tag (0: brings nothing)

    @property
    def cover(self) -> int:
        return self.strong | self.weak


def _bits(mask: int, count: int) -> list[int]:
    return [i for i in range(count) if mask >> i & 1]


def _prepare(req: Requirements, candidates: Iterable[Candidate]) -> tuple[list[str], list[_Cand]]:
    required: list[RequiredTag] = list({t.value: t for t in req.tags}.values())
    ids = [t.value for t in required]
    pool: list[_Cand] = []
    seen: set[str] = set()
    for cand in candidates:
        if cand.id in req.exclude or cand.id in seen:
            continue
        seen.add(cand.id)
        strong = weak = 0
        weights: list[float] = []
        for i, tag in enumerate(required):
            if tag.value in cand.tags:
                strong |= 1 << i
                weights.append(TAG_WEIGHTS[tag.dim])
            elif tag.value in cand.evidence:
                weak |= 1 << i
                weights.append(EVIDENCE_WEIGHT)
            elif tag.dim == "subdomain" and tag.value in cand.related:
                weights.append(RELATED_WEIGHT)
            else:
                weights.append(0.0)
        pool.append(_Cand(0, cand, strong, weak, round(sum(weights), 3), tuple(weights)))
    pool.sort(key=lambda c: (-c.score, c.source.id))
    pool = _prune(pool)
    for i, c in enumerate(pool):
        c.index = i
    return ids, pool


def _dominates(a: _Cand, b: _Cand) -> bool:
    return (
        a.strong & b.strong == b.strong
        and a.cover & b.cover == b.cover
        and a.score >= b.score
        and (a.source.sme or not b.source.sme)
    )


def _prune(pool: list[_Cand]) -> list[_Cand]:
    """Drop, per country, candidates that ``KEEP_DOMINATED`` kept ones dominate (``pool`` is best first)."""
    kept: list[_Cand] = []
    by_country: dict[str, list[_Cand]] = {}
    for cand in pool:
        peers = by_country.setdefault(cand.source.country, [])
        if sum(1 for p in peers if _dominates(p, cand)) < KEEP_DOMINATED:
            peers.append(cand)
            kept.append(cand)
    return kept


class _Search:
    """One request's greedy runs over a prepared pool."""

    def __init__(self, req: Requirements, ids: list[str], pool: list[_Cand]) -> None:
        self.req = req
        self.ids = ids
        self.pool = pool
        self.n = len(ids)
        self.coverable = 0
        for c in pool:
            self.coverable |= c.cover
        self.countries = {c.source.country for c in pool}
        # rarest first: how many candidates cover each tag (statically, over the whole pool)
        self.holders: list[list[_Cand]] = [[c for c in pool if c.cover >> i & 1] for i in range(self.n)]
        self.rarity = [len(h) for h in self.holders]

    def run(
        self, banned: frozenset[int], used: frozenset[int], relaxed: bool = False, strict: bool = False
    ) -> list[_Cand]:
        """One greedy run without the ``banned`` candidates, preferring those not ``used`` yet.

        Slots are kept for the open constraints: by default as if a new-country SME could close
        both at once (``max``), ``strict`` one slot each (``sum``: safe when no such SME exists);
        ``relaxed``: none (when keeping them leaves nothing to propose).
        """
        req = self.req
        members: list[_Cand] = []
        chosen: set[int] = set()
        countries: Counter[str] = Counter()
        strong = weak = 0
        repeats_possible = len(self.countries) < req.size
        # constraints nobody can meet are reported (``unmet``), never allowed to block the rest
        min_countries = 1 if relaxed else min(req.min_countries, len(self.countries))
        want_sme = not relaxed and req.sme and any(c.source.sme for c in self.pool if c.index not in banned)

        def allowed(c: _Cand) -> bool:
            if c.index in banned or c.index in chosen:
                return False
            country = c.source.country
            if countries[country] and (not repeats_possible or len(countries) < len(self.countries)):
                return False
            # the last slots are kept for the constraints still open: after this pick, the slots left
            # must hold the countries still needed plus an SME if still needed
            new_country = not countries[country]
            slots_after = req.size - len(members) - 1
            countries_after = max(0, min_countries - len(countries) - int(new_country))
            sme_after = want_sme and not c.source.sme and not any(m.source.sme for m in members)
            if strict:
                return countries_after + int(sme_after) <= slots_after
            return max(countries_after, int(sme_after)) <= slots_after

        def add(c: _Cand) -> None:
            nonlocal strong, weak
            members.append(c)
            chosen.add(c.index)
            countries[c.source.country] += 1
            strong |= c.strong
            weak = (weak | c.weak) & ~strong

        while len(members) < req.size:
            covered = strong | weak
            need_countries = min_countries - len(countries) > 0
            need_sme = want_sme and not any(m.source.sme for m in members)
            pick = self._cover_step(
                self.coverable & ~covered, covered, strong, countries, used, allowed, need_sme
            )
            if pick is None and (need_countries or need_sme):
                pick = self._filler(strong, covered, countries, used, allowed, need_countries, need_sme)
            if pick is None:
                pick = self._cover_step(
                    self.coverable & weak & ~strong, covered, strong, countries, used, allowed, need_sme
                )
            if pick is None:
                break
            add(pick)
        return members

    def _cover_step(
        self,
        wanted: int,
        covered: int,
        strong: int,
        countries: Counter[str],
        used: frozenset[int],
        allowed: Callable[[_Cand], bool],
        need_sme: bool,
    ) -> _Cand | None:
        """The best allowed candidate for the rarest tag of ``wanted`` that some allowed one covers."""
        for i in sorted(_bits(wanted, self.n), key=lambda i: (self.rarity[i], i)):
            best: _Cand | None = None
            best_key: tuple[float, ...] = ()
            for c in self.holders[i]:
                if not allowed(c):
                    continue
                key = (
                    float((c.cover & ~covered).bit_count()),
                    float((c.strong & ~strong).bit_count()),
                    float(need_sme and c.source.sme),
                    float(not countries[c.source.country]),
                    float(c.index not in used),
                    c.score,
                    -float(c.index),
                )
                if best is None or key > best_key:
                    best, best_key = c, key
            if best is not None:
                return best
        return None

    def _filler(
        self,
        strong: int,
        covered: int,
        countries: Counter[str],
        used: frozenset[int],
        allowed: Callable[[_Cand], bool],
        need_countries: bool,
        need_sme: bool,
    ) -> _Cand | None:
        """The best allowed candidate that serves an open constraint (a new country, an SME)."""
        best: _Cand | None = None
        best_key: tuple[float, ...] = ()
        for c in self.pool:
            if not allowed(c):
                continue
            new_country = not countries[c.source.country]
            serves = (need_countries and new_country) or (need_sme and c.source.sme)
            if not serves:
                continue
            key = (
                float(need_sme and c.source.sme) + float(need_countries and new_country),
                float((c.strong & ~strong).bit_count()),
                float((c.cover & ~covered).bit_count()),
                float(c.index not in used),
                c.score,
                -float(c.index),
            )
            if best is None or key > best_key:
                best, best_key = c, key
        return best

    def teams(self) -> Iterable[list[_Cand]]:
        """Every allowed team of the pool (small pools only): at most ``size`` members, no country
        twice unless fewer than ``size`` countries have candidates and every one of them is in."""
        repeats_possible = len(self.countries) < self.req.size
        for n in range(1, min(self.req.size, len(self.pool)) + 1):
            for team in itertools.combinations(self.pool, n):
                countries = {c.source.country for c in team}
                if len(countries) < n and not (repeats_possible and countries == self.countries):
                    continue
                yield list(team)

    def proposal(self, members: Sequence[_Cand]) -> Proposal:
        strong = weak = 0
        for m in members:
            strong |= m.strong
        for m in members:
            weak |= m.weak
        weak &= ~strong
        best = [max((m.weights[i] for m in members if m.cover >> i & 1), default=0.0) for i in range(self.n)]
        countries = sorted({m.source.country for m in members})
        unmet = []
        if len(countries) < self.req.min_countries:
            unmet.append("min_countries")
        if self.req.sme and not any(m.source.sme for m in members):
            unmet.append("sme")
        shown = tuple(
            Member(
                m.source.id,
                m.source.country,
                m.source.title,
                tuple(self.ids[i] for i in _bits(m.cover, self.n)),
                tuple(self.ids[i] for i in _bits(m.weak, self.n)),
                m.source.sme,
                m.score,
            )
            for m in members
        )
        return Proposal(
            shown,
            tuple(self.ids[i] for i in _bits(strong | weak, self.n)),
            tuple(self.ids[i] for i in range(self.n) if not (strong | weak) >> i & 1),
            tuple(countries),
            round(sum(best), 3),
            tuple(unmet),
        )


def _rank(prop: Proposal, found: int) -> tuple[float, ...]:
    """The order of proposals: fewest missing tags, fewest unmet constraints, highest score, fewest
    members, then the order they were found in."""
    return (float(len(prop.missing)), float(len(prop.unmet)), -prop.score, float(len(prop.members)), float(found))


def propose(req: Requirements, candidates: Iterable[Candidate]) -> Result:
    """Rank ``candidates`` against ``req`` and propose up to ``req.k`` distinct consortia.

    Excluded ids and repeated ids (after the first) are ignored. An impossible request is not an
    error: the proposals say what each misses and ``Result.missing`` which tags nobody covers.

    Raises:
        ConsortiumError: ``req`` outside §16's bounds (:meth:`Requirements.check`).
    """
    req.check()
    ids, pool = _prepare(req, candidates)
    search = _Search(req, ids, pool)
    missing = tuple(ids[i] for i in range(len(ids)) if not search.coverable >> i & 1)
    found: list[tuple[tuple[float, ...], Proposal]] = []
    seen: set[frozenset[int]] = set()
    queue: list[tuple[frozenset[int], bool]] = [(frozenset(), False), (frozenset(), True)]
    tried: set[tuple[frozenset[int], bool]] = set()
    used: set[int] = set()
    runs = 0
    while queue and runs < MAX_RUNS and len(found) < max(req.k * 3, req.k + 4):
        banned, strict = queue.pop(0)
        if (banned, strict) in tried:
            continue
        tried.add((banned, strict))
        runs += 1
        members = search.run(banned, frozenset(used), strict=strict)
        if not members:
            continue
        key = frozenset(m.index for m in members)
        if key in seen:
            continue
        seen.add(key)
        used |= key
        prop = search.proposal(members)
        if not prop.covers:  # a team that brings none of the call's topics is no proposal
            continue
        found.append((_rank(prop, len(found)), prop))
        for m in sorted(members, key=lambda m: (m.score, m.index)):
            queue.append((banned | {m.index}, strict))
    if len(pool) <= EXACT_POOL:
        for team in search.teams():
            key = frozenset(m.index for m in team)
            if key not in seen:
                seen.add(key)
                prop = search.proposal(team)
                if prop.covers:
                    found.append((_rank(prop, len(found)), prop))
    if not found:  # the constraints' slots crowded out every tag holder (size 1 and an SME without a tag)
        prop = search.proposal(search.run(frozenset(), frozenset(), relaxed=True))
        if prop.covers:
            found.append(((float(len(prop.missing)), float(len(prop.unmet)), -prop.score, 0.0, 0.0), prop))
    # a proposal another beats on both counts (misses no more tags, meets more constraints) is dropped
    found = [
        (key, p)
        for key, p in found
        if not any(set(q.missing) <= set(p.missing) and set(q.unmet) < set(p.unmet) for _, q in found)
    ]
    found.sort(key=lambda item: item[0])
    return Result(tuple(p for _, p in found[: req.k]), missing)
