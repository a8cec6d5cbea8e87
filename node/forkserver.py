"""A preloaded launcher of ``python -m node.cli …``: one interpreter imports the program once, then forks a
child per command instead of starting a new interpreter that imports it all again.

Why: a test run starts ~450 ``ncc`` processes; each fresh interpreter spent 0.6–1 s of CPU importing
aiohttp, tortoise, the models and the web application before doing its work — more than a third of the
suite's CPU on two cores (issue 13). gunicorn's ``--preload``, Spring's and nailgun's servers do the same.
Only the launcher of :mod:`node.processes` uses it, and only when asked (:func:`node.processes.preload`:
the test suite, unless ``NCC_TEST_EXEC=1``, and the benchmarks' smoke test through ``NCC_PRELOAD=1``);
the demo, the benchmarks' real runs and every deployment exec as before.

Run as ``python -m node.forkserver FD MODULE…`` with FD one end of a ``SOCK_SEQPACKET`` socket pair whose
other end only the launcher holds. It imports every MODULE, checks it is still one thread (forking a
process with other threads can copy a lock held by one of them), says ``ready``, then answers requests:

- the launcher sends a JSON request (``argv`` after ``-m``, ``env``, ``cwd``, ``new_session``) with three
  file descriptors (the child's stdin, stdout, stderr) attached;
- the server forks; the child arms its parent-death signal, takes the descriptors as 0/1/2, closes every
  other one, leads a new session if asked, changes directory, replaces its environment, reports that it
  has started (or the ``errno`` of what failed: a missing ``cwd`` fails as it does for ``subprocess``) and
  runs the module as ``python -m`` would (``runpy``: ``__main__``, ``sys.argv``), then exits with its code;
- the server answers with the child's pid and, attached, the read end of a pipe on which it writes the
  child's raw wait status when the child ends (end of file without a status: the server itself died, and
  the child with it) and a pidfd of the child (readable once it has ended: the launcher's ``wait`` returns
  only when the child is gone, also when the server died first).

Dying together: the server dies with the launcher (parent-death signal, set by the launcher), every child
dies with the server (its own parent-death signal); children in their own sessions are also registered
with the launcher's reaper, as exec'd ones are. When the launcher closes its end, the server exits.

Standard library and :mod:`node.processes` (its parent-death signal) only, besides the preloaded modules;
nothing here runs in the launcher.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import importlib
import io
import json
import os
import runpy
import selectors
import signal
import socket
import sys
import threading
import traceback
from typing import Any

from node.processes import die_with_parent

#: The largest request (argv, environment, directory) the server reads.
MAX_REQUEST = 1 << 20


def _std_streams() -> None:
    """New ``sys.stdin/stdout/stderr`` over descriptors 0–2, as a fresh interpreter makes them (the
    inherited objects were made for the server's descriptors: buffering decided for another file)."""
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    encoding = os.environ.get("PYTHONIOENCODING", "utf-8").split(":")[0] or "utf-8"

    def stream(fd: int, mode: str, errors: str, line: bool) -> io.TextIOWrapper:
        raw = open(fd, mode + "b", buffering=0 if unbuffered and mode == "w" else -1, closefd=False)  # noqa: SIM115 - sys.stdout lives on
        return io.TextIOWrapper(raw, encoding=encoding, errors=errors, line_buffering=line,  # type: ignore[arg-type]
                                write_through=unbuffered and mode == "w")

    sys.stdin = sys.__stdin__ = stream(0, "r", "strict", False)  # type: ignore[misc]
    sys.stdout = sys.__stdout__ = stream(1, "w", "strict", os.isatty(1))  # type: ignore[misc]
    sys.stderr = sys.__stderr__ = stream(2, "w", "backslashreplace", True)  # type: ignore[misc]


def _exit_code(code: Any) -> int:
    """What the interpreter makes of ``sys.exit(code)``."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _finish(code: int) -> None:
    """End the child as the interpreter would: non-daemon threads joined, ``atexit`` run, streams flushed."""
    with contextlib.suppress(BaseException):
        threading._shutdown()  # type: ignore[attr-defined]
    with contextlib.suppress(BaseException):
        atexit._run_exitfuncs()
    for s in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            s.flush()
    os._exit(code & 0xFF)


def _child(request: dict[str, Any], fds: list[int], started: int, server: int, server_cwd: str) -> None:
    """In the forked child: become the requested process and run it (never returns)."""
    code = 1
    try:
        die_with_parent()
        if os.getppid() != server:  # the server died before the signal was armed
            os._exit(1)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        keep = {0, 1, 2, started}
        for name in os.listdir("/proc/self/fd"):
            if int(name) not in keep:
                with contextlib.suppress(OSError):
                    os.close(int(name))
        try:
            if request.get("new_session"):
                os.setsid()
            if request.get("cwd"):
                os.chdir(request["cwd"])
        except OSError as exc:
            os.write(started, f"E{exc.errno or errno.EIO}".encode())
            os._exit(127)
        os.environ.clear()
        os.environ.update(request["env"])
        if sys.path and sys.path[0] == server_cwd:  # ``-m`` puts the working directory first
            sys.path[0] = os.getcwd()
        os.write(started, b"ok")
        os.close(started)
        _std_streams()
        sys.argv = ["-m", *request["argv"][1:]]
        # ``python -m`` runs the module as ``__main__`` only; its preloaded copy would make runpy warn
        sys.modules.pop(request["argv"][0], None)
        try:
            runpy.run_module(request["argv"][0], run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc.code)
        except KeyboardInterrupt:
            code = 130
        except BaseException:  # noqa: BLE001 - reported as the interpreter would, then exit 1
            traceback.print_exc()
            code = 1
    finally:
        _finish(code)


def serve(sock: socket.socket, modules: list[str]) -> int:
    for name in modules:
        importlib.import_module(name)
    if threading.active_count() != 1:  # importing started a thread: forking would not be safe
        sock.send(b"threads")
        return 3
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the launcher's to handle
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    me, cwd = os.getpid(), os.getcwd()
    status: dict[int, int] = {}  # child pid -> write end of its status pipe
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    sel.register(wake_r, selectors.EVENT_READ)
    sock.send(b"ready")
    while True:
        for key, _ in sel.select():
            if key.fileobj is sock:
                try:
                    data, fds, _, _ = socket.recv_fds(sock, MAX_REQUEST, 3)
                except OSError:
                    return 0
                if not data:  # the launcher closed its end
                    return 0
                _launch(sock, json.loads(data), fds, status, me, cwd)
            else:
                with contextlib.suppress(BlockingIOError):
                    while os.read(wake_r, 512):
                        pass
                _reap(status)


def _launch(sock: socket.socket, request: dict[str, Any], fds: list[int], status: dict[int, int],
            me: int, cwd: str) -> None:
    status_r, status_w = os.pipe()
    started_r, started_w = os.pipe()
    try:
        pid = os.fork()
    except OSError as exc:
        for fd in (*fds, status_r, status_w, started_r, started_w):
            os.close(fd)
        sock.send(json.dumps({"errno": exc.errno}).encode())
        return
    if pid == 0:
        _child(request, fds, started_w, me, cwd)
    os.close(started_w)
    for fd in fds:
        os.close(fd)
    report = b""
    while chunk := os.read(started_r, 64):
        report += chunk
    os.close(started_r)
    status[pid] = status_w
    if report.startswith(b"E"):
        sock.send(json.dumps({"errno": int(report[1:])}).encode())
        os.close(status_r)
        return
    pidfd = os.pidfd_open(pid)  # opened before the child can be reaped: it names this process only
    socket.send_fds(sock, [json.dumps({"pid": pid}).encode()], [status_r, pidfd])
    os.close(status_r)
    os.close(pidfd)
    _reap(status)


def _reap(status: dict[int, int]) -> None:
    """Collect every ended child and write its wait status to its pipe."""
    while True:
        try:
            pid, sts = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        fd = status.pop(pid, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.write(fd, f"{sts}\n".encode())
            os.close(fd)


def main() -> int:
    sock = socket.socket(fileno=int(sys.argv[1]))
    return serve(sock, sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
