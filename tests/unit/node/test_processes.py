"""node.processes, the one launcher: what it promises besides tests/e2e/test_no_leftovers.py."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from node import processes
from tests.conftest import pid_alive

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux only")
def test_a_child_started_from_a_short_lived_thread_outlives_the_thread() -> None:
    """The kernel's parent-death signal fires when the forking *thread* ends: children of other threads
    are forked by the launcher's long-lived thread, so a thread pool finishing does not kill servers."""
    started: list[subprocess.Popen[bytes]] = []
    worker = threading.Thread(target=lambda: started.append(processes.spawn(SLEEPER)))
    worker.start()
    worker.join()
    try:
        time.sleep(0.3)
        assert pid_alive(started[0].pid)
        assert started[0].poll() is None
    finally:
        processes.stop(started, timeout=5)
    assert started[0].returncode is not None and not pid_alive(started[0].pid)


def test_stop_ends_the_child_and_what_it_started_in_its_group() -> None:
    code = ("import subprocess, sys, time; "
            "g = subprocess.Popen([sys.executable, '-c', 'import signal, time; "
            "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)']); "
            "print(g.pid, flush=True); time.sleep(60)")
    proc = processes.spawn([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    grandchild = int(proc.stdout.readline())
    processes.stop([proc], timeout=5)
    proc.stdout.close()
    deadline = time.monotonic() + 5
    while pid_alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(grandchild), "a grandchild that ignores SIGTERM outlived stop()"


def test_spawn_error_reaches_the_caller_from_any_thread() -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            processes.spawn(["/nonexistent/ncc-binary"])
        except FileNotFoundError as exc:
            errors.append(exc)

    worker = threading.Thread(target=start)
    worker.start()
    worker.join()
    assert len(errors) == 1


def test_wait_ready_names_the_process_that_exited() -> None:
    proc = processes.spawn([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(processes.ProcessError, match=r"^hub exited with code 3 .*\nlast words$"):
        processes.wait_ready([("hub", proc, f"http://127.0.0.1:{processes.free_port()}/healthz")], timeout=10,
                             log_tail=lambda name: "last words")
    processes.stop([proc])


def test_clean_env_drops_ncc_settings_but_those_kept() -> None:
    env = processes.clean_env({"NCC_LOG_LEVEL": "WARNING"}, keep=("NCC_TEST_PG",),
                              base={"PATH": "/bin", "NCC_DB": "x", "NCC_TEST_PG": "pg", "NCC_LOG_LEVEL": "DEBUG"})
    assert env == {"PATH": "/bin", "NCC_TEST_PG": "pg", "NCC_LOG_LEVEL": "WARNING"}


def test_free_ports_are_distinct() -> None:
    ports = processes.free_ports(5)
    assert len(set(ports)) == 5 and all(1024 <= p <= 65535 for p in ports)


def test_a_reaped_leaders_number_given_to_another_process_is_not_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a child in its own session is reaped and its group is empty, the kernel may give its number
    to a new process that leads a group of its own (another test's server: pgid == pid). Cleaning up the
    old group then must not kill it (this killed a freshly started hub in CI: pid_max is 32768)."""
    stranger = subprocess.Popen(SLEEPER, start_new_session=True)
    try:
        class Reaped:  # what stop() holds for our old child: reaped, its number now the stranger's
            pid = stranger.pid
            returncode = 0

        monkeypatch.setitem(processes._leaders, stranger.pid, "1")  # our child started at tick 1
        processes._finish(Reaped())  # type: ignore[arg-type]
        time.sleep(0.2)
        assert stranger.poll() is None and pid_alive(stranger.pid)
        assert stranger.pid not in processes._leaders
    finally:
        stranger.kill()
        stranger.wait()
