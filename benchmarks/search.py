"""Search benchmark: build a synthetic index, time each query class, print one JSON object.

    python -m benchmarks.search [--records N] [--backend sqlite|postgres] [--db-url URL] [--reuse] [--runs R]
                                [--mode accelerated|sql|both] [--bulk]

Records are organisations, experts, projects and facilities with names in several national
languages (with diacritics), descriptions drawn from a Zipf-like word pool, and taxonomy tags from
the packaged vocabularies; they go through ``document_from_envelope`` like real records. For each
query class the JSON gives p50/p95 of the whole ``search()`` (page + facets + total) and of the
engine's page query alone (SQL path) or of the accelerator's in-memory work (accelerated path),
and ``api`` = ``search()`` plus the service's parameter parsing and JSON rendering (everything of a
request but aiohttp) with the ratio api/engine. ``--mode`` picks the path(s) (default
accelerated); the accelerated run reports its build time and the process RSS before/after the
build. ``--bulk`` loads a fresh SQLite index with plain inserts and one FTS5 rebuild (benchmark
only; same rows as the normal writer). ``--reuse`` keeps an existing index of the right size (for
repeated runs at 1M records). Default: 20,000 records on SQLite in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import string
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import schemas
from node.search import SearchQuery, accel, backend_for, create_search_schema, document_from_envelope
from node.search.client import open_client
from node.search.sql import SqlSearchBackend, validate
from node.services.search import query_from_params, result_to_json

BATCH = 1000
RUNS = 30  # timed runs per query class (--runs)

# name parts per language: (institution prefixes, topics, legal suffixes, cities, first names, surnames)
LANGUAGES: dict[str, tuple[list[str], list[str], list[str], list[str], list[str], list[str]]] = {
    "DE": (
        ["Institut für", "Zentrum für", "Labor für", "Gesellschaft für"],
        [
            "Kryptografie",
            "Informationssicherheit",
            "Netzwerksicherheit",
            "Cyberabwehr",
            "Datenschutz",
            "Sicherheitsforschung",
            "Angewandte Kryptologie",
        ],
        ["GmbH", "AG", "e.V."],
        ["München", "Köln", "Düsseldorf", "Würzburg", "Lübeck", "Saarbrücken"],
        ["Jürgen", "Anna", "Lukas", "Sophie", "Björn", "Käthe"],
        ["Müller", "Schäfer", "Groß", "Weiß", "Köhler"],
    ),
    "AT": (
        ["Österreichisches Institut für", "Kompetenzzentrum für"],
        ["Kryptografie", "Cybersicherheit", "Informationssicherheit"],
        ["GmbH", "KG"],
        ["Wien", "Graz", "Linz", "Innsbruck", "Klagenfurt"],
        ["Jörg", "Lena", "Maximilian"],
        ["Gruber", "Huber", "Wögerbauer", "Pölzl"],
    ),
    "FR": (
        ["Laboratoire de", "Centre de", "Institut de"],
        ["Sécurité Numérique", "Cryptographie Appliquée", "Cyberdéfense", "Sûreté des Systèmes"],
        ["SAS", "SARL", "SA"],
        ["Besançon", "Orléans", "Nîmes", "Saint-Étienne", "Périgueux"],
        ["Hélène", "François", "Chloé", "Jérôme"],
        ["Lefèvre", "Girard", "Dubœuf"],
    ),
    "PL": (
        ["Instytut", "Centrum", "Laboratorium"],
        ["Bezpieczeństwa Łączności", "Kryptologii", "Cyberbezpieczeństwa"],
        ["Sp. z o.o.", "S.A."],
        ["Łódź", "Kraków", "Gdańsk", "Wrocław", "Poznań"],
        ["Łukasz", "Małgorzata", "Paweł", "Zofia"],
        ["Wiśniewski", "Dąbrowska", "Łukasiewicz", "Żak"],
    ),
    "CZ": (
        ["Ústav", "Centrum"],
        ["kybernetické bezpečnosti", "kryptografie", "informační bezpečnosti"],
        ["s.r.o.", "a.s."],
        ["Brno", "Plzeň", "České Budějovice", "Ústí nad Labem"],
        ["Tomáš", "Jiří", "Kateřina", "Zdeněk"],
        ["Dvořák", "Novák", "Černý", "Růžička"],
    ),
    "DK": (
        ["Center for", "Institut for"],
        ["Cybersikkerhed", "Informationssikkerhed", "Kryptografi"],
        ["ApS", "A/S"],
        ["Århus", "Ålborg", "Køge", "Næstved"],
        ["Søren", "Mette", "Bjørn"],
        ["Jørgensen", "Sørensen", "Præstø"],
    ),
    "SE": (
        ["Centrum för", "Institutet för"],
        ["Cybersäkerhet", "Informationssäkerhet", "Kryptografi"],
        ["AB"],
        ["Göteborg", "Malmö", "Linköping", "Umeå"],
        ["Åsa", "Björn", "Märta"],
        ["Åström", "Lindqvist", "Öberg"],
    ),
    "ES": (
        ["Centro de", "Instituto de"],
        ["Ciberseguridad", "Criptografía Aplicada", "Seguridad de la Información"],
        ["S.L.", "S.A."],
        ["León", "Cádiz", "Málaga", "A Coruña"],
        ["José", "María", "Iñigo", "Begoña"],
        ["Núñez", "Peña", "Muñoz", "Ibáñez"],
    ),
    "IT": (
        ["Centro di", "Istituto di"],
        ["Sicurezza Informatica", "Crittografia", "Cybersicurezza"],
        ["S.r.l.", "S.p.A."],
        ["Forlì", "Cantù", "Torino", "Bari"],
        ["Niccolò", "Lucía", "Andrea"],
        ["Rossi", "Bianchi", "Mazzà"],
    ),
    "EL": (
        ["Ινστιτούτο", "Κέντρο"],
        ["Κυβερνοασφάλειας", "Κρυπτογραφίας", "Ασφάλειας Πληροφοριών"],
        ["Α.Ε."],
        ["Αθήνα", "Θεσσαλονίκη", "Ηράκλειο"],
        ["Γιώργος", "Ελένη"],
        ["Παπαδόπουλος", "Αλεξίου"],
    ),
    "HU": (
        ["Intézet", "Központ"],
        ["Kiberbiztonsági", "Kriptográfiai"],
        ["Kft.", "Zrt."],
        ["Győr", "Pécs", "Debrecen", "Szőny"],
        ["Zoltán", "Erzsébet", "Gábor"],
        ["Kovács", "Szőke", "Tóth"],
    ),
    "RO": (
        ["Institutul de", "Centrul de"],
        ["Securitate Cibernetică", "Criptografie"],
        ["S.R.L."],
        ["Iași", "Brașov", "Timișoara", "Constanța"],
        ["Ștefan", "Ioana", "Mihai"],
        ["Popescu", "Țurcanu", "Ș erban"],
    ),
}
ENGLISH_TOPICS = [
    "Security",
    "Cryptography",
    "Cyber Defence",
    "Network Security",
    "Privacy Engineering",
    "Threat Intelligence",
    "Secure Systems",
    "Digital Forensics",
    "Identity Management",
]
ENGLISH_SUFFIXES = [
    "Lab",
    "Institute",
    "Solutions",
    "Systems",
    "Technologies",
    "Research Centre",
    "Consulting",
]
COMMON_WORDS = [
    "security",
    "cyber",
    "research",
    "systems",
    "network",
    "data",
    "services",
    "training",
    "solutions",
    "european",
    "secure",
    "infrastructure",
    "analysis",
    "testing",
    "risk",
    "management",
    "energy",
    "grids",
    "incident",
    "response",
    "cloud",
    "software",
    "hardware",
    "privacy",
    "post-quantum",
    "cryptography",
    "protocols",
    "authentication",
    "monitoring",
    "compliance",
]
SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ter",
    "vos",
    "an",
    "rel",
    "qui",
    "zo",
    "bra",
    "nek",
    "sul",
    "dri",
    "fa",
    "go",
    "hes",
    "pri",
    "tum",
    "wel",
    "xo",
]


def _word_pool(rng: random.Random, size: int = 4000) -> list[str]:
    words = list(COMMON_WORDS)
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choices(SYLLABLES, k=rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def _terms(vocabularies: dict[str, list[dict[str, Any]]], name: str) -> list[str]:
    return [term["id"] for term in vocabularies[name]]


def envelopes(count: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """Yield ``count`` synthetic record envelopes (deterministic for a seed)."""
    rng = random.Random(seed)
    vocab = schemas.load_vocabularies()
    domains = _terms(vocab, "knowledge_domains")
    subdomains: dict[str, list[str]] = {}
    for term in vocab["subdomains"]:
        subdomains.setdefault(term["parent"], []).append(term["id"])
    sectors, technologies = _terms(vocab, "sectors"), _terms(vocab, "technologies")
    use_cases, org_types = _terms(vocab, "use_cases"), _terms(vocab, "organisation_types")
    roles, foas = _terms(vocab, "ecsf_role_profiles"), _terms(vocab, "fields_of_activity")
    pool = _word_pool(rng)
    weights = [1.0 / (rank + 1) for rank in range(len(pool))]
    countries = list(LANGUAGES)
    base = 1_672_531_200  # 2023-01-01
    for n in range(count):
        country = rng.choice(countries)
        prefixes, topics, suffixes, cities, firsts, lasts = LANGUAGES[country]
        kind = rng.choices(["organisation", "expert", "project", "facility"], weights=[60, 25, 10, 5])[0]
        words = rng.choices(pool, weights=weights, k=rng.randint(15, 40))
        if rng.random() < 0.5:
            words.append("security")
        description = " ".join(words).capitalize() + "."
        doms = rng.sample(domains, rng.randint(1, 3))
        tags: dict[str, Any] = {
            "domains": doms,
            "subdomains": [rng.choice(subdomains[d]) for d in doms if d in subdomains and rng.random() < 0.8],
            "sectors": rng.sample(sectors, rng.randint(0, 3)),
            "technologies": rng.sample(technologies, rng.randint(0, 2)),
        }
        city = rng.choice(cities)
        payload: dict[str, Any]
        if kind == "organisation":
            payload = {
                "legal_name": f"{city} {rng.choice(ENGLISH_TOPICS)} {rng.choice(ENGLISH_SUFFIXES)}",
                "national_name": f"{rng.choice(prefixes)} {rng.choice(topics)} {city} {rng.choice(suffixes)}",
                "country": country,
                "org_type": rng.choice(org_types),
                "fields_of_activity": [rng.choice(foas)],
                "use_cases": rng.sample(use_cases, rng.randint(0, 1)),
                "description": description[:800],
                "keywords": rng.sample(pool[:300], 2),
                **tags,
            }
        elif kind == "expert":
            payload = {
                "name": f"{rng.choice(firsts)} {rng.choice(lasts)}",
                "country": country,
                "roles": rng.sample(roles, rng.randint(1, 2)),
                "description": description[:800],
                **tags,
            }
        elif kind == "project":
            acronym = "".join(rng.choices(string.ascii_uppercase, k=rng.randint(4, 8)))
            payload = {
                "acronym": acronym,
                "title": f"{rng.choice(ENGLISH_TOPICS)} for {' '.join(words[:3])}",
                "objective": description,
                "programme": "HORIZON",
                **tags,
            }
        else:
            payload = {
                "name": f"Cyber Range {city}",
                "country": country,
                "description": description[:800],
                "capabilities": ["Red/blue team training", f"{rng.choice(topics)} exercises"],
                "location": {"city": city, "country": country},
                **tags,
            }
        visibility = rng.choices(["public", "network", "national"], weights=[80, 15, 5])[0]
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + rng.randrange(4 * 365 * 86400)))
        yield {
            "id": f"urn:ncc:{country}:{kind}:{uuid.UUID(int=rng.getrandbits(128))}",
            "type": kind,
            "origin": country,
            "version": 1,
            "issued_at": issued,
            "visibility": visibility,
            "deleted": False,
            "payload": payload,
        }


QUERY_CLASSES: dict[str, list[tuple[str, dict[str, tuple[str, ...]]]]] = {
    "rare_term": [("Ruzicka", {}), ("Wogerbauer", {}), ("Pecs", {}), ("Dvorak", {})],
    "common_term": [("security", {}), ("research", {}), ("cyber", {})],
    "phrase": [('"energy grids"', {}), ('"incident response"', {}), ('"post quantum"', {})],
    "prefix": [("kryptog", {}), ("bezpiecz", {}), ("cybers", {}), ("informationss", {})],
    "facet_only": [("", {}), ("", {"country": ("DE",)})],
    "filtered": [
        ("security", {"country": ("DE",), "domain": ("cry",)}),
        ("", {"sector": ("sec.energy",), "type": ("expert",)}),
        ("network", {"domain": ("nds",), "country": ("FR", "PL")}),
    ],
}
READER = frozenset({"public", "network"})


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000, 2),
    }


async def _size(conn: Any, dialect: str) -> int:
    if dialect == "sqlite":
        _, rows = await conn.execute_query(
            "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size"
        )
        return int(rows[0][0])
    _, rows = await conn.execute_query(
        "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c WHERE c.relname IN ('search_docs', 'search_tags')"
    )
    return int(rows[0][0])


def _rss_mb() -> float:
    """Current resident set size of this process (Linux), in MiB."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)



def sqlite_doc_row(n: int, doc: Any) -> list[Any]:
    """A search document as a row of SQLite's ``search_docs`` (doc number ``n``), for bulk loads."""
    return [n, doc.id, doc.type, doc.origin, doc.visibility, doc.version, doc.issued_at, doc.title, doc.text,
            *doc.folded, doc.restricted, doc.folded_restricted]

async def _bulk_load_sqlite(conn: Any, records: int, vocabularies: Any, backend: SqlSearchBackend) -> None:
    """Fresh SQLite index by plain inserts, then one FTS5 rebuild and counts."""
    doc_rows: list[list[Any]] = []
    tag_rows: list[list[Any]] = []

    async def flush() -> None:
        async with conn._in_transaction() as tconn:
            await tconn.execute_many(
                "INSERT INTO search_docs (doc, id, type, origin, visibility, version, issued_at, title, text, "
                "ftitle, fbody, rtext, frest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                doc_rows,
            )
            await tconn.execute_many(
                "INSERT OR IGNORE INTO search_tags (dim, value, doc) VALUES (?, ?, ?)", tag_rows
            )
        doc_rows.clear()
        tag_rows.clear()

    for n, envelope in enumerate(envelopes(records), start=1):
        doc = document_from_envelope(envelope, vocabularies)
        assert doc is not None
        doc_rows.append(sqlite_doc_row(n, doc))
        tag_rows += [[dim, value, n] for dim, values in doc.tags.items() for value in values]
        if len(doc_rows) == 20 * BATCH:
            await flush()
    if doc_rows:
        await flush()
    await conn.execute_query("INSERT INTO search_fts (search_fts) VALUES ('rebuild')")
    await backend.rebuild_counts(conn)


async def _time_classes(backend: SqlSearchBackend, conn: Any, runs: int, engine_time: Any) -> dict[str, Any]:
    classes: dict[str, Any] = {}
    for name, queries in QUERY_CLASSES.items():
        totals: list[float] = []
        engine: list[float] = []
        api: list[float] = []
        matches: list[int] = []
        for q, filters in queries:  # warm-up
            await backend.search(conn, SearchQuery(q=q, filters=filters, visibilities=READER))
        for run_index in range(runs):
            q, filters = queries[run_index % len(queries)]
            query = SearchQuery(q=q, filters=filters, visibilities=READER)
            started = time.perf_counter()
            result = await backend.search(conn, query)
            totals.append(time.perf_counter() - started)
            matches.append(result.total)
            params: dict[str, Any] = {"q": q, "limit": "20", **{dim: list(v) for dim, v in filters.items()}}
            started = time.perf_counter()
            request = query_from_params(params, READER, 100)
            body = json.dumps(result_to_json(await backend.search(conn, request)))
            api.append(time.perf_counter() - started)
            assert body
            engine.append(await engine_time(query))
        p_api, p_engine = _percentiles(api), _percentiles(engine)
        classes[name] = {
            **_percentiles(totals),
            "engine": p_engine,
            "api": p_api,
            "api_over_engine_p50": round(p_api["p50_ms"] / max(p_engine["p50_ms"], 0.001), 2),
            "matches": sorted(set(matches)),
        }
    return classes


async def run(
    records: int,
    db_url: str,
    reuse: bool,
    runs: int = RUNS,
    modes: tuple[str, ...] = ("accelerated",),
    bulk: bool = False,
) -> dict[str, Any]:
    vocabularies = schemas.load_vocabularies()
    async with open_client(db_url) as conn:
        dialect = conn.capabilities.dialect
        await create_search_schema(conn)
        backend = backend_for(dialect, accelerated=False)
        assert isinstance(backend, SqlSearchBackend)
        build: dict[str, Any] = {"reused": False}
        if not (reuse and await backend.count(conn) == records):
            started = time.perf_counter()
            if bulk and dialect == "sqlite" and await backend.count(conn) == 0:
                await _bulk_load_sqlite(conn, records, vocabularies, backend)
                build["bulk"] = True
            else:
                batch = []
                for envelope in envelopes(records):
                    doc = document_from_envelope(envelope, vocabularies)
                    assert doc is not None
                    batch.append(doc)
                    if len(batch) == BATCH:
                        async with conn._in_transaction() as tconn:
                            await backend.upsert(tconn, batch)
                        batch = []
                if batch:
                    async with conn._in_transaction() as tconn:
                        await backend.upsert(tconn, batch)
            elapsed = time.perf_counter() - started
            build.update({"seconds": round(elapsed, 1), "docs_per_s": round(records / elapsed)})
            if dialect == "postgres":
                await conn.execute_query("ANALYZE search_docs")
                await conn.execute_query("ANALYZE search_tags")
        else:
            build["reused"] = True
        build["size_bytes"] = await _size(conn, dialect)
        build["size_mb"] = round(build["size_bytes"] / 2**20, 1)

        out: dict[str, Any] = {
            "benchmark": "search",
            "backend": dialect,
            "records": records,
            "build": build,
        }
        for mode in modes:
            if mode == "sql":
                sql_backend = backend

                async def sql_engine(
                    query: SearchQuery, sql_backend: SqlSearchBackend = sql_backend
                ) -> float:
                    plan, _ = validate(query)
                    started = time.perf_counter()
                    await sql_backend.page(conn, plan, 20, 0)
                    return time.perf_counter() - started

                out["sql"] = {"classes": await _time_classes(backend, conn, runs, sql_engine)}
                continue
            fast = backend_for(dialect, accelerated=True)
            assert isinstance(fast, SqlSearchBackend) and fast.accelerated
            rss_before = _rss_mb()
            started = time.perf_counter()
            await fast.warm(conn)
            build_s = time.perf_counter() - started
            accelerator = accel.accelerator_of(conn, dialect)
            index = accelerator.index
            assert index is not None
            rss_after = _rss_mb()

            async def accel_engine(query: SearchQuery, index: Any = index, fast: Any = fast) -> float:
                # The in-memory part: bitmaps, facets, ranking, phrase verification (no catch-up
                # read, no page-row fetch).
                plan, offset = validate(query)
                started = time.perf_counter()
                await _engine_only(accel._Query(index, conn, fast, plan), query, offset)
                return time.perf_counter() - started

            classes = await _time_classes(fast, conn, runs, accel_engine)
            out["accelerated"] = {
                "build_s": round(build_s, 1),
                "rss_before_build_mb": rss_before,
                "rss_after_build_mb": rss_after,
                "rss_accelerator_mb": round(rss_after - rss_before, 1),
                "tokens": len(index.words),
                "classes": classes,
                "rss_after_queries_mb": _rss_mb(),
            }
        out["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        return out


async def _engine_only(work: Any, query: SearchQuery, offset: int) -> None:
    """What ``_Query.run`` does before fetching the page rows (phrase verification included)."""
    original = work.rows

    async def no_rows(docs: Any) -> dict[int, Any]:
        return {}

    work.rows = no_rows
    try:
        await work.run(query, offset)
    finally:
        work.rows = original


def _postgres_url() -> tuple[str, str]:
    admin = os.environ.get("NCC_TEST_PG", "postgres://postgres@127.0.0.1:5432/test")
    return admin, admin.rsplit("/", 1)[0] + "/ncc_bench_search"


async def _ensure_pg_database(admin: str, name: str, fresh: bool) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists and fresh:
            await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = False
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--db-url", help="database to use (default: a temporary SQLite file / ncc_bench_search)"
    )
    parser.add_argument("--reuse", action="store_true", help="keep an existing index of the same size")
    parser.add_argument("--runs", type=int, default=RUNS, help="timed runs per query class")
    parser.add_argument("--mode", choices=["accelerated", "sql", "both"], default="accelerated")
    parser.add_argument("--bulk", action="store_true", help="fast loader for a fresh SQLite index")
    args = parser.parse_args()
    modes = ("sql", "accelerated") if args.mode == "both" else (args.mode,)
    with tempfile.TemporaryDirectory() as tmp:
        db_url = args.db_url
        if db_url is None and args.backend == "sqlite":
            db_url = f"sqlite://{Path(tmp) / 'search.db'}"
        elif db_url is None:
            admin, db_url = _postgres_url()
            asyncio.run(_ensure_pg_database(admin, "ncc_bench_search", fresh=not args.reuse))
        print(json.dumps(asyncio.run(run(args.records, db_url, args.reuse, args.runs, modes, args.bulk))))


if __name__ == "__main__":
    main()
