"""Search under ingest, with real processes: ``python -m benchmarks.load [--records N] [--rate R]
[--duration S] [--backend sqlite|postgres]``.

What it does, all in a temporary directory (PostgreSQL: databases created and dropped):

1. ``ncc init`` a hub and two nodes, enrolls both; the *seed* node (AT, ``--seed-records``, default
   N/10) is pulled completely by ``ncc sync`` so that searches have something to find; the *feed*
   node (BE, N records, benchmarks._harness.bulk_load) is suspended at the hub until the window;
2. starts the hub and both nodes (``ncc serve`` on free loopback ports), warms the hub's search with
   a few unmeasured queries;
3. the window: the hub admin re-activates BE and asks for a pull (``POST /api/v1/sync``) — the hub
   ingests BE's whole feed — and at the same instant an **open-loop** client starts sending
   ``GET /api/v1/search`` at a fixed rate for ``--duration`` seconds. Arrival times are fixed in
   advance (request *i* is due at ``t0 + i/rate``) and a request is sent at its time whether or not
   earlier ones were answered, so a slow server cannot slow the load down (no coordinated omission).
   Latency is reported both from the send (``service``) and from the scheduled arrival
   (``scheduled``: includes any delay the client itself added). The load is bounded: at most
   ``--max-inflight`` requests are outstanding (an arrival that finds the limit reached is not sent
   and counts as an error, ``client_inflight_limit``) and each has a ``--timeout``;
4. the hub's ``ncc_ingest_records_total`` (``/metrics``) is sampled every half second, giving how
   many records the hub ingested during the window and at what rate.

The query mix is drawn from the dataset: rare terms (words of a single sub-domain label, ~1 % of
records), common terms (words that occur in about a third of the records), phrases (word pairs
taken from records the hub holds), prefixes (what a person types), facet filters alone and with a
term; 30 % of the requests carry an analyst token, the rest are anonymous.

Prints one JSON object; exits 1 when any request failed (any non-200 answer, transport error,
timeout or unsent arrival) or the pull failed. :func:`run` is the entry point for other runners
(``python -m benchmarks --quick``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks._harness import (
    HUB_ENV,
    NODE_ENV,
    WORDS,
    Databases,
    Instance,
    Vocab,
    bulk_load,
    enroll,
    http,
    init_all,
    vocab,
)

SEED, FEED = "AT", "BE"
MONITOR_INTERVAL_S = 0.5
ANALYST_SHARE = 0.3
#: query kind -> share of the requests
MIX = {"rare": 0.15, "common": 0.2, "phrase": 0.15, "prefix": 0.15, "facet": 0.15, "filtered": 0.2}


# -- the query mix -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    kind: str
    params: tuple[tuple[str, str], ...]
    analyst: bool


def _rare_terms() -> list[str]:
    """Words that occur in exactly one sub-domain label and nowhere in the generated text."""
    import schemas

    v = schemas.load_vocabularies()
    common = {w.lower() for w in WORDS}
    for name in ("knowledge_domains", "sectors", "technologies", "use_cases", "fields_of_activity"):
        for term in v[name]:
            common |= {w.lower() for w in re.findall(r"[^\W\d_]+", term.get("label", ""))}
    seen: Counter[str] = Counter()
    for term in v["subdomains"]:
        seen.update({w.lower() for w in re.findall(r"[^\W\d_]{6,}", term["label"])})
    return sorted(w for w, n in seen.items() if n == 1 and w not in common)


def query_mix(v: Vocab, texts: Sequence[str], rng: random.Random, size: int = 400) -> list[Query]:
    """``size`` queries in the proportions of :data:`MIX`, shuffled (the load cycles through them).

    ``texts`` are descriptions of records the hub holds: phrases are word pairs taken from them.
    """
    rare = _rare_terms()
    pairs = [" ".join(words[i:i + 2]) for t in texts if len(words := t.split()) > 2 for i in range(len(words) - 1)]
    if not pairs:
        raise ValueError("no record text to draw phrases from")

    def filters() -> list[tuple[str, str]]:
        dims: list[tuple[str, str]] = [
            ("domain", rng.choice(v.domains)), ("sector", rng.choice(v.sectors)),
            ("type", rng.choice(("organisation", "expert", "project", "facility"))),
            ("country", rng.choice((SEED, FEED))), ("technology", rng.choice(v.technologies)),
        ]
        return rng.sample(dims, rng.randint(1, 2))

    def make(kind: str) -> list[tuple[str, str]]:
        if kind == "rare":
            return [("q", rng.choice(rare))]
        if kind == "common":
            return [("q", rng.choice(WORDS))]
        if kind == "phrase":
            return [("q", f'"{rng.choice(pairs)}"')]
        if kind == "prefix":
            word = rng.choice([w for w in WORDS if len(w) >= 6])
            return [("q", word[: rng.randint(3, 5)])]
        if kind == "facet":
            return filters()
        return [("q", rng.choice(WORDS)), *filters()]

    kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=size)
    return [Query(k, tuple(make(k)), rng.random() < ANALYST_SHARE) for k in kinds]


# -- the open-loop client ----------------------------------------------------------------------


@dataclass
class Sample:
    """One scheduled arrival. Times are seconds of the event loop's clock."""

    kind: str
    analyst: bool
    scheduled: float
    sent: float | None = None
    done: float | None = None
    error: str | None = None
    total: int | None = None  # the answer's ``total`` (how much the query matched)


async def _one(session: aiohttp.ClientSession, url: str, query: Query, headers: dict[str, str],
               sample: Sample, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    sample.sent = loop.time()
    try:
        async with session.get(url, params=list(query.params), headers=headers,
                               timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            body = await resp.read()
            if resp.status != 200:
                code = ""
                with contextlib.suppress(ValueError, AttributeError):
                    code = str(json.loads(body).get("code") or "")
                sample.error = f"http_{resp.status}" + (f":{code}" if code else "")
            else:
                try:
                    data = json.loads(body)
                    if not isinstance(data.get("total"), int) or not isinstance(data.get("results"), list):
                        sample.error = "bad_body"
                    else:
                        sample.total = data["total"]
                except (ValueError, AttributeError):
                    sample.error = "bad_body"
    except TimeoutError:
        sample.error = "timeout"
    except aiohttp.ClientError as exc:
        sample.error = f"transport:{exc.__class__.__name__}"
    finally:
        sample.done = loop.time()


async def open_loop(session: aiohttp.ClientSession, url: str, queries: Sequence[Query], tokens: dict[bool, str],
                    rate: float, duration: float, max_inflight: int, timeout: float, t0: float) -> list[Sample]:
    """Send ``queries`` (cycling) to ``url`` at ``rate`` per second from ``t0`` for ``duration`` seconds.

    Arrival *i* is due at ``t0 + i / rate`` regardless of answers; an arrival that finds
    ``max_inflight`` requests outstanding is recorded as ``client_inflight_limit`` and not sent.
    Returns once every sent request is answered or timed out.
    """
    loop = asyncio.get_running_loop()
    samples: list[Sample] = []
    inflight: set[asyncio.Task[None]] = set()
    count = math.ceil(duration * rate)
    for i in range(count):
        due = t0 + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        query = queries[i % len(queries)]
        sample = Sample(query.kind, query.analyst, due)
        samples.append(sample)
        if len(inflight) >= max_inflight:
            sample.error = "client_inflight_limit"
            continue
        headers = {"Authorization": f"Bearer {tokens[True]}"} if query.analyst else {}
        task = loop.create_task(_one(session, url, query, headers, sample, timeout))
        inflight.add(task)
        task.add_done_callback(inflight.discard)
    if inflight:
        await asyncio.wait(inflight)
    return samples


# -- the ingest side ---------------------------------------------------------------------------

_ACCEPTED = re.compile(r'^ncc_ingest_records_total\{([^}]*)\}\s+([0-9.eE+]+)\s*$', re.MULTILINE)


def accepted_from_metrics(text: str, country: str) -> int:
    """Records of ``country`` the hub accepted, from its Prometheus text."""
    total = 0.0
    for labels, value in _ACCEPTED.findall(text):
        if f'node="{country}"' in labels and 'outcome="accepted"' in labels:
            total += float(value)
    return int(total)


async def monitor(session: aiohttp.ClientSession, hub_url: str, t0: float, stop: asyncio.Event,
                  timeline: list[tuple[float, int]]) -> None:
    """Append (seconds since t0, records of FEED accepted) every MONITOR_INTERVAL_S until ``stop``."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.get(f"{hub_url}/metrics", timeout=aiohttp.ClientTimeout(total=5)) as resp:
                text = await resp.text()
            timeline.append((loop.time() - t0, accepted_from_metrics(text, FEED)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), MONITOR_INTERVAL_S)


async def _admin(session: aiohttp.ClientSession, method: str, url: str, token: str, body: Any = None) -> Any:
    async with session.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"},
                               timeout=aiohttp.ClientTimeout(total=None)) as resp:
        data = await resp.json(content_type=None)
        if resp.status != 200:
            raise RuntimeError(f"{method} {url}: {resp.status} {data}")
        return data


# -- the window --------------------------------------------------------------------------------


@dataclass
class Window:
    samples: list[Sample]
    timeline: list[tuple[float, int]]
    t0: float
    sync_done_s: float | None  # seconds after t0 at which POST /api/v1/sync answered
    sync_result: dict[str, Any] | None
    sync_error: str | None


async def window(hub: Instance, queries: Sequence[Query], tokens: dict[bool, str], admin: str, rate: float,
                 duration: float, max_inflight: int, timeout: float) -> Window:
    loop = asyncio.get_running_loop()
    search_url = f"{hub.url}/api/v1/search"
    connector = aiohttp.TCPConnector(limit=max_inflight)
    async with aiohttp.ClientSession(connector=connector) as load, aiohttp.ClientSession() as ctl:
        for query in queries[:30]:  # warm-up (accelerator, caches): not measured
            async with load.get(search_url, params=list(query.params),
                                headers={"Authorization": f"Bearer {tokens[True]}"} if query.analyst else {}) as r:
                await r.read()
        stop = asyncio.Event()
        timeline: list[tuple[float, int]] = []
        t0 = loop.time()
        mon = loop.create_task(monitor(ctl, hub.url, t0, stop, timeline))
        sync_done: list[float] = []

        async def ingest() -> dict[str, Any]:
            await _admin(ctl, "POST", f"{hub.url}/api/v1/nodes/{FEED}", admin, {"status": "active"})
            result = dict(await _admin(ctl, "POST", f"{hub.url}/api/v1/sync", admin))
            sync_done.append(loop.time() - t0)
            return result

        sync = loop.create_task(ingest())
        try:
            samples = await open_loop(load, search_url, queries, tokens, rate, duration, max_inflight, timeout, t0)
        finally:
            stop.set()
            await mon
            result: dict[str, Any] | None = None
            error: str | None = None
            if not sync.done():  # still ingesting: the window is over, stop asking
                sync.cancel()
                await asyncio.gather(sync, return_exceptions=True)
            elif sync.exception() is not None:
                error = repr(sync.exception())[:500]
            else:
                result = sync.result()
    return Window(samples, timeline, t0, sync_done[0] if sync_done else None, result, error)


# -- summary -----------------------------------------------------------------------------------


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50/p90/p99/max/mean in ms of ``values`` (seconds), nearest rank."""
    if not values:
        return {"p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    return {"p50": round(rank(50) * 1000, 1), "p90": round(rank(90) * 1000, 1), "p99": round(rank(99) * 1000, 1),
            "max": round(ordered[-1] * 1000, 1), "mean": round(sum(ordered) / len(ordered) * 1000, 1)}


def _mean(values: Sequence[int]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def latency(samples: Sequence[Sample]) -> dict[str, Any]:
    answered = [s for s in samples if s.done is not None and s.sent is not None]
    return {"requests": len(samples), "errors": sum(1 for s in samples if s.error),
            "service_ms": percentiles([s.done - s.sent for s in answered]),  # type: ignore[operator]
            "scheduled_ms": percentiles([s.done - s.scheduled for s in answered])}  # type: ignore[operator]


def ingest_summary(w: Window, duration: float, expected: int) -> dict[str, Any]:
    """Records the hub ingested during the window, when ingest ended, and the rate meanwhile."""
    inside = [(t, n) for t, n in w.timeline if t <= duration]
    at_end = inside[-1][1] if inside else 0
    finished = next((t for t, n in w.timeline if n >= expected), None)
    if w.sync_done_s is not None:
        finished = w.sync_done_s if finished is None else min(finished, w.sync_done_s)
    started = next((t for t, n in w.timeline if n > 0), None)
    active_end = min(finished, duration) if finished is not None else (inside[-1][0] if inside else duration)
    seconds = [n for t, n in w.timeline if t <= duration]
    per_second = [b - a for a, b in zip([0, *seconds], seconds, strict=False)]
    pull = (w.sync_result or {}).get("results", [])
    feed_pull = next((r for r in pull if r.get("country") == FEED), None)
    return {
        "feed_records_shareable": expected,
        "records_in_window": at_end,
        "first_page_s": round(started, 2) if started is not None else None,
        "active_s": round(active_end, 2),
        "per_s": round(at_end / active_end, 1) if active_end > 0 else None,
        "finished_in_window": finished is not None and finished <= duration,
        "finished_at_s": round(finished, 2) if finished is not None else None,
        "monitor_samples": len(w.timeline),
        "max_step_records": max(per_second, default=0),
        "pull": feed_pull,
        "error": w.sync_error or (feed_pull or {}).get("error"),
    }


def machine(loadavg_before: tuple[float, float, float]) -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "loadavg_before": [round(x, 2) for x in loadavg_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def summarize(w: Window, rate: float, duration: float, max_inflight: int, timeout: float,
              expected: int) -> dict[str, Any]:
    samples = w.samples
    kinds = Counter(s.error for s in samples if s.error)
    sent = [s for s in samples if s.sent is not None]
    ok = [s for s in samples if s.error is None]
    ing = ingest_summary(w, duration, expected)
    end = ing["finished_at_s"]
    during = [s for s in samples if end is None or s.scheduled - w.t0 < end]
    after = [s for s in samples if end is not None and s.scheduled - w.t0 >= end]
    lag = [s.sent - s.scheduled for s in sent]  # type: ignore[operator]
    last_done = max((s.done for s in samples if s.done is not None), default=w.t0)
    overall = latency(samples)
    return {
        "rate_asked_per_s": rate,
        "rate_achieved_per_s": round(len(sent) / duration, 2),
        "answered_per_s": round(len(ok) / max(last_done - w.t0, 1e-9), 2),
        "duration_s": duration,
        "max_inflight": max_inflight,
        "timeout_s": timeout,
        "requests": len(samples),
        "ok": len(ok),
        "errors": sum(kinds.values()),
        "error_kinds": dict(sorted(kinds.items())),
        "latency_ms": {"service": overall["service_ms"], "scheduled": overall["scheduled_ms"]},
        "client_send_lag_ms": {"p99": percentiles(lag)["p99"], "max": percentiles(lag)["max"]},
        "by_kind": {k: {"requests": v["requests"], "errors": v["errors"], "service_p50": v["service_ms"]["p50"],
                        "service_p99": v["service_ms"]["p99"], "scheduled_p99": v["scheduled_ms"]["p99"],
                        "mean_total": _mean([s.total for s in samples if s.kind == k and s.total is not None])}
                    for k in MIX if (v := latency([s for s in samples if s.kind == k]))["requests"]},
        "by_auth": {label: latency([s for s in samples if s.analyst is flag])
                    for label, flag in (("anonymous", False), ("analyst", True))},
        "during_ingest": latency(during),
        "after_ingest": latency(after),
        "ingest": ing,
    }


# -- set-up and the whole run ------------------------------------------------------------------


def _texts(hub: Instance, token: str, ids: Sequence[tuple[str, str]], rng: random.Random, n: int = 40) -> list[str]:
    """Descriptions of ``n`` records the hub holds (phrases are drawn from them)."""
    out = []
    for rid, _ in rng.sample(list(ids), min(n, len(ids))):
        status, env = http("GET", f"{hub.url}/api/v1/records/{rid}", token, timeout=30)
        if status != 200:
            raise RuntimeError(f"hub GET {rid}: {status} {env}")
        body = env.get("payload", {})
        out += [str(body[k]) for k in ("description", "objective", "title") if isinstance(body.get(k), str)]
    return out


def run(records: int = 50_000, rate: float = 25.0, duration: float = 30.0, backend: str = "sqlite", *,
        seed_records: int | None = None, max_inflight: int = 64, timeout: float = 10.0,
        root: Path | None = None, seed: int = 7) -> dict[str, Any]:
    """Run the whole benchmark (set-up, window, clean-up) and return its JSON object.

    ``records`` is the size of the feed ingested during the window; ``seed_records`` (default
    ``max(1000, records // 10)``) what the hub holds before it. Processes are stopped and
    PostgreSQL databases dropped whatever happens. Raises RuntimeError when set-up fails.
    """
    if backend not in ("sqlite", "postgres"):
        raise ValueError(f"backend must be sqlite or postgres, not {backend!r}")
    if rate <= 0 or duration <= 0 or max_inflight < 1 or records < 1:
        raise ValueError("records, rate, duration and max_inflight must be positive")
    seed_records = seed_records if seed_records is not None else max(1000, records // 10)
    loadavg_before = os.getloadavg()
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if root is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ncc-bench-load-")))
        insts: list[Instance] = []
        dbs = Databases(backend, root)
        db_for = dbs.url

        try:
            hub = Instance("hub", "hub", root, db_for("hub"), env=HUB_ENV)
            node_seed = Instance("node-seed", "node", root, db_for("node-seed"), SEED, env=NODE_ENV)
            node_feed = Instance("node-feed", "node", root, db_for("node-feed"), FEED, env=NODE_ENV)
            insts += [hub, node_seed, node_feed]
            init_all(insts)
            hub.start()
            enroll(hub, node_seed)
            enroll(hub, node_feed)
            hub.stop()
            hub.ncc("hub", "suspend", FEED)  # not pulled until the window opens
            seed_ids = bulk_load(node_seed.data_dir, seed_records, seed=1)
            feed_ids = bulk_load(node_feed.data_dir, records, seed=2)
            node_seed.start()
            hub.ncc("sync", "--country", SEED)
            node_feed.start()
            tokens = {False: "", True: hub.token("analyst")}
            admin = hub.token("admin")
            hub.start()
            rng = random.Random(seed)
            queries = query_mix(vocab(), _texts(hub, tokens[True], seed_ids, rng), rng)
            setup_s = time.perf_counter() - started
            w = asyncio.run(window(hub, queries, tokens, admin, rate, duration, max_inflight, timeout))
            hub_alive = hub.proc is not None and hub.proc.poll() is None
        finally:
            for inst in insts:
                with contextlib.suppress(Exception):
                    inst.stop()
            dbs.drop("benchmarks.load")
    report = {"benchmark": "load", "backend": backend, "records": records, "seed_records": seed_records,
              "seed_shareable": len(seed_ids), "query_mix": MIX, "analyst_share": ANALYST_SHARE,
              **summarize(w, rate, duration, max_inflight, timeout, len(feed_ids)),
              "hub_alive": hub_alive, "setup_s": round(setup_s, 1),
              "total_s": round(time.perf_counter() - started, 1), "machine": machine(loadavg_before)}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000, help="records the hub ingests during the window")
    parser.add_argument("--seed-records", type=int, help="records the hub holds before (default max(1000, N/10))")
    parser.add_argument("--rate", type=float, default=25.0, help="search requests per second (open loop)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--max-inflight", type=int, default=64, help="outstanding requests at most")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    args = parser.parse_args(argv)
    if args.records < 100 or args.rate <= 0 or args.duration <= 0 or args.max_inflight < 1:
        parser.error("--records ≥ 100, --rate, --duration and --max-inflight > 0")
    report = run(args.records, args.rate, args.duration, args.backend, seed_records=args.seed_records,
                 max_inflight=args.max_inflight, timeout=args.timeout)
    print(json.dumps(report, indent=2))
    return 0 if report["errors"] == 0 and report["ingest"]["error"] is None else 1


if __name__ == "__main__":
    sys.exit(main())
