"""The demo's instances as child processes: free loopback ports, ``ncc serve`` subprocesses, readiness,
and a shutdown that leaves no child behind."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


class DemoError(Exception):
    """The demo could not go on; the message is one line."""


@dataclass
class Instance:
    """One hub or node of the demo: its data dir, port and (once started) its process."""

    name: str  # "hub" or the node's country
    role: str
    data_dir: Path
    port: int
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def country(self) -> str:
        return "" if self.role == "hub" else self.name

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "serve.log"

    def log_tail(self, lines: int = 5) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


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
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def start(instance: Instance, env: Mapping[str, str]) -> None:
    """Start ``ncc serve`` for ``instance``; its output goes to ``<data-dir>/serve.log``."""
    instance._log = instance.log_path.open("ab")
    instance.process = subprocess.Popen(
        [sys.executable, "-m", "node.cli", "serve", "--data-dir", str(instance.data_dir)],
        stdin=subprocess.DEVNULL, stdout=instance._log, stderr=subprocess.STDOUT, env=dict(env),
    )


def wait_ready(instances: list[Instance], timeout: float = 30.0) -> None:
    """Wait until every instance answers ``GET /readyz`` with 200.

    Raises:
        DemoError: a process exited, or the deadline passed.
    """
    deadline = time.monotonic() + timeout
    pending = list(instances)
    while pending:
        for inst in list(pending):
            if inst.process is not None and inst.process.poll() is not None:
                raise DemoError(f"{inst.name} exited with code {inst.process.returncode}: {inst.log_tail(3)}")
            try:
                with urllib.request.urlopen(inst.url + "/readyz", timeout=1) as r:
                    if r.status == 200:
                        pending.remove(inst)
            except (urllib.error.URLError, OSError):
                pass
        if pending:
            if time.monotonic() > deadline:
                raise DemoError(f"not ready after {timeout:.0f} s: {', '.join(i.name for i in pending)}")
            time.sleep(0.1)


def stop(instances: list[Instance], timeout: float = 10.0) -> None:
    """Stop every child: SIGTERM (graceful aiohttp shutdown), then SIGKILL after ``timeout``."""
    running = [i for i in instances if i.process is not None and i.process.poll() is None]
    for inst in running:
        assert inst.process is not None
        try:
            inst.process.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    for inst in running:
        assert inst.process is not None
        try:
            inst.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            inst.process.kill()
            inst.process.wait()
    for inst in instances:
        if inst._log is not None:
            inst._log.close()
            inst._log = None


def exited(instances: list[Instance]) -> Instance | None:
    """The first instance whose process has ended, if any."""
    for inst in instances:
        if inst.process is not None and inst.process.poll() is not None:
            return inst
    return None

