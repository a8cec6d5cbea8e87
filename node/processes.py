"""The one launcher of real child processes (``ncc serve`` and friends) for the demo, the tests and the
benchmarks: free loopback ports, a clean environment, start, readiness, stop — and nothing left behind.

Every child started here dies with the process that started it, however that one ends (also SIGKILL):

- **parent-death signal**: on Linux the child asks the kernel (``prctl(PR_SET_PDEATHSIG, SIGKILL)``,
  set between fork and exec, kept across exec) to be killed when its parent goes. The kernel sends it
  when the *thread* that forked the child ends, not the process, so children are always forked from
  the main thread or from one daemon thread that lives as long as the process (:func:`_from_long_lived_thread`);
- **reaper**: a child started in its own session (the default) is a process-group leader, and its own
  children (a hub's verification workers, forked after the parent-death signal was armed only for
  the leader) are in that group. A small watchdog process (:class:`_Reaper`, one per launching process,
  in its own session so a signal to the launcher's group does not reach it) holds the read end of a
  pipe; the launcher writes each group to it. When the launcher ends, however it ends, the kernel
  closes the write end: the watchdog reads end-of-file and SIGKILLs every group still registered.
  Groups stopped normally are unregistered first.

**Preloading** (:func:`preload`, the test suite's choice; ``NCC_PRELOAD=1`` in a program's environment
turns it on at import, as the benchmarks' smoke test does): ``python -m node.cli …`` children are forked from
one interpreter that imported the program once (:mod:`node.forkserver`) instead of exec'd, which saves
0.6–1 s of CPU per command; they die with their launcher the same way, and behave as exec'd ones
(descriptors, session, directory, environment, exit status). Everything else is exec'd as always.

Nothing else in ``node/`` uses this module except the demo (``node/demo/processes.py``); the tests use it
through ``tests/e2e/harness.py``, the benchmarks through ``benchmarks/_harness.py``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

T = TypeVar("T")

#: ``prctl`` option number (linux/prctl.h).
PR_SET_PDEATHSIG = 1

#: Files or pipes a child's stdin/stdout/stderr may be set to (as for :class:`subprocess.Popen`).
Stream = int | IO[Any] | None


class ProcessError(Exception):
    """A child could not be started or did not get ready; the message is one line (plus a log tail)."""


# -- ports and environment ----------------------------------------------------------------------------


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports that are free right now (the kernel picks them: bind to port 0).

    All sockets stay open until every port is known, so the kernel never hands out one twice.
    """
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port(host: str = "127.0.0.1") -> int:
    """One port that is free on ``host`` right now."""
    return free_ports(1, host)[0]


def clean_env(extra: Mapping[str, str] | None = None, keep: Iterable[str] = (),
              base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default this process's environment) without ``NCC_*`` settings except ``keep``,
    plus ``extra``: a child gets exactly the settings its caller means it to have."""
    kept = set(keep)
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if not k.startswith("NCC_") or k in kept}
    env.update(extra or {})
    return env


def serve_argv(data_dir: Path, port: int | None = None) -> list[str]:
    """``ncc serve`` for ``data_dir`` with this interpreter (``port``: instead of the configured one)."""
    argv = [sys.executable, "-m", "node.cli", "serve", "--data-dir", str(data_dir)]
    return argv + ["--port", str(port)] if port is not None else argv


def ncc_argv(*args: str) -> list[str]:
    """``ncc <args>`` with this interpreter."""
    return [sys.executable, "-m", "node.cli", *args]


# -- dying with the parent -----------------------------------------------------------------------------


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # pragma: no cover - every Linux libc has prctl
        return None


#: Resolved once, in the parent: between fork and exec the child may only call what is already there.
_PRCTL = _load_prctl()


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity; elsewhere than Linux, the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def die_with_parent(sig: int = signal.SIGKILL, parent: int | None = None) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent (thread) ends; a no-op off Linux.

    ``parent``: the pid of the process that started this one. A parent that died before the signal
    was armed never sends it (and a ``multiprocessing`` worker holds both ends of its call queue, so it
    never reads end-of-file either): then this process exits at once.
    """
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def _preexec(parent: int) -> Callable[[], None] | None:
    if _PRCTL is None:
        return None
    prctl = _PRCTL

    # Safe with threads in the parent: the child runs only this, which takes no lock and imports nothing
    # (prctl was resolved in the parent), and subprocess holds the GIL across fork.
    def arm() -> None:  # runs in the child between fork and exec
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm


class _Spawner:
    """One daemon thread that lives as long as the process: children of other threads are forked here,
    so their parent-death signal does not fire when the short-lived thread that asked for them ends."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[tuple[Callable[[], Any], queue.SimpleQueue[tuple[bool, Any]]]] = (
            queue.SimpleQueue())
        self.thread = threading.Thread(target=self._run, name="ncc-spawner", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            job, answer = self.jobs.get()
            try:
                answer.put((True, job()))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, who re-raises it
                answer.put((False, exc))

    def call(self, job: Callable[[], T]) -> T:
        answer: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
        self.jobs.put((job, answer))
        ok, value = answer.get()
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]


_spawner: _Spawner | None = None
_spawner_lock = threading.Lock()


def _from_long_lived_thread(job: Callable[[], T]) -> T:
    global _spawner
    here = threading.current_thread()
    if here is threading.main_thread() or (_spawner is not None and here is _spawner.thread):
        return job()  # (the spawner itself: the fork server is started while it forks a child)
    with _spawner_lock:
        if _spawner is None:
            _spawner = _Spawner()
    return _spawner.call(job)


# -- the reaper ------------------------------------------------------------------------------------------

#: The watchdog's program, run as a script (``python -I -S``: no site packages, starts in milliseconds).
REAPER_SCRIPT = Path(__file__).with_name("reaper.py")


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or ''."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


class _Reaper:
    """The watchdog of this process's children's process groups (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner = 0  # the pid that started the watchdog (a fork of it must start its own)

    def _pipe(self) -> IO[bytes] | None:
        if self._proc is None or self._owner != os.getpid() or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(REAPER_SCRIPT)], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )
            self._owner = os.getpid()
        return self._proc.stdin

    def _send(self, line: str) -> None:
        with self._lock, contextlib.suppress(OSError, ValueError):
            pipe = self._pipe()
            if pipe is not None:
                pipe.write(line.encode())
                pipe.flush()

    def register(self, pgid: int) -> None:
        self._send(f"+{pgid} {_start_time(pgid)}\n")

    def unregister(self, pgid: int) -> None:
        if self._proc is not None and self._owner == os.getpid():
            self._send(f"-{pgid}\n")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._owner == os.getpid() else None


_reaper = _Reaper()
#: Children started here in their own session (group leaders) and not yet finished, with their start
#: times: once a leader is reaped and its group is empty, the kernel may give its number to a new process
#: (pid_max is often 32768: a busy machine wraps around in minutes), which may lead a group of its own.
_leaders: dict[int, str] = {}


def _kill_group(pgid: int) -> None:
    """SIGKILL the group ``pgid`` of a child started here, unless its number now names another process.

    While any member of the group lives, the kernel does not reuse the number; so a live process under
    that number with another start time means the group is gone, and the signal would hit a stranger
    (another test's server, started in its own session, has pgid == pid).
    """
    started = _leaders.get(pgid)
    now = _start_time(pgid)
    if now and started and now != started:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def reaper_pid() -> int | None:
    """The watchdog's pid in this process, once a child in its own session was started (for tests)."""
    return _reaper.pid


# -- preloading: ``python -m node.cli`` forked from one interpreter -------------------------------------------

#: What the fork server imports before it forks: the command line, every command and the web application.
PRELOAD_MODULES = ("node.cli", "node.commands.init", "node.commands.serve", "node.commands.token",
                   "node.commands.hub", "node.commands.enroll", "node.commands.sync", "node.commands.recover",
                   "node.commands.keys", "node.commands.verify", "node.commands.imports", "node.commands.export",
                   "node.commands.atlas", "node.commands.audit", "node.commands.erasure", "node.commands.demo",
                   "node.http.app")


class ForkServerError(OSError):
    """The fork server could not be started or reached (the launcher execs from then on); an error of the
    child itself (a missing working directory) is raised as the plain ``OSError`` subprocess raises."""


class _ForkServer:
    """This process's :mod:`node.forkserver`, started on first use from the long-lived thread (its
    parent-death signal then fires only when this process ends)."""

    def __init__(self, modules: Sequence[str]) -> None:
        self.modules = tuple(modules)
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner = 0
        self._env: dict[str, str] = {}
        self.broken = False  # it refused or died: exec from now on

    def _start(self) -> socket.socket:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._env = dict(os.environ)
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "node.forkserver", str(theirs.fileno()), *self.modules],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                preexec_fn=_preexec(os.getpid()))  # noqa: PLW1509 - see _preexec
        finally:
            theirs.close()
        mine.settimeout(120)
        if mine.recv(16) != b"ready":
            mine.close()
            raise ForkServerError(errno.EAGAIN, "the fork server did not start")
        mine.settimeout(None)
        self._owner = os.getpid()
        return mine

    def serves(self, argv: Sequence[str], env: Mapping[str, str] | None) -> bool:
        """Whether ``argv`` is ``python -m node.cli …`` with the interpreter settings the server started with."""
        if self.broken or list(argv[:3]) != [sys.executable, "-m", "node.cli"]:
            return False

        def python(settings: Mapping[str, str]) -> dict[str, str]:
            return {k: v for k, v in settings.items() if k.startswith("PYTHON")}

        # a server not started yet will start with this process's environment
        return python(self._env if self._sock is not None else os.environ) == python(
            os.environ if env is None else env)

    def launch(self, argv: Sequence[str], env: Mapping[str, str], cwd: str | None, fds: Sequence[int],
               new_session: bool) -> tuple[int, int, int]:
        """Fork ``argv`` (from ``-m`` on); its pid, the read end of its status pipe and its pidfd."""
        request = json.dumps({"argv": list(argv[2:]), "env": dict(env), "cwd": cwd,
                              "new_session": new_session}).encode()
        with self._lock:
            try:
                if self._sock is None or self._owner != os.getpid():
                    self._sock = _from_long_lived_thread(self._start)
                socket.send_fds(self._sock, [request], list(fds))
                data, got, _, _ = socket.recv_fds(self._sock, 4096, 2)
            except ForkServerError:
                raise
            except OSError as exc:
                raise ForkServerError(exc.errno or errno.EPIPE, f"the fork server failed: {exc}") from exc
        if not data:
            raise ForkServerError(errno.EPIPE, "the fork server ended")
        answer = json.loads(data)
        if "errno" in answer:
            raise OSError(answer["errno"], os.strerror(answer["errno"]), cwd)
        return int(answer["pid"]), got[0], got[1]


_fork_server: _ForkServer | None = None


def preload(modules: Sequence[str] = PRELOAD_MODULES) -> None:
    """From now on, fork ``python -m node.cli …`` children from a server that imported ``modules`` once."""
    global _fork_server
    _fork_server = _ForkServer(modules)


if os.environ.get("NCC_PRELOAD") == "1":  # a program started by the tests (the benchmarks' smoke run)
    preload()


def preloading() -> bool:
    """Whether :func:`preload` is on and its server has not failed."""
    return _fork_server is not None and not _fork_server.broken


class _Forked(subprocess.Popen):  # type: ignore[type-arg]
    """``subprocess.Popen`` whose child the fork server makes (its exit status comes from a pipe, since it
    is not this process's child); anything the server cannot take is exec'd as usual."""

    _status_fd: int | None = None  # None: exec'd; -1: its status is read
    _pidfd = -1

    def _execute_child(self, args: Any, executable: Any, preexec_fn: Any, close_fds: Any, pass_fds: Any,
                       cwd: Any, env: Any, startupinfo: Any, creationflags: Any, shell: Any,
                       p2cread: int, p2cwrite: int, c2pread: int, c2pwrite: int, errread: int, errwrite: int,
                       *rest: Any) -> None:
        server = _fork_server
        if server is not None and not pass_fds and server.serves(args, env):
            fds = [p2cread if p2cread != -1 else 0, c2pwrite if c2pwrite != -1 else 1,
                   errwrite if errwrite != -1 else 2]
            try:
                self.pid, self._status_fd, self._pidfd = server.launch(args, os.environ if env is None else env,
                                                          None if cwd is None else os.fspath(cwd), fds,
                                                          bool(rest[-2]))  # start_new_session
            except ForkServerError:
                server.broken = True  # exec below, and from now on
            else:
                self._child_created = True
                self._close_pipe_fds(p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite)  # type: ignore[attr-defined]
                self._closed_child_pipe_fds = True
                return
        super()._execute_child(args, executable, preexec_fn, close_fds, pass_fds, cwd, env, startupinfo,  # type: ignore[misc]
                               creationflags, shell, p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite, *rest)

    def _try_wait(self, wait_flags: int) -> tuple[int, int]:
        if self._status_fd is None:
            return super()._try_wait(wait_flags)  # type: ignore[misc,no-any-return]
        if self._status_fd < 0:  # already read: the status is in returncode
            return self.pid, 0
        wait = 0 if wait_flags & os.WNOHANG else None
        if not select.select([self._status_fd], [], [], wait)[0]:
            return 0, 0
        data = b""
        while chunk := os.read(self._status_fd, 64):
            data += chunk
        if not data.strip():
            # end of file without a status: the server died, and the child's parent-death signal kills it;
            # returning before it is gone would let a caller reuse its port or files too early
            select.select([self._pidfd], [], [], 10)
        os.close(self._status_fd)
        os.close(self._pidfd)
        self._status_fd = -1
        return self.pid, int(data) if data.strip() else int(signal.SIGKILL)

    def _internal_poll(self, _deadstate: int | None = None, *args: Any, **kwargs: Any) -> int | None:
        if self._status_fd is None:
            return super()._internal_poll(_deadstate, *args, **kwargs)  # type: ignore[misc,no-any-return]
        if self.returncode is None and self._waitpid_lock.acquire(False):  # type: ignore[attr-defined]
            try:
                if self.returncode is None:
                    pid, sts = self._try_wait(os.WNOHANG)
                    if pid == self.pid:
                        self._handle_exitstatus(sts)  # type: ignore[attr-defined]
            except OSError:
                if _deadstate is not None:
                    self.returncode = _deadstate
            finally:
                self._waitpid_lock.release()  # type: ignore[attr-defined]
        return self.returncode


def _popen(argv: Sequence[str]) -> type[subprocess.Popen[Any]]:
    """The class that starts ``argv``: :class:`_Forked` while preloading (it decides, with the
    environment, whether the server takes ``argv``), else plain ``Popen``."""
    return _Forked if preloading() else subprocess.Popen


# -- starting and stopping ---------------------------------------------------------------------------------


def spawn(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | str | None = None,
          stdin: Stream = subprocess.DEVNULL, stdout: Stream = None, stderr: Stream = None,
          new_session: bool = True, text: bool = False) -> subprocess.Popen[Any]:
    """Start ``argv`` as a child that dies with this process (parent-death signal, reaper).

    ``new_session`` (default): the child leads its own session and process group, so a terminal's
    Ctrl-C reaches only the launcher (which then stops its children in order), :func:`kill` takes the
    child's own children too, and the reaper can find them all.
    """
    def start() -> subprocess.Popen[Any]:
        return _popen(argv)(list(argv), env=None if env is None else dict(env), cwd=cwd, stdin=stdin,
                            stdout=stdout, stderr=stderr, text=text, start_new_session=new_session,
                            preexec_fn=_preexec(os.getpid()))

    proc = _from_long_lived_thread(start)
    if new_session:
        _leaders[proc.pid] = _start_time(proc.pid)
        _reaper.register(proc.pid)
    return proc


def run(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | str | None = None,
        timeout: float | None = None, input: str | None = None, check: bool = False,
        ) -> subprocess.CompletedProcess[str]:
    """Run a short-lived command to completion (text output captured); it dies with this process too.

    Only the fork happens in the long-lived thread; the caller's thread waits for the command, so commands
    run from several threads run side by side (waiting in the spawner ran them one after the other: the
    e2e harness's and the benchmarks' parallel ``ncc init`` took the sum of their times)."""
    def start() -> subprocess.Popen[str]:
        return _popen(argv)(list(argv), env=None if env is None else dict(env), cwd=cwd, text=True,
                            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_preexec(os.getpid()))

    with _from_long_lived_thread(start) as proc:
        try:
            stdout, stderr = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
            raise subprocess.TimeoutExpired(proc.args, timeout or 0, output=stdout, stderr=stderr) from None
        except BaseException:
            proc.kill()
            raise
    if check and proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, proc.args, output=stdout, stderr=stderr)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether ``GET url`` answers 200 right now."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return int(r.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_ready(waiting: Sequence[tuple[str, subprocess.Popen[Any], str]], timeout: float = 30.0,
               interval: float = 0.05, log_tail: Callable[[str], str] | None = None) -> None:
    """Wait until every ``(name, process, url)`` answers ``GET url`` with 200.

    Raises:
        ProcessError: a process exited first (with ``log_tail(name)`` if given), or ``timeout`` passed.
    """
    deadline = time.monotonic() + timeout
    pending = list(waiting)
    while pending:
        for item in list(pending):
            name, proc, url = item
            if proc.poll() is not None:
                tail = log_tail(name) if log_tail else ""
                raise ProcessError(f"{name} exited with code {proc.returncode} before {url} answered"
                                   + (f":\n{tail}" if tail else ""))
            if answers(url, timeout=min(2.0, max(0.2, deadline - time.monotonic()))):
                pending.remove(item)
        if pending:
            if time.monotonic() > deadline:
                raise ProcessError(f"not ready after {timeout:.0f} s: {', '.join(n for n, _, _ in pending)}")
            time.sleep(interval)


def stop(procs: Iterable[subprocess.Popen[Any] | None], timeout: float = 8.0) -> None:
    """Stop children gracefully: SIGTERM to each, SIGKILL to those still running after ``timeout``; then
    whatever is left of the process groups they lead (their own children)."""
    children = [p for p in procs if p is not None]
    running = [p for p in children if p.poll() is None]
    for proc in running:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in running:
        try:
            proc.wait(timeout=max(0.05, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    for child in children:
        _finish(child)


def kill(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL the child and its process group at once (a crash: no shutdown code runs)."""
    if proc.pid in _leaders:
        _kill_group(proc.pid)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait(timeout=10)
    _finish(proc)


def _finish(proc: subprocess.Popen[Any]) -> None:
    """After the child ended: its group's leftovers, and the reaper forgets it."""
    if proc.returncode is not None and proc.pid in _leaders:
        # The leader is reaped, so its number lives on only as the group of leftover children (if any).
        _kill_group(proc.pid)
        _leaders.pop(proc.pid, None)
        _reaper.unregister(proc.pid)
