"""A small, bounded run of ``benchmarks/load.py`` (issue 7): searches at a fixed rate while the hub
ingests a feed, over real processes on loopback — and no request may fail.

Same code as ``python -m benchmarks.load`` (its :func:`run`), at CI size: the hub holds 1,000
records, then ingests 5,000 from a second node while 12 s of open-loop search load arrive at
15 requests/s (~30 s in all; it runs alone, so every second of it is a second of the suite). Latency figures are printed, not asserted: the machine is shared.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.load import MIX, run

pytestmark = pytest.mark.e2e

RECORDS, SEED_RECORDS, RATE, DURATION_S = 5000, 1000, 15.0, 12.0


@pytest.mark.serial  # asserts a wall-clock bound
def test_search_load_while_the_hub_ingests_has_no_errors(tmp_path: Path) -> None:
    report = run(RECORDS, RATE, DURATION_S, "sqlite", seed_records=SEED_RECORDS, root=tmp_path)
    print(json.dumps({k: report[k] for k in ("rate_achieved_per_s", "errors", "latency_ms", "during_ingest",
                                             "ingest", "machine")}, indent=1))

    assert report["errors"] == 0, report["error_kinds"]
    assert report["error_kinds"] == {}
    assert report["requests"] == int(RATE * DURATION_S)
    assert report["ok"] == report["requests"]
    assert report["hub_alive"]

    ingest = report["ingest"]
    assert ingest["records_in_window"] > 0, ingest  # the hub ingested during the window ...
    assert ingest["first_page_s"] is not None and ingest["first_page_s"] < DURATION_S
    assert report["during_ingest"]["requests"] > 0  # ... while searches arrived
    assert ingest["error"] is None, ingest
    assert ingest["pull"] is None or ingest["pull"]["ok"], ingest["pull"]

    for field in ("benchmark", "backend", "records", "seed_records", "rate_asked_per_s", "rate_achieved_per_s",
                  "duration_s", "max_inflight", "timeout_s", "requests", "errors", "error_kinds", "latency_ms",
                  "client_send_lag_ms", "by_kind", "during_ingest", "after_ingest", "ingest", "machine"):
        assert field in report, field
    for kind in ("service", "scheduled"):
        assert set(report["latency_ms"][kind]) == {"p50", "p90", "p99", "max", "mean"}
        assert 0 < report["latency_ms"][kind]["p50"] <= report["latency_ms"][kind]["p99"]
    assert report["rate_asked_per_s"] == RATE
    assert report["rate_achieved_per_s"] == pytest.approx(RATE, rel=0.05)
    assert set(report["by_kind"]) == set(MIX)
    assert {"records_in_window", "per_s", "active_s", "finished_in_window"} <= set(ingest)
    assert {"cpu_count", "loadavg_before", "loadavg_after"} <= set(report["machine"])
