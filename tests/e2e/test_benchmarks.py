"""``python -m benchmarks`` runs end to end (tiny sizes): every benchmark, the combined JSON, the plot.

The figures of a smoke run mean nothing; this only keeps the benchmarks from rotting. The real
runs are ``--quick`` and ``--full`` (docs/performance.md).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from node import processes

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
HEADLINE = ("verify_only_per_s", "ingest_per_s", "incremental_100_small_s", "incremental_100_large_s",
            "import_per_s", "sign_only_per_s", "import_vs_sign", "search_p95_ms", "hub_peak_rss_mb")


def test_combined_benchmark_prints_the_headline_figures_and_plots(tmp_path: Path) -> None:
    out, png = tmp_path / "smoke.json", tmp_path / "smoke.png"
    # its ``ncc`` processes forked from a preloaded interpreter as the suite's are (the figures of a smoke
    # run mean nothing; the code paths are the same)
    done = processes.run([sys.executable, "-m", "benchmarks", "--smoke", "--out", str(out), "--plot", str(png)],
                         cwd=ROOT, timeout=600, env={**os.environ, "NCC_PRELOAD": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report == json.loads(out.read_text())
    for key in HEADLINE:
        assert isinstance(report[key], int | float) and report[key] > 0, key
    assert report["load_errors"] == 0
    assert set(report["details"]) == {"protocol", "ingest", "import", "search", "load", "consortium"}
    assert isinstance(report["details"]["ingest"]["ingest_curve"], list)  # empty when the pull is this short
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and png.stat().st_size > 10_000
