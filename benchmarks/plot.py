"""Plot ingest rate and search latency against records from ``python -m benchmarks`` reports.

    python -m benchmarks.plot REPORT.json [REPORT.json ...] -o docs/performance.png

Left: the hub's ingest rate while it reads a node's feed, against the records it has read (one
line per report), with that run's bare-verify rate and the 0.5× target. Right: search p95 per
query class against the index size (all reports' sizes merged, log scale), with the 50 ms target.
Needs matplotlib (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def plot(reports: Sequence[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    for report in reports:
        ing = report["details"]["ingest"]
        curve = ing.get("ingest_curve") or []
        label = f"{report['profile']} ({report['backend']}, {report['records']:,} records)"
        if curve:
            line = left.plot([p["records"] for p in curve], [p["per_s"] for p in curve], marker="o", ms=3,
                             label=f"ingest, {label}")[0]
            verify = report["verify_only_per_s"]
            left.axhline(verify, color=line.get_color(), ls=":", lw=1,
                         label=f"bare verify, one core ({verify:,.0f}/s)")
            left.axhline(verify * 0.5, color=line.get_color(), ls="--", lw=1, label="target 0.5× verify")
    left.set_xlabel("records read from the node's feed")
    left.set_ylabel("records per second")
    left.set_title("Hub ingest (HTTP pull + verify + validate + store + index)")
    left.set_ylim(bottom=0)
    left.grid(alpha=0.3)
    left.legend(fontsize=7)

    classes: dict[str, dict[int, float]] = {}
    for report in reports:
        for result in report["details"]["search"]:
            for name, figures in result["accelerated"]["classes"].items():
                classes.setdefault(name, {})[result["records"]] = figures["api"]["p95_ms"]
    for name, points in sorted(classes.items()):
        sizes = sorted(points)
        right.plot(sizes, [points[n] for n in sizes], marker="o", ms=3, label=name)
    right.axhline(50, color="red", ls="--", lw=1, label="target p95 50 ms")
    right.set_xscale("log")
    right.set_xlabel("indexed records")
    right.set_ylabel("p95 latency (ms)")
    right.set_title("Search p95 per query class (facets included)")
    right.set_ylim(bottom=0)
    right.grid(alpha=0.3)
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plot", description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, help="JSON written by python -m benchmarks --out")
    parser.add_argument("-o", "--out", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    plot([json.loads(p.read_text()) for p in args.reports], args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
