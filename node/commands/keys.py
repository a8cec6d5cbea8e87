"""``ncc keys rotate`` — replace this instance's key; the hub learns the new one from a statement
signed by the old one and keeps the old key valid for a grace period."""

from __future__ import annotations

import argparse
from typing import Any

from node.commands.base import CommandError, add_data_dir, run_with_db, settings_for
from node.context import Keyring, utc_now


def register(sub: Any) -> None:
    p = sub.add_parser("keys", help="key management")
    ksub = p.add_subparsers(dest="keys_command", metavar="ACTION")
    ksub.required = True
    r = ksub.add_parser("rotate", help="make a new key, have the hub add it, retire the old one")
    add_data_dir(r)
    r.set_defaults(run=rotate)


def rotate(args: argparse.Namespace) -> int:
    from node.services.nodefed import REFUSAL_HINTS, FederationError, NodeFederation

    settings = settings_for(args.data_dir)
    if settings.role != "node":
        raise CommandError("hub key rotation is not supported yet; rotate node keys only")
    keyring = Keyring(settings)
    fed = NodeFederation(settings, keyring.key, utc_now)

    async def work() -> dict[str, Any]:
        try:
            return await fed.rotate_key()
        except FederationError as exc:
            hint = REFUSAL_HINTS.get(exc.reason or "")
            # a revoked (or rotated-out) key cannot name its successor: only re-enrollment helps
            raise CommandError(f"{exc}; {hint}" if hint else str(exc)) from exc
        finally:
            await fed.close()

    result = run_with_db(settings, work)
    tail = f"; the hub accepts the old key until {result['old_key_not_after']}" if result.get("old_key_not_after") else ""
    print(f"rotated {result['old_kid']} -> {result['kid']}{tail}")
    return 0
