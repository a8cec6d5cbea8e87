"""End-to-end harness: real ``ncc`` processes on free loopback ports.

Every instance is made by ``ncc init`` in a directory of the test's ``tmp_path`` and run by
``ncc serve`` as a subprocess whose stdout/stderr go to files next to it (``serve.out``/``serve.err``,
appended over restarts, so a failing test leaves the logs behind). Processes are started and stopped by
the one launcher, :mod:`node.processes`: each dies with the test run, however it ends (SIGKILL too). Settings that make the hub fast
enough to test (pull interval, back-off, unreachable threshold, …) are passed as ``NCC_*``
environment variables, exactly as an operator would.

The test process talks to the instances over HTTP (urllib: no event loop involved) and, where a
test must look behind the API (the hub's database searched for national strings, a record tampered
in a node's database, bulk data), opens the instance's database directly: ``sqlite3`` for SQLite,
``asyncpg`` for PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from node import processes

# Fast federation timings for tests (all are ordinary settings, see node/config.py SETTINGS).
HUB_ENV = {
    "NCC_PULL_INTERVAL_S": "2",
    "NCC_PULL_JITTER_S": "0",
    "NCC_PULL_TIMEOUT_S": "5",
    "NCC_BACKOFF_MAX_S": "1",
    "NCC_UNREACHABLE_AFTER": "2",
    "NCC_LOG_LEVEL": "WARNING",
    # every node of a test listens on loopback (DESIGN §10: refused unless this is set)
    "NCC_ALLOW_PRIVATE_NODE_URLS": "true",
}
NODE_ENV = {"NCC_NOTIFY_RETRY_S": "1", "NCC_LOG_LEVEL": "WARNING"}

START_DEADLINE_S = 30.0


def free_port() -> int:
    """A port the kernel just handed out on 127.0.0.1 (bind to 0, read it back, release it)."""
    return processes.free_port()


def base_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without inherited ``NCC_*`` settings, plus ``extra``."""
    return processes.clean_env(extra, keep=("NCC_TEST_PG",))


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Call ``check`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


# -- HTTP ------------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def code(self) -> str | None:
        """The problem ``code`` of an error answer."""
        try:
            data = self.json()
        except ValueError:
            return None
        return data.get("code") if isinstance(data, dict) else None


def http(method: str, url: str, token: str | None = None, body: Any = None, timeout: float = 30) -> Response:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Response(resp.status, dict(resp.headers), resp.read())
    except urllib.error.HTTPError as err:
        return Response(err.code, dict(err.headers), err.read())


# -- databases -------------------------------------------------------------------------------------


def _pg(url: str, work: Callable[[Any], Any]) -> Any:
    import asyncpg

    async def run() -> Any:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(run())


def _pg_sql(sql: str) -> str:
    out, n = [], 0
    for ch in sql:
        if ch == "?":
            n += 1
            out.append(f"${n}")
        else:
            out.append(ch)
    return "".join(out)


def db_query(db: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of one statement (``?`` placeholders) on an instance database URL; commits writes."""
    if db.startswith("sqlite://"):
        conn = sqlite3.connect(db[len("sqlite://"):], timeout=30)
        try:
            rows = conn.execute(sql, params).fetchall()
            conn.commit()
            return rows
        finally:
            conn.close()

    async def work(conn: Any) -> list[tuple[Any, ...]]:
        if sql.lstrip().upper().startswith("SELECT") or " RETURNING " in sql.upper():
            return [tuple(r) for r in await conn.fetch(_pg_sql(sql), *params)]
        await conn.execute(_pg_sql(sql), *params)
        return []

    return list(_pg(db, work))


def db_text(db: str) -> str:
    """Every row of every table (search-index shadow tables included) as text, for string searches."""
    if db.startswith("sqlite://"):
        conn = sqlite3.connect(db[len("sqlite://"):], timeout=30)
        try:
            return "\n".join(conn.iterdump())
        finally:
            conn.close()

    async def work(conn: Any) -> str:
        tables = await conn.fetch(
            "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) AS t"
            " FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            " AND table_type = 'BASE TABLE'"
        )
        parts = []
        for row in tables:
            for r in await conn.fetch(f"SELECT x::text AS v FROM {row['t']} AS x"):
                parts.append(r["v"])
        return "\n".join(parts)

    return str(_pg(db, work))


# -- instances -------------------------------------------------------------------------------------


@dataclass
class Instance:
    """One ``ncc`` instance (node or hub): its data dir, database, port and ``ncc serve`` process."""

    name: str
    role: str
    root: Path
    db: str
    country: str = ""
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    extra: list[subprocess.Popen[bytes]] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.root / self.name

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- CLI -----------------------------------------------------------------------------------

    def ncc(self, *args: str, check: bool = True, timeout: float = 120,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``ncc <args>`` (``--data-dir`` of this instance is appended) as a subprocess."""
        argv = processes.ncc_argv(*args, "--data-dir", str(self.data_dir))
        done = processes.run(argv, timeout=timeout, env=base_env({**self.env, **(env or {})}))
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
        return done

    def init(self) -> None:
        args = ["init", "--role", self.role, "--port", str(self.port), "--db", self.db]
        if self.role == "node":
            args += ["--country", self.country]
        self.ncc(*args)

    def token(self, role: str) -> str:
        """A user token of this instance, cached per role, as ``ncc token create`` issues it
        (``tests.conftest.issue_user_tokens``: in this process; a CLI subprocess cost ~0.5 s a token)."""
        if role not in self.tokens:
            from node.config import load_settings
            from tests.conftest import issue_user_tokens

            settings = load_settings(self.data_dir, env={k: v for k, v in self.env.items() if k.startswith("NCC_")})
            self.tokens[role] = issue_user_tokens(settings, (role,), "e2e-")[0].token
        return self.tokens[role]

    # -- process -------------------------------------------------------------------------------

    def spawn(self, port: int | None = None) -> subprocess.Popen[bytes]:
        """Start one more ``ncc serve`` on this data dir (``port``: another listener, same database)."""
        port = port or self.port
        out = (self.root / f"{self.name}-{port}.out").open("ab")
        err = (self.root / f"{self.name}-{port}.err").open("ab")
        try:  # its own session: kill() takes its check workers too; it dies with the test run
            return processes.spawn(processes.serve_argv(self.data_dir, port), stdout=out, stderr=err,
                                   env=base_env(self.env))
        finally:
            out.close()
            err.close()

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} is already running"
        self.proc = self.spawn()
        self.wait_healthy(self.url, self.proc)

    def wait_healthy(self, url: str, proc: subprocess.Popen[bytes]) -> None:
        try:
            processes.wait_ready([(self.name, proc, f"{url}/healthz")], timeout=START_DEADLINE_S,
                                 log_tail=lambda _: f"see {self.root}/{self.name}-*.err:\n{self.stderr_tail()}")
        except processes.ProcessError as exc:
            raise AssertionError(f"{self.name}: {exc}") from None

    def stderr_tail(self, lines: int = 30) -> str:
        text = ""
        for f in sorted(self.root.glob(f"{self.name}-*.err")):
            text += f.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL after a few seconds."""
        for proc in [self.proc, *self.extra]:
            if proc is not None:
                _terminate(proc)
        self.extra.clear()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (crash)."""
        if self.proc is not None:
            # the whole process group: the hub's check workers die with it, as in a machine crash
            processes.kill(self.proc)
            self.proc = None

    # -- HTTP ----------------------------------------------------------------------------------

    def get(self, path: str, token: str | None = None) -> Response:
        return http("GET", self.url + path, token)

    def post(self, path: str, body: Any = None, token: str | None = None) -> Response:
        return http("POST", self.url + path, token, body)

    def put(self, path: str, body: Any, token: str | None = None) -> Response:
        return http("PUT", self.url + path, token, body)

    def delete(self, path: str, token: str | None = None) -> Response:
        return http("DELETE", self.url + path, token)

    # -- database ------------------------------------------------------------------------------

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return db_query(self.db, sql, params)

    def db_text(self) -> str:
        return db_text(self.db)


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, SIGKILL after 8 s; then whatever is left of its process group (its own session)."""
    processes.stop([proc], timeout=8)


@dataclass
class Cluster:
    """A hub and its nodes in one ``tmp_path``; every process is stopped by :meth:`close`."""

    root: Path
    make_db: Callable[[str], str]
    instances: list[Instance] = field(default_factory=list)

    def add(self, name: str, role: str, country: str = "", env: dict[str, str] | None = None) -> Instance:
        defaults = HUB_ENV if role == "hub" else NODE_ENV
        inst = Instance(name, role, self.root, self.make_db(name), country, {**defaults, **(env or {})})
        inst.init()
        self.instances.append(inst)
        return inst

    def report(self) -> str:
        """Each instance's process state and the end of its stderr (printed when a test fails: a CLI call
        that could not reach a server says why only here — the server had exited, or was killed)."""
        parts = []
        for inst in self.instances:
            state = ("not started" if inst.proc is None else
                     "running" if inst.proc.poll() is None else f"exited with {inst.proc.returncode}")
            parts.append(f"--- {inst.name} ({inst.role}, port {inst.port}): {state}\n{inst.stderr_tail(15)}")
        return "\n".join(parts)

    def close(self) -> None:
        for inst in reversed(self.instances):
            with contextlib.suppress(Exception):
                inst.stop()
            # a hub killed mid-test may have left a second listener behind
            for proc in inst.extra:
                with contextlib.suppress(Exception):
                    _terminate(proc)


@contextlib.contextmanager
def cluster(root: Path, backend: str) -> Iterator[Cluster]:
    """A :class:`Cluster` whose databases are SQLite files or fresh PostgreSQL databases (dropped after)."""
    from tests.conftest import drop_pg_database, make_pg_database, migrated_sqlite_file

    created: list[str] = []

    def make_db(name: str) -> str:
        if backend == "sqlite":
            return migrated_sqlite_file(root / name / "ncc.db")  # ncc init would migrate it: copied, faster
        db_name, url = make_pg_database(migrated=True)  # ncc init would migrate it: cloned, faster
        created.append(db_name)
        return url

    c = Cluster(root, make_db)
    try:
        yield c
    except BaseException:
        print(f"the cluster when the test failed:\n{c.report()}")  # pytest shows it with the failure
        raise
    finally:
        c.close()
        for db_name in created:
            with contextlib.suppress(Exception):
                drop_pg_database(db_name)


def enroll(hub: Instance, node: Instance, hub_url: str | None = None, replace: bool = False) -> str:
    """``ncc hub invite`` + ``ncc enroll``; return the (now used) invitation token.

    ``hub_url``: where the node reaches the hub (default the hub's own URL; a proxy in front of it).
    ``replace``: the country is enrolled already (``ncc hub invite --replace``).
    """
    invite = hub.ncc("hub", "invite", node.country, *(["--replace"] if replace else []))
    token = invite.stdout.strip().splitlines()[-1]
    node.ncc("enroll", "--hub", hub_url or hub.url, "--token", token)
    return token


def start_federation(c: Cluster, countries: tuple[str, ...], hub_env: dict[str, str] | None = None,
                     node_env: dict[str, str] | None = None) -> tuple[Instance, dict[str, Instance]]:
    """A running hub and a running, enrolled node per country (named by the lower-case code)."""
    hub = c.add("hub", "hub", env=hub_env)
    hub.start()
    nodes = {cc: c.add(cc.lower(), "node", cc, env=node_env) for cc in countries}
    for node in nodes.values():
        node.start()
        enroll(hub, node)
    return hub, nodes


# -- comparing the hub with its nodes ----------------------------------------------------------------

#: What the hub and a node must agree on for each record: (version, digest, deleted).
Held = tuple[int, str, bool]


def published(node: Instance) -> dict[str, Held]:
    """The node's published set: record id -> (version, digest, deleted) of its ``feed`` envelope.

    The ``feed`` table holds each record's latest *shareable* version (never a national one).
    """
    from federation.envelope import Envelope

    out = {}
    for rid, text in node.query("SELECT record_id, envelope FROM feed"):
        env = Envelope.from_dict(json.loads(text))
        out[rid] = (env.version, env.digest(), env.deleted)
    return out


def held(hub: Instance, origin: str) -> dict[str, Held]:
    """What the hub holds of ``origin``: record id -> (version, digest, deleted)."""
    rows = hub.query("SELECT id, version, digest, deleted FROM hub_records WHERE origin = ?", (origin,))
    return {rid: (int(v), str(d), bool(x)) for rid, v, d, x in rows}


def hub_cursor(hub: Instance, country: str) -> int:
    rows = hub.query("SELECT cursor FROM hub_pull_state WHERE country = ?", (country,))
    return int(rows[0][0]) if rows else 0


def feed_head(node: Instance) -> int:
    return int(node.query("SELECT COALESCE(MAX(seq), 0) FROM feed")[0][0])


def caught_up(hub: Instance, nodes: list[Instance]) -> bool:
    """Whether the hub's cursor of every node is at that node's feed head."""
    return all(hub_cursor(hub, n.country) == feed_head(n) for n in nodes)


def assert_hub_matches_nodes(hub: Instance, nodes: list[Instance], *, search: bool = True) -> None:
    """Exact comparison: the hub holds every node's published set and nothing else.

    For each node, every record of its ``feed`` equals the hub's (id, version, digest, deleted):
    0 lost, 0 extra, 0 stale. The hub holds no record of an origin outside ``nodes``, no national
    record, and no record the node holds as national unless as the tombstone that withdrew it.
    ``search``: the hub's search index also holds each live public record exactly once.
    """
    countries = {n.country for n in nodes}
    origins = {str(o) for (o,) in hub.query("SELECT DISTINCT origin FROM hub_records")}
    assert origins <= countries, f"the hub holds records of {sorted(origins - countries)}"
    national = hub.query("SELECT id FROM hub_records WHERE visibility = 'national'")
    assert not national, f"national records at the hub: {national[:5]}"
    live_public = 0
    for node in nodes:
        want, have = published(node), held(hub, node.country)
        lost = want.keys() - have.keys()
        extra = have.keys() - want.keys()
        stale = {rid for rid in want.keys() & have.keys() if want[rid] != have[rid]}
        assert (len(lost), len(extra), len(stale)) == (0, 0, 0), (
            f"{node.country}: lost {sorted(lost)[:5]}, extra {sorted(extra)[:5]}, stale {sorted(stale)[:5]}")
        for (rid,) in node.query("SELECT id FROM records WHERE visibility = 'national'"):
            assert rid not in have or have[rid][2], f"{node.country}: national record {rid} live at the hub"
        live_public += int(node.query(
            "SELECT COUNT(*) FROM records WHERE visibility = 'public' AND deleted = ?", (False,))[0][0])
    if search:
        total = http("GET", f"{hub.url}/api/v1/search?limit=1").json()["total"]
        assert total == live_public, f"the hub's search finds {total} public records, the nodes hold {live_public}"


def assert_hub_holds_feed_prefix(hub: Instance, node: Instance) -> int:
    """After a failed pull: the hub holds exactly the node's feed up to the hub's cursor; return it.

    Every feed record at or below the cursor is held at the feed's version; every record above it
    is held at an older version or not at all (nothing of a page that was not committed whole);
    nothing else is held. The node must not be writing meanwhile.
    """
    while True:  # cursor and records from one instant: retry if a pull committed in between
        cursor = hub_cursor(hub, node.country)
        have = held(hub, node.country)
        if hub_cursor(hub, node.country) == cursor:
            break
    seqs = {str(rid): int(seq) for rid, seq in node.query("SELECT record_id, seq FROM feed")}
    want = published(node)
    extra = have.keys() - want.keys()
    assert not extra, f"{node.country}: the hub holds records the node never published: {sorted(extra)[:5]}"
    for rid, seq in seqs.items():
        if seq <= cursor:
            assert have.get(rid) == want[rid], f"{node.country}: {rid} (seq {seq} <= cursor {cursor}) not as fed"
        else:
            assert rid not in have or have[rid][0] < want[rid][0], (
                f"{node.country}: {rid} (seq {seq} > cursor {cursor}) already held at its latest version")
    return cursor


# -- records ---------------------------------------------------------------------------------------


def organisation(country: str, name: str, description: str, **extra: Any) -> dict[str, Any]:
    """A valid organisation payload (DESIGN §9 minimal fields) for ``country``."""
    return {
        "legal_name": name,
        "country": country,
        "org_type": "ctype.industry-sme",
        "fields_of_activity": ["foa.academia-research-innovation"],
        "domains": ["cry"],
        "subdomains": ["cry.10"],
        "description": description,
        **extra,
    }


def bulk_create(data_dir: Path, count: int, prefix: str, chunk: int = 1000,
                clock: Callable[[], datetime] | None = None) -> None:
    """Create ``count`` public organisations on a stopped node, in-process, through its Publisher
    (signed at ``clock()``, default now).

    Chunks of ``chunk`` records share one outer transaction (each create is a savepoint inside
    it), which is what makes 10,000 records take seconds instead of a minute of fsyncs. The node's
    own search index is not fed (not under test here).
    """
    from tortoise.transactions import in_transaction

    from node.config import load_settings
    from node.context import Keyring, build_registry, utc_now
    from node.services.publish import Publisher
    from node.storage import db

    settings = load_settings(data_dir, env={})

    async def run() -> None:
        ctx = await db.open_db(settings.db_url)
        try:
            await db.ensure_counters()
            publisher = Publisher(settings.country, Keyring(settings).key, build_registry(), clock or utc_now)
            for start in range(0, count, chunk):
                async with in_transaction():
                    for i in range(start, min(count, start + chunk)):
                        await publisher.create("organisation", "public", organisation(
                            settings.country, f"{prefix} {i} Labs", f"{prefix} bulk record {i}"))
        finally:
            await db.close_db(ctx)

    asyncio.run(run())


def bulk_create_process(data_dir: Path, count: int, prefix: str) -> subprocess.Popen[bytes]:
    """:func:`bulk_create` in a child process (several nodes fill up in parallel, one core each)."""
    return processes.spawn([sys.executable, "-m", "tests.e2e.harness", "bulk", str(data_dir), str(count), prefix],
                           env=base_env(), cwd=Path(__file__).resolve().parents[2])


if __name__ == "__main__":  # python -m tests.e2e.harness bulk DATA_DIR COUNT PREFIX
    if len(sys.argv) == 5 and sys.argv[1] == "bulk":
        bulk_create(Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit("usage: python -m tests.e2e.harness bulk DATA_DIR COUNT PREFIX")
