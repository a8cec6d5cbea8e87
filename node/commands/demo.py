"""``ncc demo`` — a hub and N nodes on loopback with a synthetic Community, enrolled, synced and
searched; keeps serving until Ctrl-C (``--once``: print and stop)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from node.commands.base import CommandError, int_between
from node.demo.countries import DEMO_ORDER

MAX_RECORDS = 10_000


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo", help="run a hub and nodes locally with synthetic data, sync and search them",
        description="Start a hub and N nodes (DE, FR, EE, AT, NL, … in that order) on free loopback ports, "
                    "enroll them, load a seeded synthetic dataset per node, sync, run cross-border searches "
                    "and keep serving until Ctrl-C.",
    )
    p.add_argument("--nodes", type=int_between(1, len(DEMO_ORDER)), default=3, metavar="N",
                   help=f"number of nodes, 1–{len(DEMO_ORDER)} (default 3)")
    p.add_argument("--records", type=int_between(1, MAX_RECORDS), default=60, metavar="N",
                   help=f"records per node, 1–{MAX_RECORDS} (default 60)")
    p.add_argument("--seed", type=int, default=887, help="dataset seed (default 887)")
    p.add_argument("--data-dir", metavar="D",
                   help="where to create the instances (must be empty; kept afterwards). Default: a temporary "
                        "directory, removed on exit")
    p.add_argument("--once", action="store_true", help="exit after printing the results (children stopped)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from node.demo.orchestrate import DemoOptions, run_demo
    from node.demo.processes import DemoError

    options = DemoOptions(nodes=args.nodes, records=args.records, seed=args.seed,
                          data_dir=Path(args.data_dir) if args.data_dir else None, once=args.once)
    try:
        return run_demo(options, out=lambda line: print(line, flush=True))
    except DemoError as exc:
        raise CommandError(str(exc)) from exc
