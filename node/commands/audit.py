"""``ncc audit`` — check the hub's transparency log against what this node published (DESIGN §14).

Prints one line per discrepancy (``<kind> <id> v<version>: why``) and a summary; exit 0 when all holds,
1 otherwise (also when the audit cannot run, with a one-line reason).
"""

from __future__ import annotations

import argparse
from typing import Any

from node.commands.base import CommandError, add_data_dir, run_with_db, settings_for
from node.context import Keyring, utc_now


def register(sub: Any) -> None:
    p = sub.add_parser("audit", help="node: audit the hub's transparency log against this node's records")
    add_data_dir(p)
    p.add_argument("--peer", metavar="URL",
                   help="another node's base URL: check that the hub showed it the same log (no split view)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from node.services.audit import AuditError, Auditor
    from node.services.nodefed import NodeFederation

    settings = settings_for(args.data_dir)
    if settings.role != "node":
        raise CommandError("ncc audit runs on a node (it checks the hub's log against the node's records)")
    keyring = Keyring(settings)
    federation = NodeFederation(settings, keyring.key, utc_now)
    auditor = Auditor(settings, federation, keyring.held_kids, utc_now)

    async def work() -> Any:
        try:
            return await auditor.run(args.peer)
        finally:
            await federation.close()

    try:
        report = run_with_db(settings, work)
    except AuditError as exc:
        raise CommandError(str(exc)) from exc
    for d in report.discrepancies:
        print(d.line())
    print(report.summary())
    return 0 if report.ok else 1
