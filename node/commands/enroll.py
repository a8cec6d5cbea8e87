"""``ncc enroll`` — join the federation with a one-time invitation from the hub."""

from __future__ import annotations

import argparse
from typing import Any

from node.commands.base import CommandError, add_data_dir, run_with_db, settings_for
from node.context import Keyring, utc_now


def register(sub: Any) -> None:
    p = sub.add_parser("enroll", help="enroll this node with the hub (one-time token from `ncc hub invite`)")
    add_data_dir(p)
    p.add_argument("--hub", required=True, metavar="URL", help="the hub's base URL")
    p.add_argument("--token", required=True, metavar="T", help="the invitation token")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from node.services.nodefed import FederationError, NodeFederation

    settings = settings_for(args.data_dir)
    if settings.role != "node":
        raise CommandError("only a node enrolls (this data dir is a hub)")
    keyring = Keyring(settings)
    fed = NodeFederation(settings, keyring.key, utc_now)

    async def work() -> dict[str, Any]:
        try:
            return await fed.enroll(args.hub, args.token.strip())
        except FederationError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            await fed.close()

    directory = run_with_db(settings, work)
    print(f"enrolled {settings.country} ({keyring.current.kid}) with {args.hub}; directory serial {directory['serial']}")
    return 0
