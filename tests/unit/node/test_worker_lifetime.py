"""Worker processes of the hub's ingest and of ``ncc import`` die with the process that started them,
however it ends. A ``multiprocessing`` worker holds both ends of its call queue, so it never sees its
parent go: before the parent-death signal, a hub (or ``ncc sync``) killed outright left its verification
worker running for good (the import's signing worker, which holds the node's key, is tested in
tests/integration/test_import_export.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import pid_alive

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")

HUB = """
import asyncio, os, sys, time
from datetime import UTC, datetime
from node.services.ingest import CheckPool, PullError

async def main():
    pool = CheckPool(1)
    try:
        await pool.check("DE", b"not a feed page", 0, 10, b"{}", datetime.now(UTC))
    except PullError:
        pass  # the worker is up: it checked (and refused) the page
    print(*pool._pool._processes, flush=True)
    time.sleep(60)

asyncio.run(main())
"""


def test_a_killed_hub_takes_its_verification_worker_with_it() -> None:
    hub = subprocess.Popen([sys.executable, "-c", HUB], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert hub.stdout is not None
        [worker] = map(int, hub.stdout.readline().split())
        assert pid_alive(worker)
        hub.send_signal(signal.SIGKILL)
        hub.wait(10)
        deadline = time.monotonic() + 5
        while pid_alive(worker):
            assert time.monotonic() < deadline, f"the verification worker {worker} outlived its hub"
            time.sleep(0.05)
    finally:
        hub.kill()
        hub.wait(10)


def test_a_process_whose_parent_is_gone_before_it_is_armed_exits() -> None:
    """The race the ``parent`` argument closes: the parent died before the signal was armed."""
    code = f"from node.processes import die_with_parent; die_with_parent(parent={2**22 + 7}); print('alive')"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=False)
    assert (done.returncode, done.stdout) == (1, "")
