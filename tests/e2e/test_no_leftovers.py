"""An interrupted test run leaves nothing behind: every process a test starts dies with ``pytest``, also
when ``pytest`` is SIGKILLed (a CI timeout), with or without xdist workers in between.

Each case runs an inner ``pytest`` on a test that starts a real ``ncc serve`` (through the e2e harness, in
its own session as every instance is) and a child that starts a grandchild in its group (as a hub starts
its verification workers), then SIGKILLs that ``pytest`` and watches every one of them end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from node import processes
from tests.conftest import pid_alive

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]

INNER = '''
import json, os, subprocess, sys, time
from pathlib import Path

from node import processes
from tests.e2e.harness import cluster

GRANDPARENT = ("import subprocess, sys, time; "
               "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']); "
               "print(g.pid, flush=True); time.sleep(300)")


def test_holds_processes(tmp_path):
    with cluster(tmp_path, "sqlite") as c:
        hub = c.add("hub", "hub")
        hub.start()
        parent = processes.spawn([sys.executable, "-c", GRANDPARENT], stdout=subprocess.PIPE, text=True)
        grandchild = int(parent.stdout.readline())
        pids = {"ncc serve": hub.proc.pid, "child": parent.pid, "grandchild": grandchild,
                "reaper": processes.reaper_pid(), "pytest process": os.getpid()}
        target = Path(os.environ["NCC_TEST_PIDS"])
        target.with_suffix(".tmp").write_text(json.dumps(pids))
        target.with_suffix(".tmp").rename(target)  # whole or not at all
        time.sleep(300)
'''


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal and /proc: Linux only")
@pytest.mark.parametrize("workers", [[], ["-p", "xdist", "-n", "1", "--testrunuid", "ncc-no-leftovers"]],
                         ids=["serial", "xdist"])
def test_sigkill_of_pytest_ends_every_process_it_started(tmp_path: Path, workers: list[str]) -> None:
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "test_inner.py").write_text(INNER)
    pids_file = tmp_path / "pids"
    env = processes.clean_env({"NCC_TEST_PIDS": str(pids_file), "PYTHONPATH": str(ROOT)})
    # a run of its own: with this worker's PYTEST_XDIST_TESTRUNUID the inner pytest joined the outer run's
    # serial gate (tests/conftest.py) and waited behind a `serial` test of the other worker, which waited
    # for this test to end (the inner test "did not start its processes" in 120 s)
    env = {k: v for k, v in env.items() if not k.startswith("PYTEST_XDIST_")}
    # tests.conftest as a plugin: the inner run is outside the repository's test tree
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
            "--rootdir", str(tmp_path / "inner"), "-c", os.devnull, *workers, str(tmp_path / "inner")]
    log = (tmp_path / "inner.log").open("wb")
    inner = processes.spawn(argv, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not pids_file.exists():
            assert inner.poll() is None, (tmp_path / "inner.log").read_text()
            assert time.monotonic() < deadline, "the inner test did not start its processes"
            time.sleep(0.1)
        pids: dict[str, int] = json.loads(pids_file.read_text())
        assert all(pid_alive(pid) for pid in pids.values()), pids

        os.kill(inner.pid, signal.SIGKILL)  # the controller: a CI timeout, or `kill -9`
        inner.wait(timeout=10)

        deadline = time.monotonic() + 10
        while (left := {name: pid for name, pid in pids.items() if pid_alive(pid)}) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not left, f"still running {time.monotonic() - deadline + 10:.1f} s after SIGKILL of pytest: {left}"
    finally:
        processes.stop([inner])
        log.close()
        for lock in Path(tempfile.gettempdir()).glob("ncc-test-run-ncc-no-leftovers.*.lock"):
            lock.unlink(missing_ok=True)  # the killed run's controller could not remove them (tests/conftest.py)
