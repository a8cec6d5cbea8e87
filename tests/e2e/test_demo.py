"""``ncc demo --once`` end to end: real hub and node processes, cross-border results, nothing left behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from node import processes

pytestmark = pytest.mark.e2e

TIMEOUT_S = 120


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process reuses the pid
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][:1]
    except (OSError, IndexError):
        return False
    return state != "Z"


def run_demo(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NCC_")}
    env["NCC_DB"] = "postgres://must-not-reach-the-demo-instances/none"  # children get a clean environment
    return processes.run([sys.executable, "-m", "node.cli", "demo", "--once", *args], timeout=TIMEOUT_S, env=env,
                         cwd=cwd)


def test_demo_once_shows_verified_cross_border_results_and_cleans_up() -> None:
    proc = run_demo("--records", "20")
    out = proc.stdout
    assert proc.returncode == 0, f"stdout:\n{out}\nstderr:\n{proc.stderr}"

    summaries = re.findall(r"-> (\d+) results.* from (\d+) countries: ([A-Z, ]+); (all verified|NOT ALL VERIFIED)", out)
    assert summaries, out
    _total, first_count, first_countries, _verified = summaries[0]
    assert int(first_count) >= 2, out  # post-quantum, sector energy: found on several nodes
    assert set(first_countries.split(", ")) <= {"DE", "FR", "EE"}
    assert all(s[3] == "all verified" for s in summaries), out
    assert "signature ok" in out and "INVALID" not in out and "NOT VERIFIED" not in out
    result_lines = [line for line in out.splitlines() if re.match(r"\s+(DE|FR|EE)\s+(organisation|expert|project|facility)\s", line)]
    assert {line.split()[0] for line in result_lines} >= {"DE", "FR"}, out

    assert "/api/v1/search" in out and "The federation ran at (--once" in out
    # regression (black-box pass): --once printed tokens and curl commands for servers it had stopped
    assert "hub analyst:" not in out and "curl " not in out
    pids = [int(p) for p in re.findall(r"\b(?:hub|[A-Z]{2}) pid (\d+)", out)]
    assert len(pids) == 4, out
    assert not [p for p in pids if pid_alive(p)], "a demo child process survived"
    tmp = re.search(r"initialised\s+hub and 3 nodes in (\S+)", out)
    assert tmp is not None and not Path(tmp.group(1)).exists(), "the temporary data dir was not removed"


def test_demo_keeps_a_given_data_dir_and_refuses_a_non_empty_one(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    proc = run_demo("--nodes", "2", "--records", "6", "--data-dir", str(target))
    assert proc.returncode == 0, proc.stderr
    assert (target / "hub" / "config.toml").exists() and (target / "fr" / "ncc.db").exists()
    again = run_demo("--nodes", "2", "--records", "6", "--data-dir", str(target))
    assert again.returncode == 1 and "not empty" in again.stderr


def test_demo_usage_errors() -> None:
    proc = run_demo("--nodes", "28")
    # A bad option value is a usage error (exit 2), named by argparse (regression: exit 1).
    assert proc.returncode == 2 and "argument --nodes: must be between 1 and 27" in proc.stderr
