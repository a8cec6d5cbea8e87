"""Helpers shared by the process-level benchmarks: real ``ncc`` instances, databases, RSS sampling,
realistic record payloads and a fast bulk loader for a node.

Benchmark-only code: nothing in ``node/`` imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import resource
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from node import processes

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("NCC_TEST_PG", "postgres://postgres@127.0.0.1:5432/postgres")

# -- processes -------------------------------------------------------------------------------------


#: Benchmark instances: quiet logs; the hub pulls only when the benchmark says so, the nodes do not
#: retry notifications during a measurement.
HUB_ENV = {"NCC_LOG_LEVEL": "WARNING", "NCC_PULL_INTERVAL_S": "86400", "NCC_PULL_JITTER_S": "0",
           "NCC_ALLOW_PRIVATE_NODE_URLS": "true"}  # the benchmark's nodes listen on loopback
NODE_ENV = {"NCC_LOG_LEVEL": "WARNING", "NCC_NOTIFY_RETRY_S": "3600"}


free_port = processes.free_port


@contextlib.contextmanager
def one_core() -> Iterator[str]:
    """Run the block pinned to one core (the "bare rate of one core" the targets compare with); the
    process's affinity is restored after it, so that the processes it starts later (a hub, ``ncc
    import`` and their workers) get every core. Yields the core's name (``cpu0``; ``unpinned`` where
    affinity cannot be set).

    Until 2026-12-08 ``benchmarks.protocol`` pinned and never restored: in ``python -m benchmarks``,
    which runs it first, every later ingest, import and search ran on one core of two."""
    if not hasattr(os, "sched_setaffinity"):
        yield "unpinned"
        return
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(before)})
    except OSError:
        yield "unpinned"
        return
    try:
        yield f"cpu{min(before)}"
    finally:
        os.sched_setaffinity(0, before)


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a live process has used so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    """User + system CPU seconds of this process's waited-for descendants so far (a process forked from
    the preloaded interpreter, ``NCC_PRELOAD=1``, is not this process's child: it counts nothing)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return processes.clean_env(extra)


def http(method: str, url: str, token: str | None = None, body: Any = None, timeout: float = 60) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as err:
        raw, status = err.read(), err.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


@dataclass
class Instance:
    """One ``ncc`` instance made by ``ncc init`` under ``root`` and run by ``ncc serve``."""

    name: str
    role: str
    root: Path
    db: str
    country: str = ""
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / self.name

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "node.cli", *args, "--data-dir", str(self.data_dir)]

    def ncc(self, *args: str, timeout: float = 600) -> str:
        done = processes.run(self.argv(*args), timeout=timeout, env=clean_env(self.env), cwd=ROOT)
        if done.returncode != 0:
            raise RuntimeError(f"ncc {' '.join(args)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
        return done.stdout

    def init(self) -> None:
        args = ["init", "--role", self.role, "--port", str(self.port), "--db", self.db]
        if self.country:
            args += ["--country", self.country]
        self.ncc(*args)

    def start(self) -> None:
        log = (self.root / f"{self.name}.log").open("ab")
        try:
            self.proc = processes.spawn(self.argv("serve"), stdout=log, stderr=log, env=clean_env(self.env),
                                        cwd=ROOT)
        finally:
            log.close()
        try:
            processes.wait_ready([(self.name, self.proc, f"{self.url}/healthz")], timeout=60,
                                 log_tail=lambda _: f"see {self.root}/{self.name}.log")
        except processes.ProcessError as exc:
            raise RuntimeError(str(exc)) from None

    def stop(self) -> None:
        if self.proc is not None:
            processes.stop([self.proc], timeout=15)
        self.proc = None

    def token(self, role: str) -> str:
        return self.ncc("token", "create", "--role", role, "--subject", f"bench-{role}").strip().splitlines()[-1]


def init_all(instances: list[Instance]) -> None:
    """``ncc init`` of every instance at once: each applies the migration chain to a new database
    (~1.3 s of CPU, mostly waiting on its own database), so side by side they take the time of ~two."""
    with ThreadPoolExecutor(len(instances) or 1) as pool:
        list(pool.map(Instance.init, instances))


def enroll(hub: Instance, node: Instance) -> None:
    """``ncc hub invite`` + ``ncc enroll`` (the hub must be serving)."""
    token = hub.ncc("hub", "invite", node.country).strip().splitlines()[-1]
    node.ncc("enroll", "--hub", hub.url, "--token", token)


# -- PostgreSQL ------------------------------------------------------------------------------------


def _pg_admin(statement: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN, timeout=10)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def create_pg_database() -> tuple[str, str]:
    name = f"ncc_bench_{uuid.uuid4().hex[:10]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    return name, f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"


def drop_pg_database(name: str) -> None:
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Databases:
    """One database per benchmark instance: a SQLite file under ``root``, or a fresh PostgreSQL
    database that :meth:`drop` removes again."""

    def __init__(self, backend: str, root: Path) -> None:
        self.backend, self.root = backend, root
        self.made: list[str] = []

    def url(self, name: str) -> str:
        if self.backend == "sqlite":
            return f"sqlite://{self.root / name / 'ncc.db'}"
        db_name, url = create_pg_database()
        self.made.append(db_name)
        return url

    def drop(self, who: str) -> None:
        """Drop every PostgreSQL database made; clean-up goes on past a failure and says what is left."""
        for name in self.made:
            try:
                drop_pg_database(name)
            except Exception as exc:  # noqa: BLE001
                print(f"{who}: could not drop database {name}: {exc!r}", file=sys.stderr)


# -- memory ----------------------------------------------------------------------------------------


def _status_kb(pid: int, field_name: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (scans /proc/*/stat)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    out, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        out += kids
        frontier += kids
    return out


class RssSampler:
    """Samples a process (and its children, e.g. verification workers) every ``interval`` seconds.

    ``main_peak_kb`` is the main process's VmHWM (kernel-tracked peak); ``tree_peak_kb`` the largest
    sampled sum of VmRSS over the process tree; ``tree_hwm_kb`` the sum of every process's own peak
    (an upper bound of the tree's peak).
    """

    def __init__(self, pid: int, interval: float = 0.1, probe: Callable[[], int] | None = None,
                 probe_every: int = 10) -> None:
        self.pid, self.interval = pid, interval
        self.main_peak_kb = 0
        self.tree_peak_kb = 0
        self.hwm: dict[int, int] = {}
        #: (seconds since start, probe()) every ``probe_every`` samples, e.g. records ingested so far.
        self.progress: list[tuple[float, int]] = []
        self._probe, self._probe_every = probe, probe_every
        self._start = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        tick = 0
        kids: list[int] = []
        while not self._stop.is_set():
            if tick % 10 == 0:
                kids = _children(self.pid)
            tick += 1
            total = 0
            for p in [self.pid, *kids]:
                rss = _status_kb(p, "VmRSS")
                hwm = _status_kb(p, "VmHWM")
                if hwm:
                    self.hwm[p] = max(self.hwm.get(p, 0), hwm)
                total += rss
            self.main_peak_kb = max(self.main_peak_kb, self.hwm.get(self.pid, 0))
            self.tree_peak_kb = max(self.tree_peak_kb, total)
            if self._probe is not None and tick % self._probe_every == 1:
                with contextlib.suppress(Exception):  # the database may be busy or not there yet
                    self.progress.append((round(time.perf_counter() - self._start, 2), self._probe()))
            self._stop.wait(self.interval)

    @property
    def tree_hwm_kb(self) -> int:
        return sum(self.hwm.values())


def run_measured(argv: list[str], env: dict[str, str], probe: Callable[[], int] | None = None,
                 ) -> tuple[subprocess.CompletedProcess[str], float, RssSampler]:
    """Run a command, sampling its memory (and ``probe()`` once a second); return (result, wall
    seconds, sampler)."""
    start = time.perf_counter()
    proc = processes.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    with RssSampler(proc.pid, probe=probe) as sampler:
        out, err = proc.communicate()
    processes.stop([proc])  # already exited: what is left of its process group
    wall = time.perf_counter() - start
    return subprocess.CompletedProcess(argv, proc.returncode, out, err), wall, sampler


# -- payloads --------------------------------------------------------------------------------------

WORDS = (  # noqa: SIM905 - a word list reads better as text
    "security network cryptography quantum resilient grid energy health finance incident response forensic "
    "malware analysis threat intelligence supply chain firmware embedded industrial control cloud identity "
    "privacy governance risk assessment certification audit training exercise range penetration testing "
    "vulnerability disclosure sovereign research innovation platform hardware software secure development "
    "operations monitoring detection anomaly machine learning data protection authentication zero trust "
    "Sicherheit Kryptografie Netzwerk Forschung Schulung Energienetze sécurité réseau recherche données "
    "seguridad investigación redes bezpieczeństwo badania sieci kyberturvallisuus tutkimus verkko Österreich"
).split()


@dataclass(frozen=True)
class Vocab:
    domains: list[str]
    subdomains: dict[str, list[str]]
    sectors: list[str]
    technologies: list[str]
    use_cases: list[str]
    roles: list[str]
    org_types: list[str]
    foas: list[str]


def vocab() -> Vocab:
    import schemas

    v = schemas.load_vocabularies()
    ids = {name: [t["id"] for t in terms] for name, terms in v.items()}
    subs: dict[str, list[str]] = {}
    for t in v["subdomains"]:
        subs.setdefault(t["parent"], []).append(t["id"])
    return Vocab(ids["knowledge_domains"], subs, ids["sectors"], ids["technologies"], ids["use_cases"],
                 ids["ecsf_role_profiles"], ids["organisation_types"], ids["fields_of_activity"])


def _text(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(low, high))).capitalize()


def payload(rng: random.Random, country: str, v: Vocab) -> tuple[str, str, dict[str, Any]]:
    """A realistic (about 1–1.5 KB) payload: (type, visibility, payload)."""
    kind = rng.choices(("organisation", "expert", "project", "facility"), weights=(70, 15, 10, 5))[0]
    visibility = rng.choices(("public", "network", "national"), weights=(85, 10, 5))[0]
    doms = rng.sample(v.domains, rng.randint(1, 3))
    tags: dict[str, Any] = {
        "domains": doms,
        "subdomains": [rng.choice(v.subdomains[d]) for d in doms if v.subdomains.get(d)],
        "sectors": rng.sample(v.sectors, rng.randint(0, 3)),
        "technologies": rng.sample(v.technologies, rng.randint(0, 2)),
    }
    name = _text(rng, 2, 5)
    city = rng.choice(("Wien", "Graz", "Linz", "Salzburg", "Innsbruck", "Brno", "Gent", "Liège"))
    contact = {"first_name": rng.choice(("Jürgen", "Anna", "Zoë", "Łukasz")),
               "family_name": rng.choice(("Größ", "Huber", "Dvořák", "Müller")),
               "email": f"contact{rng.randrange(10**6)}@example.eu", "position": "Head of research"}
    if kind == "organisation":
        body: dict[str, Any] = {
            "legal_name": f"{name} GmbH", "national_name": name, "country": country,
            "website": f"https://www.org{rng.randrange(10**6)}.example.eu/",
            "org_type": rng.choice(v.org_types), "sme": rng.random() < 0.5,
            "identifiers": {"pic": str(rng.randrange(10**8, 10**9)), "registration_number": f"FN {rng.randrange(10**6)}a"},
            "fields_of_activity": rng.sample(v.foas, rng.randint(1, 2)),
            **tags, "use_cases": rng.sample(v.use_cases, rng.randint(0, 1)),
            "description": _text(rng, 25, 60)[:800], "keywords": rng.sample(WORDS, 3),
            "address": {"street": f"Hauptstraße {rng.randint(1, 200)}", "postcode": "1090", "city": city,
                        "country": country},
            "contact": contact,
            "membership": {"status": "registered", "assessed_at": "2026-03-12T09:30:00Z", "assessed_by": "NCC"},
            "consent": {"share_with_eccc_and_nccs": True},
        }
    elif kind == "expert":
        body = {
            "name": f"{contact['first_name']} {contact['family_name']}", "country": country,
            "roles": rng.sample(v.roles, rng.randint(1, 2)), **tags, "languages": ["en", "de"],
            "description": _text(rng, 20, 50)[:800], "keywords": rng.sample(WORDS, 3),
            "email": contact["email"], "consent": {"given": True, "at": "2026-02-01T08:15:00Z", "scope": "public"},
        }
    elif kind == "project":
        body = {
            "grant_id": rng.randrange(100000000, 110000000), "acronym": name.split()[0].upper()[:20],
            "title": _text(rng, 5, 12), "programme": "HORIZON", "call": "HORIZON-CL3-2021-CS-01",
            "start_date": "2022-10-01", "end_date": "2025-09-30", "total_cost": "4999862.50",
            "eu_contribution": "4999862.5",
            "coordinator": f"urn:ncc:{country}:organisation:{uuid.UUID(int=rng.getrandbits(128))}",
            "objective": _text(rng, 40, 90), **tags, "use_cases": rng.sample(v.use_cases, rng.randint(0, 1)),
            "keywords": rng.sample(WORDS, 3),
        }
    else:
        body = {
            "name": f"Cyber Range {city} {name}", "country": country,
            "operator": f"urn:ncc:{country}:organisation:{uuid.UUID(int=rng.getrandbits(128))}",
            "description": _text(rng, 20, 50)[:800], "capabilities": ["Red/blue team training", _text(rng, 3, 6)],
            **tags, "location": {"city": city, "country": country}, "contact": contact,
            "keywords": rng.sample(WORDS, 3),
        }
    return kind, visibility, body


# -- bulk load of a node ---------------------------------------------------------------------------

_W: dict[str, Any] = {}


def _worker_init(data_dir: str, country: str) -> None:
    from node.config import load_settings
    from node.context import Keyring, build_registry

    settings = load_settings(Path(data_dir), env={})
    _W.update(key=Keyring(settings).key(), registry=build_registry(), country=country, vocab=vocab())


def _sign_chunk(seed: int, start: int, count: int, issued_at: str) -> list[tuple[Any, ...]]:
    """Make and sign ``count`` records exactly as Publisher._write would (version 1)."""
    from federation.envelope import record_id, sign_record
    from schemas import record_schema_id

    key, registry, country, v = _W["key"], _W["registry"], _W["country"], _W["vocab"]
    rng = random.Random(seed * 1_000_003 + start)
    out = []
    for _ in range(count):
        rtype, visibility, body = payload(rng, country, v)
        registry.validate(record_schema_id(rtype), body)  # what Publisher.check_payload does
        rid = record_id(country, rtype, str(uuid.UUID(int=rng.getrandbits(128), version=4)))
        env = sign_record({"ncc": 1, "id": rid, "type": rtype, "schema": f"{rtype}/1", "origin": country,
                           "version": 1, "issued_at": issued_at, "visibility": visibility, "deleted": False,
                           "payload": body}, key.private_key, key.kid)
        import orjson

        out.append((rid, rtype, visibility, env.digest(), orjson.dumps(env.to_dict()).decode()))
    return out


def _chunks(count: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, count, size):
        yield start, min(size, count - start)


async def _bulk_async(data_dir: Path, count: int, seed: int, index: bool, workers: int, chunk: int) -> list[tuple[str, str]]:
    import orjson
    from tortoise.connection import connections
    from tortoise.transactions import in_transaction

    from federation.timefmt import format_timestamp
    from node.config import load_settings
    from node.context import utc_now
    from node.services.search import SearchService
    from node.storage import db, sql

    settings = load_settings(data_dir, env={})
    ctx = await db.open_db(settings.db_url)
    search = SearchService()
    shared: list[tuple[str, str]] = []
    try:
        await db.ensure_counters()
        conn = connections.get("default")
        issued = format_timestamp(utc_now())
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(workers, initializer=_worker_init, initargs=(str(data_dir), settings.country)) as pool:
            pending = list(_chunks(count, chunk))
            window: list[asyncio.Future[list[tuple[Any, ...]]]] = []
            while pending or window:
                while pending and len(window) < workers * 2:  # bounded look-ahead: memory stays flat
                    s, n = pending.pop(0)
                    window.append(loop.run_in_executor(pool, _sign_chunk, seed, s, n, issued))
                rows = await window.pop(0)
                async with in_transaction() as tconn:
                    got = await sql.fetch(tconn, "UPDATE counters SET value = value + ? WHERE name = 'seq'"
                                          " RETURNING value", [len(rows)])
                    first = int(got[0]["value"]) - len(rows) + 1
                    versions, records, feed, envs = [], [], [], []
                    for i, (rid, rtype, vis, digest, text) in enumerate(rows):
                        seq = first + i
                        versions.append([rid, 1, seq, vis, False, issued, digest, text])
                        records.append([rid, rtype, settings.country, 1, vis, False, seq, issued, text])
                        if vis != "national":
                            feed.append([rid, seq, text])
                            shared.append((rid, rtype))
                        envs.append(orjson.loads(text))
                    await tconn.execute_many(sql.placeholders(
                        tconn, "INSERT INTO record_versions (record_id, version, seq, visibility, deleted, issued_at,"
                        " digest, envelope) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"), versions)
                    await tconn.execute_many(sql.placeholders(
                        tconn, "INSERT INTO records (id, type, origin, version, visibility, deleted, seq, issued_at,"
                        " envelope) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"), records)
                    if feed:
                        await tconn.execute_many(sql.placeholders(
                            tconn, "INSERT INTO feed (record_id, seq, envelope) VALUES (?, ?, ?)"), feed)
                    if index:
                        await search.index_many(tconn, envs)
        del conn
    finally:
        await db.close_db(ctx)
    return shared


def bulk_load(data_dir: Path, count: int, seed: int = 1, index: bool = True, workers: int = 2,
              chunk: int = 1000) -> list[tuple[str, str]]:
    """Fill a stopped node with ``count`` signed version-1 records; return the shareable (id, type) pairs.

    Produces what :class:`node.services.publish.Publisher` would for ``create``: a ``record_versions``
    row, a ``records`` row, a ``feed`` row for non-national records, the node's search index (unless
    ``index`` is false), the sequence counter advanced — one transaction per chunk, signing in
    ``workers`` processes.
    """
    return asyncio.run(_bulk_async(data_dir, count, seed, index, workers, chunk))
