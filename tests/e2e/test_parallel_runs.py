"""What makes the parallel run (pytest-xdist, pyproject.toml addopts) safe: the ``serial`` marker of
tests/conftest.py. An inner ``pytest -n 2`` runs tests that log when their call starts and ends; no
``serial`` call may overlap any other test's call, while the others do run side by side."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from node import processes

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]

INNER = '''
import json, os, time

import pytest


def log(name, seconds):
    start = time.time()
    time.sleep(seconds)
    with open(os.environ["NCC_TEST_LOG"], "a") as f:
        f.write(json.dumps([name, start, time.time()]) + "\\n")


@pytest.mark.serial
@pytest.mark.parametrize("i", range(3))
def test_serial(i):
    log(f"serial{i}", 0.4)


@pytest.mark.parametrize("i", range(10))
def test_other(i):
    log(f"other{i}", 0.3)
'''


def test_serial_calls_run_alone_and_the_others_in_parallel(tmp_path: Path) -> None:
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "test_inner.py").write_text(INNER)
    log = tmp_path / "calls.jsonl"
    done = processes.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest", "-c", os.devnull,
         "--rootdir", str(tmp_path / "inner"), "-o", "markers=serial: runs alone", "-p", "xdist", "-n", "2",
         "--dist", "worksteal", str(tmp_path / "inner")],
        env=processes.clean_env({"NCC_TEST_LOG": str(log), "PYTHONPATH": str(ROOT)}), cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(calls) == 13

    def overlap(a: list, b: list) -> bool:
        return a[1] < b[2] and b[1] < a[2]

    serial = [c for c in calls if c[0].startswith("serial")]
    clashes = [(s[0], c[0]) for s in serial for c in calls if c is not s and overlap(s, c)]
    assert clashes == []
    others = [c for c in calls if c[0].startswith("other")]
    assert any(overlap(a, b) for i, a in enumerate(others) for b in others[i + 1:]), "no two tests ran side by side"


MODULE = '''
import json, os, time

import pytest


@pytest.fixture(scope="module")
def federation(request):
    with open(os.environ["NCC_TEST_LOG"], "a") as f:
        f.write(json.dumps([request.module.__name__, os.environ.get("PYTEST_XDIST_WORKER")]) + "\\n")
    time.sleep(0.2)
    return request.module.__name__


@pytest.mark.parametrize("i", range(COUNT))
def test_step(federation, i):
    time.sleep(SECONDS)
'''


def test_a_modules_fixture_is_built_by_one_worker(tmp_path: Path) -> None:
    """tests/scheduler.py: worksteal's cuts (the first share, every steal) fall between test files, so a
    module-scoped fixture — in this suite a federation of real processes — is built once. (A queue holding
    one file only is still cut inside it, as worksteal does; ``test_z``, short tests without a fixture,
    ends the collection as unit tests end the suite's.) Plain worksteal builds some fixture twice here."""
    inner = tmp_path / "inner"
    inner.mkdir()
    for name, count, seconds in (("a", 7, 0.25), ("b", 5, 0.05), ("c", 9, 0.2), ("d", 3, 0.05), ("e", 8, 0.15)):
        (inner / f"test_{name}.py").write_text(MODULE.replace("COUNT", str(count)).replace("SECONDS", str(seconds)))
    (inner / "test_z.py").write_text("import pytest, time\n\n\n@pytest.mark.parametrize('i', range(40))\n"
                                     "def test_short(i):\n    time.sleep(0.02)\n")
    log = tmp_path / "fixtures.jsonl"
    done = processes.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest", "-c", os.devnull,
         "--rootdir", str(inner), "-p", "xdist", "-n", "2", "--dist", "worksteal", str(inner)],
        env=processes.clean_env({"NCC_TEST_LOG": str(log), "PYTHONPATH": str(ROOT)}), cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    built = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(module for module, _ in built) == ["test_a", "test_b", "test_c", "test_d", "test_e"], built
    assert len({worker for _, worker in built}) == 2, "both workers ran tests"
