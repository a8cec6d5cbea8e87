"""Search behaviour, the same on SQLite (FTS5) and PostgreSQL (tsvector): one suite, both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from node.errors import InvalidParameter
from node.search import (
    DIMENSIONS,
    SearchBackend,
    SearchQuery,
    SearchResult,
    backend_for,
    create_search_schema,
    document_from_envelope,
)
from node.search.client import open_client

from .conftest import VOCABULARIES, make_doc

Engine = tuple[SearchBackend, Any]
PUBLIC = frozenset({"public"})
ALL = frozenset({"public", "network", "national"})


async def search(
    engine: Engine, q: str = "", visibilities: frozenset[str] = ALL, **kwargs: Any
) -> SearchResult:
    backend, conn = engine
    filters = {k: tuple(v) for k, v in kwargs.pop("filters", {}).items()}
    return await backend.search(conn, SearchQuery(q=q, filters=filters, visibilities=visibilities, **kwargs))


def titles(result: SearchResult) -> list[str]:
    return [hit.title for hit in result.hits]


@pytest.fixture
async def corpus(engine: Engine) -> Engine:
    backend, conn = engine
    await backend.upsert(
        conn,
        [
            make_doc(
                1,
                title="Sécurité Numérique SAS",
                text="Audit et conseil en sécurité des systèmes.",
                origin="FR",
                tags={"domain": ["aac"], "sector": ["sec.energy"], "org_type": ["ctype.industry-sme"]},
            ),
            make_doc(
                2,
                title="Österreichisches Institut für Kryptografie",
                text="Forschung zu Gittern.",
                origin="AT",
                tags={"domain": ["cry"], "subdomain": ["cry.01"], "org_type": ["ctype.academic-research"]},
            ),
            make_doc(
                3,
                title="Straße der Sicherheit GmbH",
                text="Netzwerksicherheit für Krankenhäuser.",
                tags={"domain": ["net"], "subdomain": ["net.02"], "sector": ["sec.health"]},
            ),
            make_doc(
                4,
                title="Quantum Grid Lab",
                text="Schemes for energy grids.\nPost-quantum cryptography",
                tags={
                    "domain": ["cry"],
                    "subdomain": ["cry.10"],
                    "sector": ["sec.energy"],
                    "technology": ["tech.ai"],
                    "use_case": ["uc.cip"],
                },
            ),
            make_doc(
                5,
                title="Jana Nováková",
                text="Penetration Tester",
                type="expert",
                origin="CZ",
                visibility="network",
                tags={"role": ["ecsf.penetration-tester"], "domain": ["net"]},
            ),
            make_doc(6, title="Internal Registry Entry", text="national only energy", visibility="national"),
        ],
    )
    return engine


# --- text matching -------------------------------------------------------------------------------


async def test_accents_both_ways(corpus: Engine) -> None:
    assert titles(await search(corpus, "securite numerique")) == ["Sécurité Numérique SAS"]
    assert titles(await search(corpus, "SÉCURITÉ")) == ["Sécurité Numérique SAS"]
    assert titles(await search(corpus, "osterreichisches")) == ["Österreichisches Institut für Kryptografie"]
    assert titles(await search(corpus, "Österreichisches")) == ["Österreichisches Institut für Kryptografie"]
    assert titles(await search(corpus, "novakova")) == ["Jana Nováková"]


async def test_sharp_s_and_ss(corpus: Engine) -> None:
    assert titles(await search(corpus, "strasse")) == ["Straße der Sicherheit GmbH"]
    assert titles(await search(corpus, "STRASSE der")) == ["Straße der Sicherheit GmbH"]
    assert titles(await search(corpus, "straße")) == ["Straße der Sicherheit GmbH"]


async def test_prefix_on_the_last_word(corpus: Engine) -> None:
    assert titles(await search(corpus, "kryptog")) == ["Österreichisches Institut für Kryptografie"]
    assert titles(await search(corpus, "institut kryp")) == ["Österreichisches Institut für Kryptografie"]
    # Only the last word is a prefix: "kryp" earlier in q is a whole word, which no record has (too
    # short a query to be read as a question: nothing is left out).
    result = await search(corpus, "kryp institut")
    assert result.total == 0 and result.ignored == ()


async def test_phrase(corpus: Engine) -> None:
    assert titles(await search(corpus, '"energy grids"')) == ["Quantum Grid Lab"]
    assert (await search(corpus, '"grids energy"')).total == 0
    # No phrase across the title/body boundary.
    assert (await search(corpus, '"lab schemes"')).total == 0


async def test_vocabulary_expansion_via_document_labels(engine: Engine) -> None:
    backend, conn = engine
    payload = {
        "legal_name": "Gitter AG",
        "country": "DE",
        "subdomains": ["cry.10"],
        "description": "Nichts weiter.",
    }
    env = {
        "id": "urn:ncc:DE:organisation:1",
        "type": "organisation",
        "origin": "DE",
        "version": 1,
        "issued_at": "2026-01-01T00:00:00Z",
        "visibility": "public",
        "deleted": False,
        "payload": payload,
    }
    doc = document_from_envelope(env, VOCABULARIES)
    assert doc is not None
    await backend.upsert(conn, [doc])
    assert titles(await search(engine, "post-quantum")) == ["Gitter AG"]
    assert titles(await search(engine, "cryptology")) == ["Gitter AG"]
    assert titles(await search(engine, filters={"domain": ["cry"]})) == ["Gitter AG"]


@pytest.mark.parametrize(
    "q",
    [
        '"unterminated',
        "NEAR(",
        "a OR",
        "'; DROP TABLE search_docs; --",
        "*",
        "-",
        "AND",
        "OR NOT",
        "\u200b\ufffd\U0001f600",
        "\x00",
        "col:value",
        "^",
        "(((",
        'x" OR "1"="1',
        "\\",
        "%_",
        "a" * 5000,
    ],
)
async def test_stray_syntax_returns_normally(corpus: Engine, q: str) -> None:
    result = await search(corpus, q)
    assert result.total >= 0
    assert set(result.facets) == set(DIMENSIONS)


async def test_junk_without_words_lists_everything(corpus: Engine) -> None:
    assert (await search(corpus, "*")).total == 6


async def test_title_match_ranks_above_description_only_match(engine: Engine) -> None:
    backend, conn = engine
    await backend.upsert(
        conn,
        [
            make_doc(
                1, title="Alpha Consulting", text="We do grid security and more grid work on every grid."
            ),
            make_doc(2, title="Grid Security Partners", text="Consulting."),
        ],
    )
    result = await search(engine, "grid")
    assert titles(result) == ["Grid Security Partners", "Alpha Consulting"]
    assert result.hits[0].score > result.hits[1].score > 0


# --- listing, filters, facets, visibility ---------------------------------------------------------


async def test_empty_q_lists_everything_visible_newest_first(corpus: Engine) -> None:
    result = await search(corpus, "", visibilities=PUBLIC)
    assert [hit.id[-1] for hit in result.hits] == ["4", "3", "2", "1"]
    assert result.total == 4
    assert all(hit.score == 0 for hit in result.hits)
    assert titles(await search(corpus, "   ", filters={"country": ["FR"]})) == ["Sécurité Numérique SAS"]


async def test_visibility_inside_the_query(corpus: Engine) -> None:
    assert (await search(corpus, "energy", visibilities=PUBLIC)).total == 1
    assert (await search(corpus, "energy", visibilities=ALL)).total == 2
    network = await search(corpus, "", visibilities=frozenset({"public", "network"}))
    assert network.total == 5 and "Internal Registry Entry" not in titles(network)
    nothing = await search(corpus, "", visibilities=frozenset())
    assert nothing.total == 0 and nothing.hits == []
    # Facets never count what the reader may not see.
    assert (await search(corpus, "", visibilities=PUBLIC)).facets["type"] == {"organisation": 4}


@pytest.mark.parametrize(
    ("dimension", "value", "expected"),
    [
        ("type", "expert", {"5"}),
        ("country", "AT", {"2"}),
        ("domain", "cry", {"2", "4"}),
        ("subdomain", "cry.10", {"4"}),
        ("sector", "sec.energy", {"1", "4"}),
        ("technology", "tech.ai", {"4"}),
        ("use_case", "uc.cip", {"4"}),
        ("role", "ecsf.penetration-tester", {"5"}),
        ("org_type", "ctype.academic-research", {"2"}),
    ],
)
async def test_every_filter(corpus: Engine, dimension: str, value: str, expected: set[str]) -> None:
    result = await search(corpus, "", filters={dimension: [value]})
    assert {hit.id[-1] for hit in result.hits} == expected
    assert result.total == len(expected)


async def test_filters_or_within_and_across_dimensions(corpus: Engine) -> None:
    assert (await search(corpus, "", filters={"country": ["AT", "FR"]})).total == 2
    assert (await search(corpus, "", filters={"country": ["AT", "FR"], "domain": ["cry"]})).total == 1
    assert (await search(corpus, "", filters={"subdomain": ["cry"]})).total == 0  # exact, not a prefix


async def test_unknown_filter_is_invalid(corpus: Engine) -> None:
    with pytest.raises(InvalidParameter):
        await search(corpus, "", filters={"colour": ["red"]})


async def test_facets_are_disjunctive(corpus: Engine) -> None:
    result = await search(corpus, "", filters={"country": ["DE"], "domain": ["cry"]})
    assert titles(result) == ["Quantum Grid Lab"]
    # country counts ignore the country filter but apply the domain filter
    assert result.facets["country"] == {"AT": 1, "DE": 1}
    # domain counts ignore the domain filter but apply the country filter
    assert result.facets["domain"] == {"cry": 1, "net": 1}
    # other dimensions apply both filters
    assert result.facets["subdomain"] == {"cry.10": 1}
    assert result.facets["type"] == {"organisation": 1}
    assert set(result.facets) == set(DIMENSIONS)


async def test_facets_reflect_the_text_query(corpus: Engine) -> None:
    result = await search(corpus, "energy", visibilities=PUBLIC)
    assert result.facets["sector"] == {"sec.energy": 1}
    assert result.facets["country"] == {"DE": 1}


async def test_selected_values_appear_in_facets_even_without_matches(corpus: Engine) -> None:
    result = await search(corpus, "", filters={"country": ["LU"]})
    assert result.total == 0 and result.facets["country"]["LU"] == 0 and result.facets["country"]["DE"] == 3


# --- paging -------------------------------------------------------------------------------------


async def test_paging_with_cursor_has_no_duplicates_or_gaps(engine: Engine) -> None:
    backend, conn = engine
    await backend.upsert(
        conn, [make_doc(n, title=f"Grid operator {n}", text="grid " * (n % 5)) for n in range(1, 58)]
    )
    for q in ("", "grid", "gri"):
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            result = await search(engine, q, limit=10, cursor=cursor)
            assert result.total == 57
            seen += [hit.id for hit in result.hits]
            pages += 1
            cursor = result.next_cursor
            if cursor is None:
                break
        assert pages == 6
        assert len(seen) == len(set(seen)) == 57


@pytest.mark.parametrize("limit", [0, -1, 101, 10**9])
async def test_limit_out_of_range(corpus: Engine, limit: int) -> None:
    with pytest.raises(InvalidParameter):
        await search(corpus, "", limit=limit)


async def test_limit_bounds_accepted(corpus: Engine) -> None:
    assert len((await search(corpus, "", limit=1)).hits) == 1
    assert len((await search(corpus, "", limit=100)).hits) == 6


async def test_garbage_or_foreign_cursor(corpus: Engine) -> None:
    with pytest.raises(InvalidParameter):
        await search(corpus, "", cursor="not-a-cursor")
    first = await search(corpus, "", limit=2)
    assert first.next_cursor
    with pytest.raises(InvalidParameter):
        await search(corpus, "energy", limit=2, cursor=first.next_cursor)


# --- writes -------------------------------------------------------------------------------------


async def test_upsert_replaces_by_id(corpus: Engine) -> None:
    backend, conn = corpus
    await backend.upsert(
        conn,
        [make_doc(4, title="Renamed Lab", text="Wind farms.", version=2, tags={"sector": ["sec.health"]})],
    )
    assert await backend.count(conn) == 6
    assert (await search(corpus, "quantum")).total == 0
    result = await search(corpus, "wind")
    assert [(hit.title, hit.version) for hit in result.hits] == [("Renamed Lab", 2)]
    assert (await search(corpus, "", filters={"subdomain": ["cry.10"]})).total == 0
    assert (await search(corpus, "", filters={"sector": ["sec.health"]})).total == 2


async def test_insert_new_writes_what_upsert_writes_and_refuses_a_held_id(corpus: Engine) -> None:
    """The import's batch variant: new documents are searchable, counted and in the change log as
    upsert makes them; a held (or repeated) id raises and writes nothing of its batch."""
    backend, conn = corpus
    changes = "SELECT count(*) FROM search_changes"
    _, rows = await conn.execute_query(changes)
    logged = int(rows[0][0])
    fresh = [
        make_doc(n, title=f"Fresh Lab {n}", text="novel lattice work", tags={"domain": ["cry"]})
        for n in (20, 21, 22)
    ]
    await backend.insert_new(conn, fresh)
    assert await backend.count(conn) == 9
    assert sorted(titles(await search(corpus, "lattice"))) == ["Fresh Lab 20", "Fresh Lab 21", "Fresh Lab 22"]
    _, rows = await conn.execute_query(changes)
    assert int(rows[0][0]) == logged + 3
    landing = await search(corpus, "")  # served from search_counts
    counted = await search(corpus, "", filters={"type": ["organisation", "expert"]})  # counted by joins
    assert landing.facets["domain"] == counted.facets["domain"] and landing.facets["domain"]["cry"] == 5
    for batch in ([make_doc(30, title="Ghost"), make_doc(4, title="Held")], [make_doc(31), make_doc(31)]):
        with pytest.raises(Exception):  # noqa: B017 - the driver's unique-constraint error
            async with conn._in_transaction() as tconn:
                await backend.insert_new(tconn, batch)
        assert await backend.count(conn) == 9
        assert (await search(corpus, "ghost")).total == 0
        assert (await search(corpus, "quantum")).total == 1
    assert (await search(corpus, "")).facets == landing.facets


async def test_delete_removes(corpus: Engine) -> None:
    backend, conn = corpus
    await backend.delete(conn, [make_doc(4).id, "urn:ncc:XX:organisation:unknown"])
    assert await backend.count(conn) == 5
    assert (await search(corpus, "quantum")).total == 0
    assert (await search(corpus, "", filters={"technology": ["tech.ai"]})).facets["technology"] == {
        "tech.ai": 0
    }


async def test_writes_roll_back_with_the_callers_transaction(corpus: Engine) -> None:
    backend, conn = corpus
    with pytest.raises(RuntimeError):
        async with conn._in_transaction() as tconn:
            await backend.delete(tconn, [make_doc(4).id])
            await backend.upsert(tconn, [make_doc(99, title="Ghost")])
            raise RuntimeError("crash before commit")
    assert await backend.count(conn) == 6
    assert (await search(corpus, "quantum")).total == 1
    assert (await search(corpus, "ghost")).total == 0


async def test_hit_fields_and_snippet(corpus: Engine) -> None:
    result = await search(corpus, "gittern")
    (hit,) = result.hits
    assert hit.id == make_doc(2, origin="AT").id
    assert (hit.type, hit.origin, hit.version) == ("organisation", "AT", 1)
    assert hit.snippet == "Forschung zu Gittern."


async def test_maintained_counts_match_counting_from_scratch(corpus: Engine) -> None:
    backend, conn = corpus
    await backend.upsert(
        conn,
        [
            make_doc(4, title="Moved", visibility="network", tags={"sector": ["sec.health"]}),
            make_doc(7, title="New", tags={"domain": ["cry", "cry"]}),
        ],
    )
    await backend.delete(conn, [make_doc(1, origin="FR").id])
    every_type = {"type": ["organisation", "expert"]}
    for visibilities in (PUBLIC, ALL, frozenset({"network"})):
        landing = await search(corpus, "", visibilities=visibilities)  # served from search_counts
        counted = await search(corpus, "", visibilities=visibilities, filters=every_type)  # counted by joins
        assert {k: v for k, v in landing.facets.items() if k != "type"} == {
            k: v for k, v in counted.facets.items() if k != "type"
        }
        assert landing.total == counted.total
    before = (await search(corpus, "")).facets
    await backend.rebuild_counts(conn)  # type: ignore[attr-defined]
    assert (await search(corpus, "")).facets == before


async def test_counts_roll_back_with_the_transaction(corpus: Engine) -> None:
    backend, conn = corpus
    before = await search(corpus, "")
    with pytest.raises(RuntimeError):
        async with conn._in_transaction() as tconn:
            await backend.upsert(tconn, [make_doc(50, title="Ghost", tags={"domain": ["cry"]})])
            await backend.delete(tconn, [make_doc(2, origin="AT").id])
            raise RuntimeError("crash before commit")
    after = await search(corpus, "")
    assert (after.total, after.facets) == (before.total, before.facets)


async def test_schema_creation_is_idempotent_and_backfills_counts(corpus: Engine) -> None:
    _, conn = corpus

    await conn.execute_query("DROP TABLE search_counts")
    await create_search_schema(conn)
    await create_search_schema(conn)
    assert (await search(corpus, "")).facets["type"] == {"organisation": 5, "expert": 1}


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[Engine]:
    """The SQLite backend alone (FTS5 structure), SQL path."""
    async with open_client(f"sqlite://{tmp_path / 'search.db'}") as conn:
        await create_search_schema(conn)
        yield backend_for("sqlite", accelerated=False), conn


async def test_sqlite_full_text_stays_consistent_through_replacements_and_deletes(sqlite_engine: Engine) -> None:
    """FTS5 is written by explicit statements (no triggers): its integrity check holds after a mix of
    inserts, replacements (same id, new text) and deletes, and only current text matches."""
    engine = sqlite_engine
    backend, conn = engine
    await backend.upsert(conn, [make_doc(n, text=f"alpha{n}x common") for n in range(1, 41)])
    await backend.upsert(conn, [make_doc(n, text=f"beta{n}x common") for n in range(1, 41, 2)])
    await backend.delete(conn, [make_doc(n).id for n in range(1, 41, 4)])
    await conn.execute_query("INSERT INTO search_fts (search_fts, rank) VALUES ('integrity-check', 1)")
    assert (await search(engine, "alpha1x")).total == 0  # replaced (odd)
    assert (await search(engine, "alpha2x")).total == 1
    assert (await search(engine, "beta3x")).total == 1
    assert (await search(engine, "beta5x")).total == 0  # deleted (1 + 4k)
    assert (await search(engine, "common")).total == 40 - 10
    _, triggers = await conn.execute_query("SELECT name FROM sqlite_master WHERE type = 'trigger'")
    assert list(triggers) == []


async def test_sqlite_index_made_with_row_triggers_is_upgraded_in_place(sqlite_engine: Engine) -> None:
    """A database from before the trigger removal: create_search_schema drops the triggers, and
    later writes neither double-index nor leave stale terms."""
    engine = sqlite_engine
    backend, conn = engine
    await conn.execute_query(
        "CREATE TRIGGER search_docs_ai AFTER INSERT ON search_docs BEGIN "
        "INSERT INTO search_fts (rowid, ftitle, fbody) VALUES (new.doc, new.ftitle, new.fbody); END"
    )
    await conn.execute_query(
        "CREATE TRIGGER search_docs_ad AFTER DELETE ON search_docs BEGIN INSERT INTO search_fts "
        "(search_fts, rowid, ftitle, fbody) VALUES ('delete', old.doc, old.ftitle, old.fbody); END"
    )
    # What the old code wrote: rows only, the triggers indexed them.
    doc = make_doc(7, text="legacy gamma")
    await conn.execute_query(
        "INSERT INTO search_docs (id, type, origin, visibility, version, issued_at, title, text, ftitle, fbody)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [doc.id, doc.type, doc.origin, doc.visibility, doc.version, doc.issued_at, doc.title, doc.text,
         *doc.folded],
    )
    await create_search_schema(conn)
    await backend.upsert(conn, [make_doc(7, text="current delta")])
    await conn.execute_query("INSERT INTO search_fts (search_fts, rank) VALUES ('integrity-check', 1)")
    assert (await search(engine, "gamma")).total == 0
    assert (await search(engine, "delta")).total == 1


# --- natural-language questions: function words and words no record has --------------------------


async def test_question_with_function_words_and_an_absent_word_finds_the_record(corpus: Engine) -> None:
    # Regression: every word was a required term, "who"/"does"/"for"/"in" and "europe" (which no
    # record holds) included, so the project's headline question found nothing.
    result = await search(corpus, "who does post-quantum cryptography for energy in Europe?")
    assert titles(result) == ["Quantum Grid Lab"]
    assert result.total == 1 and result.facets["country"] == {"DE": 1}
    assert result.ignored == ("who", "does", "for", "in", "Europe")


async def test_absent_word_is_left_out_but_present_words_stay_and_ed(corpus: Engine) -> None:
    result = await search(corpus, "quantum zzyzx energy grids")
    assert titles(result) == ["Quantum Grid Lab"] and result.ignored == ("zzyzx",)
    # Only a question is relaxed: one absent word, at least three present. A name of a record the
    # reader may not see, or a misspelt one, keeps finding nothing rather than anything that shares
    # a common word.
    for q in ("quantum zzyzx grids", "quantum zzyzx plugh energy grids"):
        result = await search(corpus, q)
        assert result.total == 0 and result.ignored == (), q
    # Words that do occur but never together still match nothing (AND semantics kept).
    result = await search(corpus, "quantum krankenhauser")
    assert result.total == 0 and result.ignored == ()
    # An absent last word is judged as a prefix: "kryptog" is a prefix of an indexed word.
    assert (await search(corpus, "energy kryptog")).total == 0
    assert (await search(corpus, "energy kryptog")).ignored == ()


async def test_query_of_absent_words_only_finds_nothing(corpus: Engine) -> None:
    result = await search(corpus, "zzyzx plugh")
    assert result.total == 0 and result.hits == [] and result.ignored == ()
    assert (await search(corpus, "in zzyzx")).ignored == ("in",)


async def test_absent_word_is_judged_by_what_the_reader_may_see(corpus: Engine) -> None:
    # "internal" occurs only in a national record: to a public reader it is absent (left out, and
    # saying otherwise would reveal that the word is in a record they may not see).
    public = await search(corpus, "internal quantum energy grids", visibilities=PUBLIC)
    assert titles(public) == ["Quantum Grid Lab"] and public.ignored == ("internal",)
    national = await search(corpus, "internal quantum energy grids")  # every word is somewhere: AND
    assert national.total == 0 and national.ignored == ()


async def test_absent_phrase_is_left_out(corpus: Engine) -> None:
    result = await search(corpus, '"grids energy" quantum schemes cryptography')
    assert titles(result) == ["Quantum Grid Lab"] and result.ignored == ("grids energy",)


async def test_paging_a_relaxed_question_keeps_its_total(engine: Engine) -> None:
    backend, conn = engine
    await backend.upsert(conn, [make_doc(n, title=f"Grid operators {n}", text="energy networks")
                                for n in range(1, 26)])
    question = "which grid operators run energy networks in Europe"
    assert (await search(engine, question, limit=10)).total == 0  # two words no record has: not relaxed
    question = "which grid operators for energy networks in Europe"
    first = await search(engine, question, limit=10)
    assert first.total == 25 and first.next_cursor is not None and first.ignored[-1] == "Europe"
    second = await search(engine, question, limit=10, cursor=first.next_cursor)
    assert second.total == 25 and {h.id for h in first.hits}.isdisjoint(h.id for h in second.hits)


# --- origins left out (the hub, while nodes answer for themselves) -------------------------------


async def test_excluded_origins_are_left_out_of_hits_total_and_facets(corpus: Engine) -> None:
    for q in ("", "energy", "cry"):
        full = await search(corpus, q)
        result = await search(corpus, q, exclude_origins=frozenset({"DE"}))
        assert all(hit.origin != "DE" for hit in result.hits), q
        assert result.total == full.total - full.facets["country"].get("DE", 0), q
        assert "DE" not in result.facets["country"], q
        assert sum(result.facets["type"].values()) == result.total, q
    filtered = await search(corpus, "", filters={"domain": ["cry"]}, exclude_origins=frozenset({"DE", "XX"}))
    assert titles(filtered) == ["Österreichisches Institut für Kryptografie"]
    assert filtered.facets["domain"] == {"aac": 1, "cry": 1, "net": 1}  # disjunctive, DE's left out


async def test_membership_filter_narrows_organisations_only(engine: Engine) -> None:
    """DESIGN §12: ``membership=registered`` keeps registered organisations and every record of other
    types; the "not an organisation" marker never shows in the facets."""
    from node.services.search import query_from_params
    from schemas import load_vocabularies

    backend, conn = engine
    vocab = load_vocabularies()

    def org(n: int, status: str | None) -> Any:
        payload: dict[str, Any] = {"legal_name": f"Org {n}", "country": "DE", "description": "grid security"}
        if status:
            payload["membership"] = {"status": status}
        return document_from_envelope({"id": f"urn:ncc:DE:organisation:{n:08d}-0000-4000-8000-000000000000",
                                       "type": "organisation", "origin": "DE", "visibility": "public",
                                       "version": 1, "issued_at": "2026-01-01T00:00:00Z", "deleted": False,
                                       "payload": payload}, vocab)

    expert = document_from_envelope({"id": "urn:ncc:DE:expert:00000009-0000-4000-8000-000000000000",
                                     "type": "expert", "origin": "DE", "visibility": "public", "version": 1,
                                     "issued_at": "2026-01-01T00:00:00Z", "deleted": False,
                                     "payload": {"name": "Grid Expert", "country": "DE"}}, vocab)
    await backend.upsert(conn, [org(1, "registered"), org(2, "applied"), org(3, None), expert])
    query = query_from_params({"membership": "registered"}, PUBLIC, 100)
    result = await backend.search(conn, query)
    assert sorted(h.title for h in result.hits) == ["Grid Expert", "Org 1"]
    from node.search.base import MEMBERSHIP_NOT_APPLICABLE

    facets = (await backend.search(conn, query_from_params({}, PUBLIC, 100))).facets["membership"]
    assert facets.get("registered") == 1 and facets.get("applied") == 1
    with pytest.raises(InvalidParameter):
        query_from_params({"membership": "member"}, PUBLIC, 100)
    assert MEMBERSHIP_NOT_APPLICABLE not in query_from_params({"membership": MEMBERSHIP_NOT_APPLICABLE}, PUBLIC,
                                                              100).filters
