"""Every benchmark in one run: ``python -m benchmarks [--quick | --full] [--out FILE] [--plot PNG]``.

Runs, in this order and in one process tree, so that every ratio compares figures of the same run:

1. ``benchmarks.protocol`` — bare Ed25519 verify vs the whole ``verify()`` pipeline, one core;
2. ``benchmarks.ingest`` — a real node process serving its feed over loopback HTTP to a real hub
   process (``ncc sync``) that verifies, validates, stores and indexes; bare verify is measured
   before and after it (``verify_only_per_s``); then 100 changes pulled from a small and from the
   large node (``incremental_100_*``); the hub process tree's peak memory;
2b. ``benchmarks.imports`` — ``ncc import`` of an NDJSON file of organisations into a node
   (``import_per_s``) against bare Ed25519 signing on one core in the same run (``sign_only_per_s``);
3. ``benchmarks.search`` — query classes at growing index sizes (p95 of a request's work but
   aiohttp, accelerated path);
3b. ``benchmarks.consortium`` — the consortium builder (DESIGN §16) over 30,000 organisations
   (``--full``: 100,000; target p95 < 200 ms);
4. ``benchmarks.load`` — search requests at a fixed rate against a serving hub while it ingests.

Prints one JSON object: the headline figures first (``verify_only_per_s``, ``ingest_per_s``,
``incremental_100_small_s``, ``incremental_100_large_s``, ``import_per_s``, ``sign_only_per_s``,
``import_vs_sign``, ``search_p95_ms``, ``hub_peak_rss_mb``
and their targets from DESIGN §8), then every benchmark's own report under ``details``.
``--plot`` draws ingest rate and search latency against records (needs the ``bench`` extra:
matplotlib).

Sizes: ``--quick`` (the default; under 5 minutes on a 2-core machine) ingests 30,000 records,
imports 20,000 and searches 10,000 and 30,000; ``--full`` (DESIGN §8) ingests 1,000,000, imports 100,000 and searches 10,000,
100,000 and 1,000,000 — allow about two hours.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import consortium, imports, ingest, load, protocol, search

PROFILES: dict[str, dict[str, Any]] = {
    # --smoke: the same code on tiny sizes (seconds; the figures mean nothing) — what CI runs.
    "smoke": {"ingest": 300, "small": 200, "rounds": 1, "search": (300,), "search_runs": 3, "import": 100,
              "consortium": 300,
              "load": {"records": 300, "rate": 5.0, "duration": 3.0}, "protocol_n": 200, "verify_samples": 200},
    "quick": {"ingest": 30_000, "small": 1000, "rounds": 3, "search": (10_000, 30_000), "search_runs": 30,
              "import": 20_000, "consortium": 30_000,
              "load": {"records": 10_000, "rate": 20.0, "duration": 15.0}, "protocol_n": 2000},
    "full": {"ingest": 1_000_000, "small": 1000, "rounds": 5, "search": (10_000, 100_000, 1_000_000), "search_runs": 60,
             "import": 100_000, "consortium": 100_000,
             "load": {"records": 200_000, "rate": 50.0, "duration": 120.0}, "protocol_n": 5000},
}

TARGETS = {
    "ingest_vs_verify": 0.5,
    "ingest_vs_verify_aim": 0.8,
    "import_vs_sign": 0.2,
    "import_vs_sign_aim": 0.3,
    "incremental_large_vs_small": 1.5,
    "search_p95_ms": 50.0,
    "consortium_p95_ms": consortium.TARGET_P95_MS,
    "hub_peak_rss_mb": 300,
}


def search_at(records: int, runs: int) -> dict[str, Any]:
    """The search benchmark on a fresh SQLite index of ``records`` documents."""
    with tempfile.TemporaryDirectory(prefix="ncc-bench-search-") as tmp:
        url = f"sqlite://{Path(tmp) / 'search.db'}"
        return asyncio.run(search.run(records, url, reuse=False, runs=runs, modes=("accelerated",), bulk=True))


def worst_p95(report: dict[str, Any]) -> float:
    """The slowest query class's p95 (ms) of ``api`` work: search + parameter parsing + JSON."""
    return max(c["api"]["p95_ms"] for c in report["accelerated"]["classes"].values())


def run(profile: str, backend: str) -> dict[str, Any]:
    sizes = PROFILES[profile]
    started = time.perf_counter()
    stages: dict[str, float] = {}

    t = time.perf_counter()
    proto = protocol.run(sizes["protocol_n"], 5)
    stages["protocol_s"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ncc-bench-ingest-") as tmp:
        ing = ingest.run(sizes["ingest"], backend, sizes["rounds"], sizes["small"], Path(tmp), node_index=False,
                         verify_samples=sizes.get("verify_samples", 2000))
    stages["ingest_s"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ncc-bench-import-") as tmp:
        imp = imports.run(sizes["import"], backend, "ndjson", Path(tmp))
    stages["import_s"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    searches = [search_at(n, sizes["search_runs"]) for n in sizes["search"]]
    stages["search_s"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    cons = asyncio.run(consortium.run(sizes["consortium"], 10 if profile == "smoke" else 20))
    stages["consortium_s"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    try:
        lo = load.run(backend=backend, **sizes["load"])
    except Exception as exc:  # noqa: BLE001 - the other figures of the run stay worth reporting
        lo = {"error": f"{exc.__class__.__name__}: {exc}"[:2000], "rate_achieved_per_s": None, "errors": None,
              "latency_ms": {"service": {"p50": None, "p99": None}}}
    stages["load_s"] = round(time.perf_counter() - t, 1)

    search_rss = max(s["max_rss_mb"] for s in searches)
    report = {
        "benchmark": "all",
        "profile": profile,
        "backend": backend,
        "records": sizes["ingest"],
        "verify_only_per_s": ing["verify_only_per_s"],
        "ingest_per_s": ing["ingest_per_s"],
        "ingest_vs_verify": ing["ratio"],
        "incremental_100_small_s": ing["incremental_100_small_s"],
        "incremental_100_large_s": ing["incremental_100_large_s"],
        "incremental_large_vs_small": ing["incremental_ratio"],
        "import_per_s": imp["import_per_s"],
        "sign_only_per_s": imp["sign_only_per_s"],
        "import_vs_sign": imp["ratio"],
        "import_vs_sign_cpu": imp["cpu_ratio"],
        "import_peak_rss_mb": imp["import_peak_rss_mb"],
        "search_p95_ms": worst_p95(searches[-1]),
        "search_records": sizes["search"][-1],
        "consortium_p95_ms": cons["p95_ms"],
        "consortium_organisations": sizes["consortium"],
        "hub_peak_rss_mb": ing["hub_tree_peak_rss_mb"],
        "hub_main_peak_rss_mb": ing["hub_peak_rss_mb"],
        "search_process_peak_rss_mb": search_rss,
        "pipeline_vs_verify": proto["pipeline_vs_verify"],
        "load_rate_per_s": lo["rate_achieved_per_s"],
        "load_p50_ms": lo["latency_ms"]["service"]["p50"],
        "load_p99_ms": lo["latency_ms"]["service"]["p99"],
        "load_errors": lo["errors"],
        "targets": TARGETS,
        "met": {},
        "stages": stages,
        "total_s": round(time.perf_counter() - started, 1),
        "load_average": os.getloadavg(),
        "details": {"protocol": proto, "ingest": ing, "import": imp, "search": searches, "consortium": cons,
                    "load": lo},
    }
    report["met"] = {
        "ingest_vs_verify": report["ingest_vs_verify"] >= TARGETS["ingest_vs_verify"],
        "import_vs_sign": report["import_vs_sign"] >= TARGETS["import_vs_sign"],
        "incremental_large_vs_small": report["incremental_large_vs_small"] <= TARGETS["incremental_large_vs_small"],
        "search_p95_ms": report["search_p95_ms"] <= TARGETS["search_p95_ms"],
        "consortium_p95_ms": report["consortium_p95_ms"] <= TARGETS["consortium_p95_ms"],
        "hub_peak_rss_mb": report["hub_peak_rss_mb"] <= TARGETS["hub_peak_rss_mb"],
        "load_errors": report["load_errors"] == 0,  # None (the load benchmark failed) is not met
    }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", dest="profile", const="quick",
                      help="30k records ingested, searches at 10k/30k: under 5 minutes (default)")
    size.add_argument("--full", action="store_const", dest="profile", const="full",
                      help="1M records ingested, searches at 10k/100k/1M (DESIGN §8)")
    size.add_argument("--smoke", action="store_const", dest="profile", const="smoke",
                      help="tiny sizes: checks that every benchmark runs (CI), measures nothing")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite",
                        help="the hub's and the nodes' database in the ingest and load benchmarks")
    parser.add_argument("--out", type=Path, help="also write the JSON object to this file")
    parser.add_argument("--plot", type=Path, help="draw ingest rate and search latency against records (PNG)")
    parser.set_defaults(profile="quick")
    args = parser.parse_args(argv)
    report = run(args.profile, args.backend)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.plot:
        from benchmarks.plot import plot

        plot([report], args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
