"""node.forkserver through node.processes: a preloaded ``ncc`` answers as an exec'd one, and dies as one.

Each test starts its own fork server (the suite's own, from ``processes.preload()`` in tests/conftest.py,
is swapped out), and compares with ``ncc`` exec'd where the answer must be the same.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from node import processes
from tests.conftest import pid_alive, premigrated
from tests.integration.support import MINIMAL_ORG

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux only")


def stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name (state, ppid, pgrp, session, …)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[processes._ForkServer]:
    """A fork server of this test's own (the whole program preloaded, as the suite's)."""
    mine = processes._ForkServer(processes.PRELOAD_MODULES)
    monkeypatch.setattr(processes, "_fork_server", mine)
    yield mine
    if mine._sock is not None:
        mine._sock.close()  # the server exits when its launcher closes its end
    if mine._proc is not None:
        mine._proc.wait(timeout=10)


def both(argv: list[str], monkeypatch: pytest.MonkeyPatch, server: processes._ForkServer,
         **kwargs: object) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    forked = processes.run(argv, **kwargs)  # type: ignore[arg-type]
    assert server._proc is not None, "not forked: the server never started"
    monkeypatch.setattr(processes, "_fork_server", None)
    try:
        execd = processes.run(argv, **kwargs)  # type: ignore[arg-type]
    finally:
        monkeypatch.setattr(processes, "_fork_server", server)
    return forked, execd


def test_forked_commands_answer_as_execd_ones(server: processes._ForkServer, monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    for argv in (["--version"], ["no-such-command"], ["serve", "--datadir", "x"], ["token", "list"]):
        forked, execd = both(processes.ncc_argv(*argv), monkeypatch, server, env=processes.clean_env())
        assert (forked.returncode, forked.stdout, forked.stderr) == (execd.returncode, execd.stdout, execd.stderr)
    assert [forked.returncode] == [2]  # the last one: a usage error, on stderr
    # the working directory, the environment and stdin reach the command
    premigrated(tmp_path / "node")
    init = processes.run(processes.ncc_argv("init", "--role", "node", "--country", "DE", "--data-dir", "node"),
                         cwd=tmp_path, env=processes.clean_env())
    assert init.returncode == 0, init.stderr
    row = json.dumps({**MINIMAL_ORG, "legal_name": "Stdin Labs GmbH"})
    argv = processes.ncc_argv("import", "--dry-run", "--type", "organisation", "--data-dir", "node", "-")
    forked, execd = both(argv, monkeypatch, server, cwd=tmp_path, env=processes.clean_env(), input=row + "\n")
    assert (forked.returncode, forked.stdout, forked.stderr) == (execd.returncode, execd.stdout, execd.stderr)
    assert forked.returncode == 0, forked


def test_a_missing_working_directory_fails_as_for_subprocess(server: processes._ForkServer) -> None:
    with pytest.raises(FileNotFoundError):
        processes.run(processes.ncc_argv("--version"), cwd="/nonexistent/ncc-test")
    assert processes.preloading()  # the server is fine: the next command is forked again
    assert processes.run(processes.ncc_argv("--version")).returncode == 0


def test_a_forked_server_leads_its_session_and_dies_with_the_fork_server(
        server: processes._ForkServer, tmp_path: Path) -> None:
    data = premigrated(tmp_path / "hub")
    assert processes.run(processes.ncc_argv("init", "--role", "hub", "--data-dir", data)).returncode == 0
    port = processes.free_port()
    first = processes.spawn(processes.serve_argv(Path(data), port), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    assert isinstance(first, processes._Forked) and first._status_fd is not None
    try:
        processes.wait_ready([("hub", first, f"http://127.0.0.1:{port}/healthz")], timeout=30)
        assert server._proc is not None
        _state, ppid, pgrp, session = stat(first.pid)[:4]
        assert int(ppid) == server._proc.pid  # forked by the server, not exec'd by us
        assert int(pgrp) == int(session) == first.pid  # its own session, as spawn promises
        processes.stop([first], timeout=10)  # SIGTERM: a clean stop, its status through the pipe
        assert first.returncode == 0
        second = processes.spawn(processes.serve_argv(Path(data), port), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        processes.wait_ready([("hub", second, f"http://127.0.0.1:{port}/healthz")], timeout=30)
        os.kill(server._proc.pid, signal.SIGKILL)  # the fork server dies: its children die with it
        assert second.wait(timeout=10) == -signal.SIGKILL
        assert not pid_alive(second.pid)
        # the launcher goes on: the server is broken, so commands are exec'd from now on
        done = processes.run(processes.ncc_argv("--version"))
        assert done.returncode == 0 and done.stdout.startswith("ncc ")
        assert not processes.preloading()
    finally:
        processes.stop([first], timeout=5)


def test_other_interpreter_settings_are_execd(server: processes._ForkServer) -> None:
    assert processes.run(processes.ncc_argv("--version")).returncode == 0  # starts the server
    argv = processes.ncc_argv("--version")
    assert server.serves(argv, dict(os.environ))
    assert not server.serves(argv, {**os.environ, "PYTHONDEVMODE": "1"})  # set at interpreter start
    assert not server.serves([sys.executable, "-c", "pass"], None)  # only ``python -m node.cli``


def test_the_first_command_may_come_from_any_thread(server: processes._ForkServer) -> None:
    """Regression: the server is started from the launcher's long-lived thread; a first command from another
    thread is forked from that thread too, which then waited for itself (the benchmarks' parallel inits)."""
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        done = list(pool.map(lambda _: processes.run(processes.ncc_argv("--version"), timeout=60), range(3)))
    assert [d.returncode for d in done] == [0, 0, 0]
    assert server._proc is not None  # forked, not exec'd
