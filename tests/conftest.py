"""Shared fixtures: database URLs for both backends, and what makes parallel runs safe.

PostgreSQL tests use the server at ``NCC_TEST_PG`` (default the CI machine's
``postgres://postgres@127.0.0.1:5432/test``); each test gets a fresh database that is dropped
afterwards. Without a reachable server those tests skip and say why.

Fresh databases that are only ever used after ``ncc init``/``open_db`` (which migrate) are copies of
a migrated template made once per test process (PostgreSQL: ``CREATE DATABASE … TEMPLATE``; SQLite: a
file copy, :func:`migrated_sqlite_file`): that is the
``db_url`` of the tests in :data:`MIGRATED_DB_DIRS` and the real-process clusters of the e2e harness.
Every other database starts empty (``tests/unit/node/test_migrations.py`` builds old schemas in it).

The suite runs on pytest-xdist workers (``-n``/``--dist`` in pyproject.toml addopts): each worker
dies with the run (:func:`pytest_configure`); a test that stops the PostgreSQL server takes
:func:`pg_exclusive` while every live test database holds the shared side of the same lock; and the
call of a test marked ``serial`` (one that asserts wall-clock bounds) runs while no other worker runs
a test (:class:`_Serial`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
import os
import queue
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from node import processes

PG_ADMIN_URL = os.environ.get("NCC_TEST_PG", "postgres://postgres@127.0.0.1:5432/test")

#: Test directories (relative to the repository) whose ``db_url`` is used only through ``ncc init`` or
#: ``open_db``: their PostgreSQL databases are clones of the migrated template (~0.5 s instead of ~1.5 s).
MIGRATED_DB_DIRS = ("tests/integration/", "tests/adversarial/")

ROOT = Path(__file__).resolve().parents[1]

#: Property tests (hypothesis) name their thorough number of examples; a run takes a quarter of it unless
#: ``NCC_PROPERTY_FULL=1`` (the suite's time, issue 13: three canonical-JSON properties took 52 s of it).
#: Each run draws new examples, so CI runs still add up to the thorough count and more.
PROPERTY_SHARE = 1.0 if os.environ.get("NCC_PROPERTY_FULL") == "1" else 0.25


def examples(thorough: int) -> int:
    """The examples a property test runs now (see :data:`PROPERTY_SHARE`)."""
    return max(100, round(thorough * PROPERTY_SHARE))


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("NCC_TEST_EXEC") != "1":
        # ``ncc`` subprocesses are forked from one preloaded interpreter (node.forkserver: ~1 s of CPU less
        # per command, a third of the suite's CPU); NCC_TEST_EXEC=1 execs each one as a deployment does
        processes.preload()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # An xdist worker dies with the controller (SIGKILL of ``pytest`` too); its children follow it
        # (node.processes: parent-death signal and reaper).
        processes.die_with_parent()
    elif getattr(config.option, "testrunuid", "") is None:
        # the controller names the run, so that it can remove the run's lock files (_Serial) at the end
        config.option.testrunuid = uuid.uuid4().hex


def pytest_unconfigure(config: pytest.Config) -> None:
    run = getattr(config.option, "testrunuid", None)
    if run and not os.environ.get("PYTEST_XDIST_WORKER"):
        for suffix in ("main", "gate"):
            with contextlib.suppress(OSError):
                (Path(tempfile.gettempdir()) / f"ncc-test-run-{run}.{suffix}.lock").unlink()


# -- serial: the timing-sensitive part of a test runs while no other xdist worker runs a test --------------


class _Serial:
    """Two ``flock`` files of this run (xdist's run id): every test holds MAIN shared from setup to teardown;
    the call phase of a ``serial`` test holds it exclusively. GATE, taken exclusively by whoever waits for
    MAIN exclusively, keeps new tests from starting meanwhile (else they could starve the waiter)."""

    def __init__(self) -> None:
        run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
        self.active = bool(run)
        base = Path(tempfile.gettempdir()) / f"ncc-test-run-{run}"
        self.main_path, self.gate_path = Path(f"{base}.main.lock"), Path(f"{base}.gate.lock")
        self.main = self.gate = -1

    def _open(self) -> None:
        if self.main < 0:
            self.main = os.open(self.main_path, os.O_RDWR | os.O_CREAT, 0o666)
            self.gate = os.open(self.gate_path, os.O_RDWR | os.O_CREAT, 0o666)

    def enter_test(self) -> None:
        self._open()
        fcntl.flock(self.gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(self.main, fcntl.LOCK_SH)
        finally:
            fcntl.flock(self.gate, fcntl.LOCK_UN)

    def leave_test(self) -> None:
        fcntl.flock(self.main, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def alone(self) -> Iterator[None]:
        """Exclusive while the body runs; shared again afterwards. This worker's shared hold is let go
        first, so two workers waiting for each other's shared hold can never deadlock."""
        fcntl.flock(self.main, fcntl.LOCK_UN)
        fcntl.flock(self.gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(self.main, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self.main, fcntl.LOCK_SH)
        finally:
            fcntl.flock(self.gate, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Let go of this worker's shared hold for the body (a wait that another worker's serial call may
        have to finish first), then take it again."""
        if not self.active or self.main < 0:
            yield
            return
        fcntl.flock(self.main, fcntl.LOCK_UN)
        try:
            yield
        finally:
            self.enter_test()


_SERIAL = _Serial()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    if not _SERIAL.active:
        yield
        return
    _SERIAL.enter_test()
    try:
        yield
    finally:
        _SERIAL.leave_test()


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """The modules holding a ``serial`` test come first (each module whole and in its order); the rest
    keep file order.

    A serial call waits until no other worker runs a test: met late in the run, it waited for the other
    worker's long real-process tests (tens of seconds with one core idle). First in the collection, they
    start on the first worker while the other begins in the middle of the list (short unit and
    integration tests): xdist's worksteal hands each worker a contiguous share.

    Measured and dropped (2026-12-07, full runs on 2 cores): the real-process modules first (12 min 22 s:
    they filled one worker's share and could be stolen only after its short tests), and one share per
    worker each opening with half of them (12 min 28 s: balanced to the second, but e2e modules then ran
    beside e2e modules on both cores and took 760 s of test time instead of 670) — file order: 11 min 40 s.
    """
    def module(item: pytest.Item) -> str:
        return item.nodeid.split("::", 1)[0]

    first = {module(item) for item in items if item.get_closest_marker("serial") is not None}
    items.sort(key=lambda item: module(item) not in first)  # stable: the order within each part is kept


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """What ``-n auto`` means here: one and a half workers per core (3 on 2 cores).

    Much of a real-process test is waiting (for a pull, a notification, a server to stop), so a worker
    per core left the cores idle a quarter of the run. Measured 2026-12-07 on 2 cores, one commit,
    nothing else running: two workers 9 min 22 s (272 s of the cores idle), three 8 min 22 s (171 s
    idle), for the same CPU (836 / 825 s). (With every process exec'd, a third worker had only added
    CPU: the cores were busy already.)
    """
    cores = processes.usable_cores()
    return max(1, cores + cores // 2)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist worksteal`` whose cuts fall between test files (tests/scheduler.py): a module's
    federation fixture is built by one worker, not by two."""
    if config.getoption("dist") != "worksteal":
        return None
    from tests.scheduler import FileStealing

    return FileStealing(config, log)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    if _SERIAL.active and item.get_closest_marker("serial") is not None:
        with _SERIAL.alone():
            yield
    else:
        yield


def pytest_sessionfinish(session: pytest.Session) -> None:
    _CLONES.close()
    _RECYCLED.close()
    _DROPPER.wait()
    drop_template()
    for failure in _DROPPER.failed:
        print(f"tests/conftest.py: could not drop test database {failure}", file=sys.stderr)


def _pg_reachable() -> str | None:
    """Return None when PostgreSQL answers, else the reason it does not."""
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return "asyncpg not installed"

    async def probe() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc.__class__.__name__}: {exc}"
    return None


_PG_PROBLEM: str | None | bool = False


def pg_problem() -> str | None:
    global _PG_PROBLEM
    if _PG_PROBLEM is False:
        _PG_PROBLEM = _pg_reachable()
    return _PG_PROBLEM  # type: ignore[return-value]


def _admin_exec(sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


async def _admin_fetchval(sql: str, database: str) -> Any:
    import asyncpg

    conn = await asyncpg.connect(f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{database}", timeout=5)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


# -- the PostgreSQL server lock: live test databases share it, a server restart takes it alone ----------


class _PgLock:
    """``flock`` on a file named after the server: shared while this process holds a live test database
    (counted), exclusive while a test stops the server. Works across xdist workers and across runs.

    A second file, the gate, is held exclusively by a process waiting for the server alone: a process
    that holds no database yet passes the gate before it takes its shared hold, so the waiter is not
    starved by the other workers' next tests (it waited up to a minute, holding a real-process cluster
    mid-ingest, until two workers happened to be between PostgreSQL tests). A process that already
    holds a database never waits at the gate (a cluster's second database), and one that waits there lets
    go of its hold on the run meanwhile (:class:`_Serial`: a serial call elsewhere may be waiting for it)."""

    def __init__(self) -> None:
        where = urllib.parse.urlsplit(PG_ADMIN_URL)
        self.path = Path(tempfile.gettempdir()) / f"ncc-test-pg-{where.hostname}-{where.port or 5432}.lock"
        self.gate_path = self.path.with_suffix(".gate")
        self.fd: int | None = None
        self.gate_fd: int | None = None
        self.holders = 0
        self.exclusive = False

    def _open(self) -> int:
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            self.gate_fd = os.open(self.gate_path, os.O_RDWR | os.O_CREAT, 0o666)
        return self.fd

    def share(self) -> None:
        self.holders += 1
        if self.holders == 1 and not self.exclusive:
            fd = self._open()
            assert self.gate_fd is not None
            try:
                fcntl.flock(self.gate_fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:  # a process waits for the server alone: wait for it to have done so,
                with _SERIAL.paused():  # not holding this run up meanwhile (a serial call may wait for it)
                    fcntl.flock(self.gate_fd, fcntl.LOCK_SH)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)
            finally:
                fcntl.flock(self.gate_fd, fcntl.LOCK_UN)

    def release(self) -> None:
        self.holders = max(0, self.holders - 1)
        if self.holders == 0 and not self.exclusive and self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def alone(self, timeout: float) -> Iterator[None]:
        fd = self._open()
        assert self.gate_fd is not None
        deadline = time.monotonic() + timeout
        while True:  # the gate: no new shared holder from now on (two waiters take turns)
            try:
                fcntl.flock(self.gate_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"another test process waited for the PostgreSQL server alone for "
                                         f"{timeout:.0f} s ({self.gate_path})") from None
                time.sleep(0.1)
        try:
            while True:  # converts this process's shared lock, if it holds one
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise AssertionError(
                            f"other test processes kept PostgreSQL databases open for {timeout:.0f} s "
                            f"({self.path} stayed shared-locked); cannot stop the server under them") from None
                    time.sleep(0.1)
        finally:
            fcntl.flock(self.gate_fd, fcntl.LOCK_UN)  # held exclusively now: new holders wait at the lock
        self.exclusive = True
        try:
            yield
        finally:
            self.exclusive = False
            fcntl.flock(fd, fcntl.LOCK_SH if self.holders else fcntl.LOCK_UN)


_PG_LOCK = _PgLock()


@contextlib.contextmanager
def pg_exclusive(timeout: float = 900.0) -> Iterator[None]:
    """Hold the PostgreSQL server alone (no other test process has a live test database meanwhile), e.g.
    to stop and start it. Other processes wait to make a database until the ``with`` ends.

    While waiting, this worker lets go of its hold on the run (:class:`_Serial`): a ``serial`` test of
    another worker that holds a database and waits for this worker's test to end can then finish.
    """
    with _SERIAL.paused(), _PG_LOCK.alone(timeout):
        yield


# -- databases ---------------------------------------------------------------------------------------------

_TEMPLATE: str | None = None
_TEMPLATE_OWNER = 0
_TEMPLATE_FINGERPRINT = ""  # the template's schema and migration history (_Recycled.FINGERPRINT)


def _template() -> str:
    """This process's migrated template database (made on first use, dropped at the end of the session)."""
    global _TEMPLATE, _TEMPLATE_OWNER, _TEMPLATE_FINGERPRINT
    if _TEMPLATE is not None and _TEMPLATE_OWNER == os.getpid():
        return _TEMPLATE
    from node.storage import db

    _drop_stale_templates()
    name = f"ncc_tpl_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _admin_exec(f'CREATE DATABASE "{name}"')
    try:
        asyncio.run(_migrate(db, f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"))
        # read now: once clones are made from it, a connection to the template would make them fail
        fingerprint = asyncio.run(_admin_fetchval(_Recycled.FINGERPRINT, name))
    except BaseException:
        drop_pg_database(name)
        raise
    _TEMPLATE, _TEMPLATE_OWNER, _TEMPLATE_FINGERPRINT = name, os.getpid(), fingerprint
    atexit.register(drop_template)  # pytest_sessionfinish drops it first; this is for scripts
    return name


_SQLITE_TEMPLATE: Path | None = None
_SQLITE_TEMPLATE_OWNER = 0


def issue_user_tokens(settings: Any, roles: Sequence[str], subject_prefix: str = "") -> list[Any]:
    """A user token per role for the instance of ``settings``, issued and recorded by ``ncc token
    create``'s own code (``issue_and_record``) in one database session: what the instance fixtures and
    the e2e harness use instead of a CLI run per token (the command is tested on its own). In a thread of
    its own: ``run_with_db`` runs an event loop, and a browser test's thread already has one."""
    from concurrent.futures import ThreadPoolExecutor

    from node.clock import utc_now
    from node.commands.base import run_with_db
    from node.keystore import load_key
    from node.services.usertokens import issue_and_record

    key = load_key(settings.key_path, settings.role, settings.country)

    async def issue() -> list[Any]:
        return [await issue_and_record(key, settings.instance_id, role,
                                       f"{subject_prefix}{role}" if subject_prefix else "", utc_now(),
                                       settings.token_ttl_s) for role in roles]

    with ThreadPoolExecutor(1) as pool:
        return list(pool.submit(run_with_db, settings, issue).result())


def migrated_sqlite_file(path: Path) -> str:
    """Put a copy of this process's migrated SQLite template at ``path`` (mode 0600, no rows) and return
    its URL. Applying the whole migration chain to a new SQLite file costs ~0.8 s of CPU; a copy costs
    a millisecond, and ``ncc init``/``open_db`` then find every migration applied (~0.08 s)."""
    global _SQLITE_TEMPLATE, _SQLITE_TEMPLATE_OWNER
    if _SQLITE_TEMPLATE is None or _SQLITE_TEMPLATE_OWNER != os.getpid():
        from node.storage import db

        _remove_stale_sqlite_templates()
        folder = Path(tempfile.mkdtemp(prefix=f"ncc-sqlite-tpl-{os.getpid()}-"))
        template = folder / "template.db"
        asyncio.run(_migrate(db, f"sqlite://{template}"))
        for suffix in ("-wal", "-shm"):  # closed cleanly: the WAL is checkpointed into the file
            with contextlib.suppress(FileNotFoundError):
                (folder / f"template.db{suffix}").unlink()
        atexit.register(shutil.rmtree, folder, True)
        _SQLITE_TEMPLATE, _SQLITE_TEMPLATE_OWNER = template, os.getpid()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, _SQLITE_TEMPLATE.open("rb") as src:
        shutil.copyfileobj(src, out)
    return f"sqlite://{path}"


def _remove_stale_sqlite_templates() -> None:
    """SQLite templates of test processes that died without removing theirs (SIGKILL, as the run of
    ``tests/e2e/test_no_leftovers.py`` is killed on purpose): never reused, so removed, as
    :func:`_drop_stale_templates` drops PostgreSQL's."""
    for folder in Path(tempfile.gettempdir()).glob("ncc-sqlite-tpl-*-*"):
        match = re.fullmatch(r"ncc-sqlite-tpl-(\d+)-.+", folder.name)
        if match is not None and _process_gone(int(match.group(1))):
            shutil.rmtree(folder, ignore_errors=True)


def _process_gone(pid: int) -> bool:
    """No process ``pid`` exists (the owner of a template, clone or test database left behind)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # someone else's process: it exists
    return False


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie waiting to be reaped has ended; read from Linux's /proc)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def premigrated(data_dir: Path | str) -> str:
    """``data_dir`` (made 0700) with a copy of the migrated SQLite template where ``ncc init`` puts its
    database (``ncc.db``): init then finds every migration applied (~0.1 s) instead of applying the chain
    (~1.3 s of CPU; 3 s on a busy machine, for each of ~60 tests). For tests of something other than how
    init creates its database."""
    folder = Path(data_dir)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    migrated_sqlite_file(folder / "ncc.db")
    return str(folder)


async def _migrate(db: object, url: str) -> None:
    context = await db.open_db(url)  # type: ignore[attr-defined]
    await db.close_db(context)  # type: ignore[attr-defined]  # a template must have no connection left


def _drop_stale_templates() -> None:
    """Templates, clones and test databases of test processes that died without dropping theirs
    (SIGKILL): every name carries the pid of the process that made it; never reused, so dropped."""
    import asyncpg

    async def names() -> list[str]:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
        try:
            return [r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'ncc_tpl_%'"
                                                " OR datname LIKE 'ncc_clone_%' OR datname LIKE 'ncc_test_%'")]
        finally:
            await conn.close()

    for name in asyncio.run(names()):
        match = re.fullmatch(r"ncc_(?:tpl|clone|test)_(\d+)_[0-9a-f]{8}", name)
        if match is not None and _process_gone(int(match.group(1))):
            with contextlib.suppress(Exception):
                drop_pg_database(name)


def drop_template() -> None:
    global _TEMPLATE
    if _TEMPLATE is not None and _TEMPLATE_OWNER == os.getpid():
        with contextlib.suppress(Exception):
            drop_pg_database(_TEMPLATE)
        _TEMPLATE = None


def make_pg_database(migrated: bool = False) -> tuple[str, str]:
    """Create a fresh database; return (name, asyncpg-style URL).

    ``migrated``: a clone of the migrated template (every migration applied, no rows), for a database
    that is only used through ``ncc init``/``open_db`` anyway; else empty. Until :func:`drop_pg_database`,
    the database holds the shared side of the server lock (see :func:`pg_exclusive`).
    """
    name = f"ncc_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"  # dropped as stale if this process dies
    _PG_LOCK.share()
    try:
        if migrated:
            template = _template()
            ready = _RECYCLED.take(template) or _CLONES.take(template)
            if ready is None:
                _admin_exec(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            name = ready or name
            _RECYCLED.handed_out.add(name)
        else:
            _admin_exec(f'CREATE DATABASE "{name}"')
    except BaseException:
        _PG_LOCK.release()
        raise
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return name, f"{base}/{name}"


def _drain(ready: queue.Queue[str]) -> list[str]:
    """Everything ``ready`` holds now, taken out."""
    taken: list[str] = []
    while True:
        try:
            taken.append(ready.get_nowait())
        except queue.Empty:
            return taken


class _Clones:
    """Clones of the migrated template made ahead of need by a background thread: ``CREATE DATABASE …
    TEMPLATE`` takes ~0.3 s, which every PostgreSQL test waited for in its set-up. Each clone is fresh
    (made from the template, never used before) and handed out once; a clone that could not be made
    (the server restarting under a fault test) is simply not there, and the test makes its own."""

    AHEAD = 2

    def __init__(self) -> None:
        self.ready: queue.Queue[str] = queue.Queue()
        self.wanted = threading.Event()
        self.stopping = False
        self.thread: threading.Thread | None = None
        self.owner = 0

    def take(self, template: str) -> str | None:
        """A ready clone of ``template`` (None when none is ready yet); asks for more."""
        if self.owner != os.getpid():  # first use in this process (a fork has no thread of its parent's)
            self.__init__()  # type: ignore[misc]
            self.owner = os.getpid()
            self.thread = threading.Thread(target=self._run, args=(template,), name="ncc-test-db-cloner",
                                           daemon=True)
            self.thread.start()
        try:
            name: str | None = self.ready.get_nowait()
        except queue.Empty:
            name = None
        self.wanted.set()
        return name

    def _run(self, template: str) -> None:
        while not self.stopping:
            self.wanted.wait()
            self.wanted.clear()
            while not self.stopping and self.ready.qsize() < self.AHEAD:
                name = f"ncc_clone_{os.getpid()}_{uuid.uuid4().hex[:8]}"
                try:
                    _admin_exec(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                except Exception:  # noqa: BLE001 - the server is restarting (a fault test): make none now
                    time.sleep(0.5)
                    break
                self.ready.put(name)

    def close(self) -> None:
        """Stop making clones and drop those never handed out."""
        if self.owner != os.getpid() or self.thread is None:
            return
        self.stopping = True
        self.wanted.set()
        self.thread.join(timeout=30)
        for name in _drain(self.ready):
            with contextlib.suppress(Exception):
                _drop_now(name)


_CLONES = _Clones()


class _Recycled:
    """Migrated databases a test of this process has finished with, emptied for the next one.

    A clone and its drop cost PostgreSQL's server ~0.15–0.35 s of CPU per test (the template's 8.8 MB
    copied through the WAL; ``DROP DATABASE`` forces a checkpoint of the whole server), and the first
    connections to a never-used database build its catalogue caches again: ~150 s of a full run's CPU.
    A background thread empties a used database instead — every row of every table but the migration
    history deleted (foreign keys off for the session: ``session_replication_role``), every sequence
    restarted — then checks that its schema and migration history are the template's, byte for byte of
    the catalogue's description, and renames it: a process keeps state per database name (the search
    accelerator of ``node.search.accel``: kept under the old name, it answered the next test from the
    last one's documents). Anything else (a test that changed the schema, a server restarting under a
    fault test, a connection that would not end) sends it to the dropper instead.

    Deleted rows stay in the pages as dead row versions until a vacuum: no PostgreSQL test reads the
    database's files (the byte scans of erasure are on SQLite, tests/e2e/test_erasure.py), and the
    erasure purge's own ``VACUUM FULL`` of a database it switches on is exercised on whatever such a
    database holds. ``NCC_TEST_FRESH_DB=1`` gives every test a fresh clone as before.
    """

    ENABLED = os.environ.get("NCC_TEST_FRESH_DB") != "1"
    #: The catalogue's description of the public schema and the migration history: equal to the
    #: template's after emptying, or the database is dropped.
    FINGERPRINT = """
        SELECT md5(coalesce((SELECT string_agg(format('%s:%s', c.relname, c.relkind), ',' ORDER BY c.relname)
                             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                             WHERE n.nspname = 'public'), '')
                || '|' || coalesce((SELECT string_agg(format('%s.%s:%s:%s', c.relname, a.attname,
                                                            format_type(a.atttypid, a.atttypmod), a.attnotnull),
                                                     ',' ORDER BY c.relname, a.attnum)
                                    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                                    JOIN pg_namespace n ON n.oid = c.relnamespace
                                    WHERE n.nspname = 'public' AND a.attnum > 0 AND NOT a.attisdropped), '')
                || '|' || coalesce((SELECT string_agg(pg_get_constraintdef(oid), ',' ORDER BY conname)
                                    FROM pg_constraint WHERE connamespace = 'public'::regnamespace), '')
                || '|' || coalesce((SELECT string_agg(indexdef, ',' ORDER BY indexname) FROM pg_indexes
                                    WHERE schemaname = 'public'), '')
                || '|' || coalesce((SELECT string_agg(t::text, ',' ORDER BY t.id)
                                    FROM tortoise_migrations t), '')
                || '|' || (SELECT count(*) FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%'
                                                                AND nspname NOT IN ('public', 'information_schema')))
    """

    def __init__(self) -> None:
        self.handed_out: set[str] = set()
        self.dirty: queue.Queue[str | None] = queue.Queue()
        self.ready: queue.Queue[str] = queue.Queue()
        self.thread: threading.Thread | None = None
        self.owner = 0
        self.template = ""

    def _ensure(self, template: str) -> None:
        if self.owner != os.getpid() or self.template != template:  # a fork has no thread of its parent's
            self.__init__()  # type: ignore[misc]
            self.owner, self.template = os.getpid(), template

    def take(self, template: str) -> str | None:
        """An emptied database whose schema is ``template``'s, or None."""
        if not self.ENABLED:
            return None
        self._ensure(template)
        try:
            return self.ready.get_nowait()
        except queue.Empty:
            return None

    def put(self, name: str) -> bool:
        """Take back a database a test has finished with (False: not now, drop it)."""
        if not self.ENABLED or self.owner != os.getpid() or not self.template:
            return False
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self._run, name="ncc-test-db-recycler", daemon=True)
            self.thread.start()
        self.dirty.put(name)
        return True

    def _run(self) -> None:
        while (name := self.dirty.get()) is not None:
            try:
                asyncio.run(self._empty(name))
                fresh = f"ncc_clone_{os.getpid()}_{uuid.uuid4().hex[:8]}"  # dropped as stale if this process dies
                _admin_exec(f'ALTER DATABASE "{name}" RENAME TO "{fresh}"')
            except Exception:  # noqa: BLE001 - not reusable as it is: dropped like any other
                _DROPPER.put(name)
            else:
                self.ready.put(fresh)
            finally:
                self.dirty.task_done()
        self.dirty.task_done()

    async def _empty(self, name: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}", timeout=5)
        try:
            # a connection the test left (an app not closed, a killed process's backend) ends first
            await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            for _ in range(50):
                if not await conn.fetchval("SELECT count(*) FROM pg_stat_activity "
                                           "WHERE datname = current_database() AND pid <> pg_backend_pid()"):
                    break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"connections to {name} would not end")
            tables = [row[0] for row in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'tortoise_migrations'")]
            sequences = [row[0] for row in await conn.fetch(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")]
            async with conn.transaction():
                await conn.execute("SET LOCAL session_replication_role = replica")
                for table in tables:
                    await conn.execute(f'DELETE FROM "{table}"')
                for sequence in sequences:
                    await conn.execute(f'ALTER SEQUENCE "{sequence}" RESTART')
            if await conn.fetchval(self.FINGERPRINT) != _TEMPLATE_FINGERPRINT:
                raise RuntimeError(f"{name} no longer has the template's schema")
        finally:
            await conn.close()

    def close(self) -> None:
        """Stop emptying databases and drop every one this process holds."""
        if self.owner != os.getpid():
            return
        if self.thread is not None and self.thread.is_alive():
            self.dirty.put(None)
            self.thread.join(timeout=60)
        for name in _drain(self.ready):
            _DROPPER.put(name)


_RECYCLED = _Recycled()


class _Dropper:
    """Drops test databases in a background thread: ``DROP DATABASE`` waits for a checkpoint (a second or
    more on a busy machine), which no test needs to wait for. The session's end waits for the last one."""

    def __init__(self) -> None:
        self.pending: queue.Queue[str] = queue.Queue()
        self.thread: threading.Thread | None = None
        self.failed: list[str] = []

    def put(self, name: str) -> None:
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self._run, name="ncc-test-db-dropper", daemon=True)
            self.thread.start()
        self.pending.put(name)

    def _run(self) -> None:
        while True:
            name = self.pending.get()
            try:
                for attempt in range(10):  # the server may be restarting under a fault test: wait for it
                    try:
                        _drop_now(name)
                        break
                    except Exception as exc:  # noqa: BLE001 - reported at the end of the session
                        if attempt == 9:
                            self.failed.append(f"{name}: {exc.__class__.__name__}: {exc}")
                        time.sleep(1)
            finally:
                self.pending.task_done()

    def wait(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while self.pending.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.05)


_DROPPER = _Dropper()
atexit.register(_DROPPER.wait)  # also for scripts that import these helpers outside a pytest session


def _drop_now(name: str) -> None:
    _admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_pg_database(name: str, *, now: bool = False) -> None:
    """Drop a database made by :func:`make_pg_database`: in the background (it is not used any more), or
    ``now``, before returning (for a test whose subject is the database going away: waiting for the
    background queue waited for every other test's drops too — 60 s in a full run)."""
    if name.startswith("ncc_tpl_"):
        _drop_now(name)
        return
    recyclable = name in _RECYCLED.handed_out
    _RECYCLED.handed_out.discard(name)
    if now:
        try:
            _drop_now(name)
        finally:
            _PG_LOCK.release()
        return
    _PG_LOCK.release()
    if not (recyclable and _RECYCLED.put(name)):
        _DROPPER.put(name)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database URL (``postgres://…``), dropped after the test."""
    problem = pg_problem()
    if problem:
        pytest.skip(problem)
    name, url = make_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


def _wants_migrated(request: pytest.FixtureRequest) -> bool:
    try:
        where = request.node.path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return False
    return where.startswith(MIGRATED_DB_DIRS)


@pytest.fixture(autouse=True)
def _databases_outlive_apps(request: pytest.FixtureRequest) -> None:
    """Make the test's databases before anything else the test asks for, so they are dropped after it.

    pytest tears fixtures down in the reverse order of their set-up. A test that asks for
    ``aiohttp_client`` before ``node`` had its PostgreSQL database dropped (``WITH (FORCE)``) while the
    app served on it was still running: the app's cleanup (the last erasure purge, closing the pool)
    then met a database that no longer existed and could wait without end. Autouse fixtures are set up
    first, so the databases outlive every app of the test."""
    for name in ("db_url", "make_instance"):
        if name in request.fixturenames:
            request.getfixturevalue(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test on both backends: a SQLite file in tmp_path, or a fresh PostgreSQL database
    (both migrated in :data:`MIGRATED_DB_DIRS`, empty elsewhere)."""
    if request.param == "sqlite":
        yield migrated_sqlite_file(tmp_path / "ncc.db") if _wants_migrated(request) else f"sqlite://{tmp_path / 'ncc.db'}"
        return
    problem = pg_problem()
    if problem:
        pytest.skip(problem)
    name, url = make_pg_database(migrated=_wants_migrated(request))
    try:
        yield url
    finally:
        drop_pg_database(name)
