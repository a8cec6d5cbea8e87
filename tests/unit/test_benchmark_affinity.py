"""The benchmarks measure bare rates on one pinned core, and nothing after that stays pinned.

Regression: ``benchmarks.protocol`` pinned its process and never let go; ``python -m benchmarks``
runs it first, so every ingest, import and search of a combined run (and every process they start)
ran on one core of two — the ``--quick`` ratios were those of a one-core machine.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from benchmarks import protocol
from benchmarks._harness import one_core

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                                reason="needs CPU affinity and two usable cores")


def test_one_core_pins_the_block_and_restores_the_process() -> None:
    before = os.sched_getaffinity(0)
    with one_core() as name:
        assert os.sched_getaffinity(0) == {min(before)} and name == f"cpu{min(before)}"
        child = subprocess.run([sys.executable, "-c", "import os; print(len(os.sched_getaffinity(0)))"],
                               capture_output=True, text=True, check=True)
        assert child.stdout.strip() == "1"  # what the block starts is pinned with it
    assert os.sched_getaffinity(0) == before


def test_the_protocol_benchmark_leaves_every_core_to_what_runs_after_it() -> None:
    before = os.sched_getaffinity(0)
    report = protocol.run(50, 1)
    assert report["machine"]["pinned"] == f"cpu{min(before)}"
    assert os.sched_getaffinity(0) == before
    child = subprocess.run([sys.executable, "-c", "import os; print(len(os.sched_getaffinity(0)))"],
                           capture_output=True, text=True, check=True)
    assert int(child.stdout) == len(before)
