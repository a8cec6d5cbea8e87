"""Search over loopback HTTP, one request at a time: ``python -m benchmarks.search_http DIR [--runs N]``.

``DIR`` is a directory kept by ``python -m benchmarks.ingest --records N --keep DIR`` (its ``hub``
holds the N records, synced). The hub is started (``ncc serve``, accelerator on), warmed with a few
unmeasured queries, then every query class of ``benchmarks.load``'s mix (rare word, common word,
phrase, prefix, facet filters alone, a word with filters) is sent ``--runs`` times, anonymous and
with an analyst token, **closed loop** over one keep-alive connection: each figure is a request's
whole latency as a client sees it (HTTP, auth, search with facets and total, the nodes' status,
JSON), with nothing else competing in the hub; ``hub_cpu_ms`` is the hub process's CPU time per
request (from ``/proc``: it does not grow with the machine's load the way latency does);
``hub_rss_mb`` the hub's resident memory right after the queries (accelerator built and serving),
``hub_rss_idle_mb`` the same 3 s later (searches paused: the hub has handed back what they left
free) and ``hub_peak_rss_mb`` its peak (VmHWM: the accelerator's build included). ``GET /healthz``
is timed the same way as the floor of aiohttp and the loopback itself. Prints one JSON object (p50/p95 ms per class and reader).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sqlite3
import statistics
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks._harness import HUB_ENV, Instance, _status_kb, http, process_cpu_s, vocab
from benchmarks.load import MIX, Query, _texts, query_mix

RUNS = 40
#: Seconds without a search after which the RSS is read again (node.memory.IdleTrim: 2 s).
IDLE_S = 3.0


def _pct(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
    }


async def _time(session: aiohttp.ClientSession, url: str, params: Any, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    async with session.get(url, params=params, headers=headers) as resp:
        body = await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"GET {url} {params}: HTTP {resp.status} {body[:300]!r}")
    return (time.perf_counter() - started) * 1000


def _rss_mb(pid: int | None, field: str = "VmRSS") -> float | None:
    """Resident memory of process ``pid`` in MB (None when unknown); ``field="VmHWM"``: its peak."""
    kb = _status_kb(pid, field) if pid is not None else 0
    return round(kb / 1024, 1) if kb else None


def _cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` so far (0 when unknown)."""
    return process_cpu_s(pid) if pid is not None else 0.0


async def measure(
    hub_url: str, queries: list[Query], token: str, runs: int, pid: int | None = None
) -> dict[str, Any]:
    by_kind: dict[str, list[Query]] = {}
    for q in queries:
        by_kind.setdefault(q.kind, []).append(q)
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        search = f"{hub_url}/api/v1/search"
        for q in queries[:20]:  # warm-up (the accelerator is built at start; caches)
            await _time(session, search, list(q.params), {})
        out: dict[str, Any] = {
            "healthz": _pct([await _time(session, f"{hub_url}/healthz", None, {}) for _ in range(runs)])
        }
        for kind in MIX:
            pool = by_kind.get(kind) or []
            for reader, headers in (("anonymous", {}), ("analyst", {"Authorization": f"Bearer {token}"})):
                cpu = _cpu_s(pid)
                samples = [
                    await _time(session, search, list(pool[i % len(pool)].params), headers)
                    for i in range(runs)
                ]
                out.setdefault(kind, {})[reader] = {
                    **_pct(samples),
                    "hub_cpu_ms": round((_cpu_s(pid) - cpu) / runs * 1000, 2),
                }
    return out


def _until_accelerated(url: str, fast_ms: float = 1000, deadline_s: float = 1800) -> float:
    """Seconds from the first search until searches answer from the accelerator: above 100k documents it
    is built in the background on the first search while SQL answers (slowly at 1M: a first search
    may take minutes), and this benchmark measures the hub serving, not building."""
    started = time.perf_counter()
    quick = 0
    while quick < 3:
        if time.perf_counter() - started > deadline_s:
            raise RuntimeError(f"searches still slow after {deadline_s:.0f} s")
        t = time.perf_counter()
        status, _ = http("GET", f"{url}/api/v1/search?q=warm", timeout=deadline_s)
        if status != 200:
            raise RuntimeError(f"hub search answered {status}")
        quick = quick + 1 if (time.perf_counter() - t) * 1000 < fast_ms else 0
        time.sleep(0.5)
    return round(time.perf_counter() - started, 1)


def run(root: Path, runs: int = RUNS, seed: int = 7, accelerator: bool = True,
        mmap_threshold_kib: int | None = None) -> dict[str, Any]:
    config = tomllib.loads((root / "hub" / "config.toml").read_text())
    hub = Instance(
        "hub",
        "hub",
        root,
        config["db"],
        env={**HUB_ENV, "NCC_SEARCH_ACCELERATOR": str(accelerator).lower(),
             **({} if mmap_threshold_kib is None else {"NCC_MALLOC_MMAP_THRESHOLD_KIB": str(mmap_threshold_kib)})},
        port=int(config["port"]),
    )
    with sqlite3.connect(root / "hub" / "ncc.db") as conn:
        ids = [
            (r[0], r[1])
            for r in conn.execute(
                "SELECT id, origin FROM hub_records WHERE deleted = 0 AND visibility = 'public' LIMIT 2000"
            )
        ]
        records = conn.execute("SELECT COUNT(*) FROM hub_records").fetchone()[0]
    load_before = os.getloadavg()
    hub.start()
    try:
        token = hub.token("analyst")
        rng = random.Random(seed)
        queries = query_mix(vocab(), _texts(hub, token, ids, rng), rng, size=600)
        ready_s = _until_accelerated(hub.url)
        pid = hub.proc.pid if hub.proc else None
        classes = asyncio.run(measure(hub.url, queries, token, runs, pid))
        rss = _rss_mb(pid)
        time.sleep(IDLE_S)  # the hub hands back what the searches left free once they pause
        rss_idle, rss_peak = _rss_mb(pid), _rss_mb(pid, "VmHWM")
    finally:
        with contextlib.suppress(Exception):
            hub.stop()
    return {
        "benchmark": "search_http",
        "records": records,
        "runs": runs,
        "classes": classes,
        "hub_rss_mb": rss,
        "hub_rss_idle_mb": rss_idle,
        "hub_peak_rss_mb": rss_peak,
        "accelerated_after_s": ready_s,
        "accelerator": accelerator,
        "malloc_mmap_threshold_kib": mmap_threshold_kib,  # None: the hub's setting
        "load_average": [load_before, os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.search_http", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "dir", type=Path, help="a directory kept by python -m benchmarks.ingest --keep DIR (SQLite)"
    )
    parser.add_argument("--runs", type=int, default=RUNS, help="requests per class and reader")
    parser.add_argument(
        "--no-accelerator", action="store_true", help="serve from the SQL path (search_accelerator = false)"
    )
    parser.add_argument(
        "--mmap-threshold-kib", type=int, help="the hub's malloc_mmap_threshold_kib (0: glibc's dynamic threshold)"
    )
    args = parser.parse_args(argv)
    if not (args.dir / "hub" / "config.toml").exists():
        parser.error(f"{args.dir} holds no hub/config.toml (run benchmarks.ingest --keep DIR first)")
    print(json.dumps(run(args.dir, args.runs, accelerator=not args.no_accelerator,
                         mmap_threshold_kib=args.mmap_threshold_kib), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
