"""``ncc erasure status`` — each record this node erased, and whether the hub has purged it (its signed
receipt verified against the directory's hub keys and the transparency log). Exit 1 when a receipt
does not hold (or the hub cannot be asked); pending purges are listed and are not failures."""

from __future__ import annotations

import argparse
from typing import Any

from node.commands.base import CommandError, add_data_dir, run_with_db, settings_for
from node.context import Keyring, utc_now


def register(sub: Any) -> None:
    p = sub.add_parser("erasure", help="node: erasures (GDPR Art. 17) and the hub's receipts")
    esub = p.add_subparsers(dest="erasure_command", metavar="ACTION")
    esub.required = True
    s = esub.add_parser("status", help="list each erased record with the hub's purge receipt, verified")
    add_data_dir(s)
    s.set_defaults(run=status)


def status(args: argparse.Namespace) -> int:
    from node.services.nodefed import NodeFederation
    from node.services.receipts import ReceiptError, erasure_status

    settings = settings_for(args.data_dir)
    if settings.role != "node":
        raise CommandError("ncc erasure status runs on a node")
    federation = NodeFederation(settings, Keyring(settings).key, utc_now)

    async def work() -> Any:
        try:
            return await erasure_status(federation, utc_now)
        finally:
            await federation.close()

    try:
        statuses = run_with_db(settings, work)
    except ReceiptError as exc:
        raise CommandError(str(exc)) from exc
    for s in statuses:
        print(s.line())
    counts = {state: sum(1 for s in statuses if s.state == state)
              for state in ("verified", "pending", "never-shared", "invalid")}
    print(f"{len(statuses)} erased: {counts['verified']} purged with a verified receipt, {counts['pending']} pending, "
          f"{counts['never-shared']} never shared, {counts['invalid']} invalid")
    return 1 if counts["invalid"] else 0
