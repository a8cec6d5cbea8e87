"""Hub ingest with real processes: ``python -m benchmarks.ingest [--records N] [--backend sqlite|postgres]``.

What it does, all in temporary directories (PostgreSQL: databases created and dropped):

1. ``ncc init`` a hub and a node (AT) — plus, for the incremental measurement, a second hub and a
   1k-record node (BE); the hubs ``ncc serve`` just long enough for ``ncc enroll``;
2. bulk-loads N signed, schema-valid records (~1–1.5 KB, 70 % organisations, 5 % national) into the
   stopped node (benchmarks._harness.bulk_load: the rows Publisher would write, node search index
   included), then starts the node (``ncc serve``);
3. measures bare Ed25519 verification on one pinned core (``verify_only_per_s``, median before and after
   the ingest, same run), then times ``ncc sync --data-dir HUB`` (a real hub process) pulling the whole
   feed, sampling the process tree's memory from /proc (VmHWM/VmRSS);
4. incremental sync: on the 1k node and on the N node (each already fully synced by its own hub),
   changes 100 records through the node's ``PUT /api/v1/records/{id}`` and times the pull of those 100
   changes; median of ``--rounds`` rounds.

Prints one JSON object. ``ingest_per_s`` uses the pull's own duration (``elapsed_s`` reported by
``ncc sync``: HTTP pull + verify + validate + store + index + cursor); ``ingest_wall_per_s`` includes the
process start. Quick run: ``--records 100000``; full run (DESIGN §8): ``--records 1000000``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    HUB_ENV,
    NODE_ENV,
    Databases,
    Instance,
    bulk_load,
    children_cpu_s,
    clean_env,
    enroll,
    http,
    init_all,
    one_core,
    payload,
    process_cpu_s,
    run_measured,
    vocab,
)


def verify_rate(samples: int = 2000, repeat: int = 5) -> float:
    """Bare Ed25519 verifications per second on one core, over realistic signing inputs."""
    from federation.envelope import record_id, sign_record
    from federation.keys import b64url_decode, generate_private_key, kid_for, public_key_raw

    key = generate_private_key()
    kid = kid_for("AT", public_key_raw(key))
    rng = random.Random(5)
    v = vocab()
    prepared = []
    for i in range(samples):
        rtype, visibility, body = payload(rng, "AT", v)
        env = sign_record({"ncc": 1, "id": record_id("AT", rtype, f"00000000-0000-4000-8000-{i:012d}"),
                           "type": rtype, "schema": f"{rtype}/1", "origin": "AT", "version": 1,
                           "issued_at": "2026-01-01T00:00:00Z", "visibility": visibility, "deleted": False,
                           "payload": body}, key, kid)
        prepared.append((b64url_decode(env.sig.value), env.signing_input()))
    public = key.public_key()
    with one_core():
        for sig, data in prepared[:200]:
            public.verify(sig, data)
        rates = []
        for _ in range(repeat):
            start = time.perf_counter()
            for sig, data in prepared:
                public.verify(sig, data)
            rates.append(len(prepared) / (time.perf_counter() - start))
    return statistics.median(rates)


def cursor_probe(hub: Instance) -> Callable[[], int]:
    """How far the hub has read its nodes' feeds (sum of cursors), read beside the running pull."""
    query = "SELECT COALESCE(SUM(cursor), 0) FROM hub_pull_state"
    if hub.db.startswith("sqlite://"):
        path = hub.db.removeprefix("sqlite://").split("?")[0]

        def read() -> int:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)) as conn:
                return int(conn.execute(query).fetchone()[0])
        return read

    def read_pg() -> int:
        out = subprocess.run(["psql", hub.db, "-tAc", query], capture_output=True, text=True, timeout=5, check=True)
        return int(out.stdout.strip())
    return read_pg


def curve(progress: list[tuple[float, int]], points: int = 20, min_s: float = 3.0) -> list[dict[str, float]]:
    """Ingest rate against records held: the pull's progress samples cut into at most ``points``
    windows of about equal record counts, each at least ``min_s`` long (the cursor moves a page at a
    time), each with its mean rate."""
    samples = [(t, n) for t, n in progress if n > 0]
    if len(samples) < 2:
        return []
    total = samples[-1][1]
    step = max(1, total // points)
    out, (t0, n0) = [], samples[0]
    for t, n in samples[1:]:
        if (n - n0 >= step and t - t0 >= min_s) or (t, n) == samples[-1]:
            if t > t0 and n > n0:
                out.append({"records": n, "per_s": round((n - n0) / (t - t0), 1)})
            t0, n0 = t, n
    return out


def sync(hub: Instance, probe: Callable[[], int] | None = None) -> tuple[dict[str, Any], float, Any]:
    done, wall, sampler = run_measured(hub.argv("sync"), clean_env(hub.env), probe)
    if done.returncode != 0:
        raise RuntimeError(f"ncc sync failed: {done.stderr.strip()[-2000:]}")
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if len(lines) != 1 or not lines[0]["ok"]:
        raise RuntimeError(f"unexpected ncc sync output: {done.stdout[-2000:]}")
    return lines[0], wall, sampler


def change(node: Instance, token: str, ids: list[tuple[str, str]], n: int, rng: random.Random) -> None:
    """Change ``n`` records through the node's API (GET, then PUT with the version held)."""
    for rid, _ in rng.sample(ids, n):
        status, env = http("GET", f"{node.url}/api/v1/records/{rid}", token)
        if status != 200:
            raise RuntimeError(f"GET {rid}: {status} {env}")
        body = dict(env["payload"])
        body["keywords"] = [f"changed{rng.randrange(10**9)}", "incremental"]
        status, out = http("PUT", f"{node.url}/api/v1/records/{rid}", token,
                           {"payload": body, "version": env["version"]})
        if status != 200:
            raise RuntimeError(f"PUT {rid}: {status} {out}")


def run(records: int, backend: str, rounds: int, small: int, root: Path, node_index: bool,
        keep: bool = False, verify_samples: int = 2000) -> dict[str, Any]:
    dbs = Databases(backend, root)
    db_for = dbs.url
    insts: list[Instance] = []
    try:
        hub = Instance("hub", "hub", root, db_for("hub"), env=HUB_ENV)
        node = Instance("node", "node", root, db_for("node"), "AT", env=NODE_ENV)
        hub_s = Instance("hub-small", "hub", root, db_for("hub-small"), env=HUB_ENV)
        node_s = Instance("node-small", "node", root, db_for("node-small"), "BE", env=NODE_ENV)
        insts += [hub, node, hub_s, node_s]
        init_all(insts)
        for h, n in ((hub, node), (hub_s, node_s)):
            h.start()
            enroll(h, n)
            h.stop()  # the benchmark's pulls are `ncc sync` processes: nothing else pulls meanwhile

        t = time.perf_counter()
        shared = bulk_load(node.data_dir, records, seed=1, index=node_index)
        load_s = time.perf_counter() - t
        shared_s = bulk_load(node_s.data_dir, small, seed=2, index=node_index)

        verify_before = verify_rate(verify_samples)
        node.start()
        assert node.proc is not None
        node_cpu, hub_cpu = process_cpu_s(node.proc.pid), children_cpu_s()
        first, wall, sampler = sync(hub, cursor_probe(hub))
        node_cpu, hub_cpu = process_cpu_s(node.proc.pid) - node_cpu, children_cpu_s() - hub_cpu
        node_rate = (first["accepted"] + first["quarantined"]) / first["elapsed_s"]
        verify_after = verify_rate(verify_samples)
        verify_only = statistics.median([verify_before, verify_after])
        if first["accepted"] != len(shared):
            raise RuntimeError(f"hub accepted {first['accepted']} of {len(shared)} shareable records: {first}")

        node_s.start()
        sync(hub_s)
        rng = random.Random(9)
        tokens = {node.name: node.token("editor"), node_s.name: node_s.token("editor")}
        incremental: dict[str, list[float]] = {"small": [], "large": []}
        incremental_wall: dict[str, list[float]] = {"small": [], "large": []}
        for _ in range(rounds):
            for label, n, h, ids in (("small", node_s, hub_s, shared_s), ("large", node, hub, shared)):
                change(n, tokens[n.name], ids, 100, rng)
                res, w, _ = sync(h)
                if res["accepted"] != 100:
                    raise RuntimeError(f"incremental pull accepted {res['accepted']}, not 100: {res}")
                incremental[label].append(res["elapsed_s"])
                incremental_wall[label].append(w)
        small_s = statistics.median(incremental["small"])
        large_s = statistics.median(incremental["large"])
        return {
            "benchmark": "ingest",
            "backend": backend,
            "records": records,
            "shareable_records": len(shared),
            "pages": first["pages"],
            "node_bulk_load_s": round(load_s, 1),
            "node_search_index": node_index,
            "ingest_s": round(first["elapsed_s"], 2),
            "ingest_per_s": round(node_rate, 1),
            "ingest_wall_s": round(wall, 2),
            "ingest_wall_per_s": round(len(shared) / wall, 1),
            "verify_only_per_s": round(verify_only, 1),
            "verify_only_before_after": [round(verify_before, 1), round(verify_after, 1)],
            "ratio": round(node_rate / verify_only, 3),
            # CPU of the whole pull (process start included) per shareable record, in bare verifications:
            # the hub's `ncc sync` with its verification workers, and the node serving its feed.
            "hub_cpu_s": round(hub_cpu, 2),
            "node_cpu_s": round(node_cpu, 2),
            "hub_cpu_per_record_v": round(hub_cpu * verify_only / len(shared), 2),
            "node_cpu_per_record_v": round(node_cpu * verify_only / len(shared), 2),
            "ingest_curve": curve(sampler.progress),
            "target_ratio": 0.5,
            "aim_ratio": 0.8,
            "hub_peak_rss_mb": round(sampler.main_peak_kb / 1024, 1),
            "hub_tree_peak_rss_mb": round(sampler.tree_peak_kb / 1024, 1),
            "hub_tree_hwm_sum_mb": round(sampler.tree_hwm_kb / 1024, 1),
            "hub_processes": len(sampler.hwm),
            "target_rss_mb": 300,
            "incremental_small_records": small,
            "incremental_100_small_s": round(small_s, 4),
            "incremental_100_large_s": round(large_s, 4),
            "incremental_ratio": round(large_s / small_s, 2),
            "target_incremental_ratio": 1.5,
            "incremental_runs_s": {k: [round(x, 4) for x in v] for k, v in incremental.items()},
            "incremental_wall_runs_s": {k: [round(x, 3) for x in v] for k, v in incremental_wall.items()},
            "machine": machine(),
        }
    finally:
        for inst in insts:
            with contextlib.suppress(Exception):
                inst.stop()
        if keep:
            (root / "databases.json").write_text(json.dumps({i.name: i.db for i in insts}, indent=2))
        if not keep:
            dbs.drop("benchmarks.ingest")


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "libraries": {name: metadata.version(name) for name in
                      ("cryptography", "orjson", "jsonschema-rs", "aiohttp", "tortoise-orm", "aiosqlite", "asyncpg")},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="records on the large node (full run: 1000000)")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=3, help="incremental rounds of 100 changes (median)")
    parser.add_argument("--small", type=int, default=1000, help="records on the small node")
    parser.add_argument("--no-node-index", action="store_true",
                        help="skip the node's own search index in the bulk load (faster set-up; the hub is unaffected)")
    parser.add_argument("--keep", metavar="DIR",
                        help="work in DIR and keep it, PostgreSQL databases included (default: a temporary directory)")
    args = parser.parse_args(argv)
    if args.records < 100 or args.small < 100:
        parser.error("--records and --small must be ≥ 100")
    if args.keep:
        root = Path(args.keep)
        root.mkdir(parents=True, exist_ok=True)
        report = run(args.records, args.backend, args.rounds, args.small, root, not args.no_node_index, keep=True)
    else:
        with tempfile.TemporaryDirectory(prefix="ncc-bench-ingest-") as tmp:
            report = run(args.records, args.backend, args.rounds, args.small, Path(tmp), not args.no_node_index)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
