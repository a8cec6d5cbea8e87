"""The accelerator's shortcuts give the answers of its exhaustive paths: facets counted from the
docs' tag ids (directly or as a complement of the visible docs) equal the bitmap counts; top-k
from the title hits or from the newest-docs levels equals top-k over every match."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest

from node.search import SearchQuery, accel, accel_index, accel_query, backend_for
from node.search.sql import SqlSearchBackend, validate

from .conftest import make_doc

ALL = frozenset({"public", "network", "national"})
WORDS = ["grid", "energy", "secure", "cloud", "quantum", "post", "risk", "data", "lab", "audit"]
QUERIES: list[tuple[str, dict[str, tuple[str, ...]]]] = [
    ("", {}),
    ("", {"country": ("DE",)}),
    ("", {"domain": ("cry",), "sector": ("sec.energy",)}),
    ("grid", {}),
    ("grid energy", {"country": ("DE",)}),
    ("qua", {}),
    ("risk d", {"domain": ("net",)}),
    ("secure", {"sector": ("sec.energy", "sec.health")}),
    ('"post quantum"', {}),
]


def corpus(count: int, seed: int) -> list[Any]:
    rng = random.Random(seed)
    weights = [1.0 / (rank + 1) for rank in range(len(WORDS))]
    return [
        make_doc(
            n,
            title=" ".join(rng.choices(WORDS, weights=weights, k=rng.randint(1, 4))),
            text=" ".join(rng.choices(WORDS, weights=weights, k=rng.randint(3, 15))),
            origin=rng.choice(["DE", "FR", "AT"]),
            type=rng.choice(["organisation", "expert", "project"]),
            visibility=rng.choice(["public", "public", "network", "national"]),
            tags={
                "domain": rng.sample(["cry", "net", "aac"], rng.randint(1, 2)),
                "sector": rng.sample(["sec.energy", "sec.health"], rng.randint(0, 2)),
            },
        )
        for n in range(1, count + 1)
    ]


@pytest.fixture
async def loaded(engine: tuple[Any, Any]) -> tuple[SqlSearchBackend, SqlSearchBackend, Any, list[Any]]:
    _, conn = engine
    sql = backend_for(conn.capabilities.dialect, accelerated=False)
    fast = backend_for(conn.capabilities.dialect, accelerated=True)
    assert isinstance(sql, SqlSearchBackend) and isinstance(fast, SqlSearchBackend)
    docs = corpus(600, seed=11)
    await sql.upsert(conn, docs)
    # Deletes and replacements: the per-visibility counts and tag ids follow them.
    await sql.delete(conn, [docs[3].id, docs[50].id, docs[51].id])
    await sql.upsert(
        conn, [make_doc(10, title="grid energy", visibility="network", tags={"domain": ["net"]})]
    )
    return sql, fast, conn, docs


async def ask(
    accelerator: accel.Accelerator,
    backend: Any,
    conn: Any,
    q: str,
    filters: dict[str, tuple[str, ...]],
    visibilities: frozenset[str] = ALL,
    limit: int = 7,
    cursor: str | None = None,
) -> Any:
    query = SearchQuery(q=q, filters=filters, visibilities=visibilities, limit=limit, cursor=cursor)
    plan, offset = validate(query)
    result = await accelerator.search(conn, backend, query, plan, offset)
    assert result is not None
    return result


def shape(result: Any) -> Any:
    return result.total, result.facets, [(hit.id, hit.score) for hit in result.hits]


@pytest.mark.parametrize("search_mode", ["sql"])
@pytest.mark.parametrize("visibilities", [ALL, frozenset({"public", "network"}), frozenset({"public"})])
async def test_facets_from_tag_ids_equal_bitmap_counts(
    loaded: Any, monkeypatch: pytest.MonkeyPatch, visibilities: frozenset[str]
) -> None:
    sql, fast, conn, _ = loaded
    accelerator = accel.Accelerator()
    monkeypatch.setattr(accel_query, "VERIFY_ALL", 10)  # the sampled phrase estimate scales counts too
    for q, filters in QUERIES:
        answers = []
        for gather_max in (0, 10**9, 150):  # bitmaps only; tag ids only; mixed
            monkeypatch.setattr(accel_query, "FACET_GATHER_MIN", gather_max)
            monkeypatch.setattr(accel_query, "FACET_GATHER_SHARE", 0.0)
            answers.append(shape(await ask(accelerator, fast, conn, q, filters, visibilities)))
        assert answers[0] == answers[1] == answers[2], (q, filters)
        if not q.startswith('"'):
            expected = await sql.search(conn, SearchQuery(q=q, filters=filters, visibilities=visibilities))
            assert answers[0][:2] == (expected.total, expected.facets), (q, filters)


@pytest.mark.parametrize("search_mode", ["sql"])
async def test_complement_counts_follow_writes(loaded: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sql, fast, conn, docs = loaded
    accelerator = accel.Accelerator()
    monkeypatch.setattr(accel_query, "FACET_GATHER_MIN", 10**9)
    await ask(accelerator, fast, conn, "", {})
    # Applied by catch-up (Index.add / Index.remove), not by a rebuild.
    index = accelerator.index
    await sql.delete(conn, [doc.id for doc in docs[100:160]])
    await sql.upsert(conn, [make_doc(700 + n, visibility="national") for n in range(30)])
    for q, filters in QUERIES[:4]:
        got = await ask(accelerator, fast, conn, q, filters)
        expected = await sql.search(conn, SearchQuery(q=q, filters=filters, visibilities=ALL))
        assert (got.total, got.facets) == (expected.total, expected.facets), (q, filters)
    assert accelerator.index is index


@pytest.mark.parametrize("search_mode", ["sql"])
async def test_narrowed_top_k_equals_exhaustive_top_k(loaded: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sql, fast, conn, _ = loaded
    monkeypatch.setattr(accel_index, "RECENT_LEVELS", (8, 40, 150))
    accelerator = accel.Accelerator()
    await ask(accelerator, fast, conn, "", {})
    assert accelerator.index is not None and len(accelerator.index.recent) == 3
    # Newer docs added after the build join the levels they qualify for.
    await sql.upsert(conn, [make_doc(800 + n, title="grid") for n in range(12)])
    # Title hits in very long titles score below body-only hits in short bodies: the bound must
    # send "zephyr" to the exhaustive path.
    filler = " ".join(WORDS * 8)
    await sql.upsert(conn, [make_doc(900 + n, title=f"zephyr {filler}") for n in range(10)])
    await sql.upsert(conn, [make_doc(920 + n, title="lab", text="zephyr") for n in range(30)])
    narrowed: list[int] = []
    original = accel._Query.top

    def spy(self: Any, matches: Any, wanted: int) -> Any:
        narrowed.append(len(matches))
        return original(self, matches, wanted)

    monkeypatch.setattr(accel._Query, "top", spy)
    queries: list[tuple[str, dict[str, tuple[str, ...]]]] = [
        *QUERIES,
        ("grid data", {}),
        ("g", {}),
        ("energy", {"type": ("organisation",)}),
        ("zephyr", {}),
    ]
    for q, filters in queries:
        for limit in (1, 7, 30):
            pages = []
            for narrow_min in (10**9, 0):  # exhaustive, then narrowed whenever possible
                monkeypatch.setattr(accel_query, "NARROW_MIN", narrow_min)
                narrowed.clear()
                first = await ask(accelerator, fast, conn, q, filters, limit=limit)
                cursor = first.next_cursor
                second = (
                    await ask(accelerator, fast, conn, q, filters, limit=limit, cursor=cursor)
                    if cursor
                    else None
                )
                pages.append((shape(first), second and shape(second)))
            assert pages[0] == pages[1], (q, filters, limit)
            if q in ("", "grid") and not filters and limit == 7:  # the shortcuts were taken
                assert min(narrowed[-2:]) < first.total, q


@pytest.mark.parametrize("search_mode", ["sql"])
async def test_phrase_scan_pages_equal_the_exactly_verified_ranking(
    loaded: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, fast, conn, _ = loaded
    accelerator = accel.Accelerator()
    scanned: list[int] = []
    original = accel._Query.scan_phrases

    async def spy(self: Any, candidates: Any, wanted: int, share: float) -> Any:
        scanned.append(wanted)
        return await original(self, candidates, wanted, share)

    monkeypatch.setattr(accel._Query, "scan_phrases", spy)
    for phrase in ('"post quantum"', '"grid energy"', '"data lab"', '"risk audit"', '"cloud d'):
        for limit in (1, 5, 40):
            pages = []
            for verify_all in (10**9, 10):  # exact; sampled estimate + pages verified in rank order
                monkeypatch.setattr(accel_query, "VERIFY_ALL", verify_all)
                first = await ask(accelerator, fast, conn, phrase, {}, limit=limit)
                hits = [(hit.id, hit.score) for hit in first.hits]
                if first.next_cursor:
                    second = await ask(
                        accelerator, fast, conn, phrase, {}, limit=limit, cursor=first.next_cursor
                    )
                    hits += [(hit.id, hit.score) for hit in second.hits]
                pages.append(hits)
            shared = min(len(pages[0]), len(pages[1]))
            assert pages[0][:limit] == pages[1][:limit] and pages[0][:shared] == pages[1][:shared], (
                phrase,
                limit,
            )
    assert scanned  # the scan path ran


@pytest.mark.parametrize("search_mode", ["sql"])
@pytest.mark.parametrize("restricted", [False, True])
async def test_phrases_verified_in_sqlite_equal_the_python_verification(loaded: Any, restricted: bool) -> None:
    """SQLite verifies phrases with ``instr`` in the database; every doc's verdict must be the one the
    Python path (reading the folded text) gives — phrases at a field's start and end, prefixes, the
    restricted part only for restricted queries."""
    _, fast, conn, _ = loaded
    if fast.dialect != "sqlite":
        pytest.skip("the in-database verification is SQLite's")
    extra = [
        replace(make_doc(901, title="post quantum", text="nothing here"), restricted="secret grid energy"),
        replace(make_doc(902, title="lab", text="grid energy"), restricted="post quantum"),
        make_doc(903, title="quantum post", text="cloud data labs"),
    ]
    await fast.upsert(conn, extra)
    accelerator = accel.Accelerator()
    await ask(accelerator, fast, conn, "grid", {})
    index = accelerator.index
    assert index is not None
    found: dict[str, int] = {}
    for q in ('"post quantum"', '"grid energy"', '"data lab"', 'cloud-data-la', '"quantum post" "cloud data"',
              '"secret grid"'):
        plan, _ = validate(SearchQuery(q=q, visibilities=ALL, restricted=restricted))
        docs_all = list(index.live)
        verdicts = []
        for path in ("_verify_in_sqlite", "_verify_in_python"):
            query = accel_query._Query(index, conn, fast, plan)
            await getattr(query, path)(docs_all)
            verdicts.append(query.verified)
        assert verdicts[0] == verdicts[1], q
        assert set(verdicts[0]) == set(docs_all)
        found[q] = sum(verdicts[0].values())
    assert found['"post quantum"'] > 1 and found["cloud-data-la"] >= 1
    assert found['"secret grid"'] == (1 if restricted else 0)
    hits = await ask(accelerator, fast, conn, '"secret grid"', {})
    assert hits.total == 0  # only the restricted part has it: anonymous-style queries miss it


@pytest.mark.parametrize("seed", range(8))
def test_best_of_many_ties_equals_a_full_lexicographic_sort(seed: int) -> None:
    """Ranking picks the top entries tie by tie (records sharing their issued_at second, equal
    scores); the chosen set, once ordered, must be the head of a full sort."""
    import numpy as np

    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 3000))
    docs = np.sort(rng.choice(10 * size, size=size, replace=False)).astype(np.uint32)
    issued = rng.choice(np.array([0, 1, 2, 3, 3, 3, 3, 3]), size=size).astype(np.int64) + 20260101000000
    scores = rng.choice(np.array([0.0, 1.5, 2.25], dtype=np.float32), size=size)
    for keys in ((scores, issued, docs), (issued, docs)):
        full = np.lexsort(tuple(-k.astype(np.float64) for k in reversed(keys)))
        for wanted in (0, 1, 7, 20, size // 2, size, size + 5):
            chosen = accel_query._best(keys, np.arange(size), wanted)
            assert len(chosen) == min(wanted, size)
            order = chosen[np.lexsort(tuple(-k[chosen].astype(np.float64) for k in reversed(keys)))]
            assert order.tolist() == full[:wanted].tolist()


def test_regression_best_takes_the_greatest_doc_numbers_in_any_order() -> None:
    """``_best`` took the last positions as the greatest doc numbers: true when the doc numbers come from
    a bitmap (ascending), not when a caller's order differs — a live search without words then repeated
    records across pages (tests/e2e/test_search_federated.py). Against a full lexicographic sort, with
    ties on the issue time and doc numbers in shuffled order."""
    import numpy as np

    from node.search.accel_query import _best

    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(1, 60))
        issued = rng.integers(0, 4, n).astype(np.int64)  # many ties
        docs = rng.permutation(10_000)[:n].astype(np.int64)  # unique, not ascending
        wanted = int(rng.integers(1, n + 1))
        got = set(docs[_best((issued, docs), np.arange(n), wanted)].tolist())
        order = np.lexsort((-docs, -issued))  # newest first, then highest doc number
        assert got == set(docs[order[:wanted]].tolist())
