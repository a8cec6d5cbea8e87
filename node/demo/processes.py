"""The demo's instances as child processes, started and stopped by the one launcher (:mod:`node.processes`):
free loopback ports, ``ncc serve`` subprocesses that die with the demo (also on SIGKILL), readiness, and a
shutdown that leaves no child behind."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from node import processes
from node.processes import free_ports

__all__ = ["DemoError", "Instance", "exited", "free_ports", "start", "stop", "wait_ready"]


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


def start(instance: Instance, env: Mapping[str, str]) -> None:
    """Start ``ncc serve`` for ``instance``; its output goes to ``<data-dir>/serve.log``.

    The child leads its own process group: Ctrl-C reaches only the demo, which stops its children in
    order (:func:`stop`); if the demo dies without doing so, the launcher's parent-death signal and
    reaper end them.
    """
    instance._log = instance.log_path.open("ab")
    instance.process = processes.spawn(processes.serve_argv(instance.data_dir), env=env,
                                       stdout=instance._log, stderr=subprocess.STDOUT)


def wait_ready(instances: list[Instance], timeout: float = 30.0) -> None:
    """Wait until every instance answers ``GET /readyz`` with 200.

    Raises:
        DemoError: a process exited, or the deadline passed.
    """
    by_name = {inst.name: inst for inst in instances}
    try:
        processes.wait_ready([(inst.name, inst.process, inst.url + "/readyz")
                              for inst in instances if inst.process is not None],
                             timeout=timeout, interval=0.1, log_tail=lambda name: by_name[name].log_tail(3))
    except processes.ProcessError as exc:
        raise DemoError(" ".join(str(exc).split())) from None


def stop(instances: list[Instance], timeout: float = 10.0) -> None:
    """Stop every child: SIGTERM (graceful aiohttp shutdown), then SIGKILL after ``timeout``."""
    processes.stop([i.process for i in instances], timeout=timeout)
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
