"""``ncc token create|revoke`` — user tokens (EdDSA JWTs signed by this instance's key)."""

from __future__ import annotations

import argparse
from typing import Any

from federation.groups import valid_group_name
from federation.timefmt import format_timestamp
from node.commands.base import (
    CommandError,
    UsageError,
    add_data_dir,
    parse_duration,
    run_with_db,
    settings_for,
)
from node.context import utc_now
from node.http.auth import HUB_ROLES, NODE_ROLES
from node.keystore import KeyStoreError, load_key
from node.storage.models import ApiToken


def register(sub: Any) -> None:
    p = sub.add_parser("token", help="create or revoke user tokens")
    tsub = p.add_subparsers(dest="token_command", metavar="ACTION")
    tsub.required = True
    c = tsub.add_parser("create", help="create a token; prints it alone on the last line")
    add_data_dir(c)
    c.add_argument("--role", required=True, help="node: admin|editor|reader|assessor; hub: admin|analyst")
    c.add_argument("--subject", default="", help="who the token is for (name or e-mail)")
    c.add_argument("--group", action="append", default=[], metavar="NAME",
                   help="hub analysts: a sharing group whose records the token reads (repeatable)")
    c.add_argument("--ttl", default=None, metavar="DURATION",
                   help="lifetime, e.g. 30d, 12h (default: setting token_ttl_s; at most token_max_ttl_s)")
    c.set_defaults(run=create)
    r = tsub.add_parser("revoke", help="revoke a token by its jti")
    add_data_dir(r)
    r.add_argument("jti", metavar="JTI")
    r.set_defaults(run=revoke)


def create(args: argparse.Namespace) -> int:
    settings = settings_for(args.data_dir)
    roles = HUB_ROLES if settings.role == "hub" else NODE_ROLES
    if args.role not in roles:
        raise CommandError(f"role must be one of {', '.join(roles)} on a {settings.role}")
    ttl = settings.token_ttl_s
    if args.ttl is not None:
        try:
            ttl = parse_duration(args.ttl, settings.token_max_ttl_s)
        except CommandError as exc:
            raise UsageError(f"--ttl: {exc} (setting token_max_ttl_s)") from exc
    groups = tuple(dict.fromkeys(args.group))
    if groups and (settings.role != "hub" or args.role != "analyst"):
        raise UsageError("--group is for hub analysts' tokens (the hub admin sees every group)")
    bad = [g for g in groups if not valid_group_name(g)]
    if bad:
        raise UsageError(f"--group {bad[0][:80]!r}: a group name matches ^[a-z0-9-]{{1,63}}$")
    try:
        key = load_key(settings.key_path, settings.role, settings.country)
    except KeyStoreError as exc:
        raise CommandError(str(exc)) from exc

    async def store() -> Any:
        from node.services.usertokens import issue_and_record
        from node.storage.reads import hub_groups

        unknown = sorted(set(groups) - set(await hub_groups())) if groups else []
        if unknown:
            raise CommandError(f"no sharing group {unknown[0]} (ncc hub group create)")
        return await issue_and_record(key, settings.instance_id, args.role, args.subject, utc_now(), ttl, groups)

    issued = run_with_db(settings, store)
    scope = f", groups {', '.join(sorted(groups))}" if groups else ""
    print(f"# {args.role} token for {issued.subject}{scope}, jti {issued.jti}, expires {issued.expires_at}")
    print(issued.token)
    return 0


def revoke(args: argparse.Namespace) -> int:
    settings = settings_for(args.data_dir)

    async def mark() -> int:
        return await ApiToken.filter(jti=args.jti, revoked_at=None).update(revoked_at=format_timestamp(utc_now()))

    if run_with_db(settings, mark) == 0:
        raise CommandError(f"no active token with jti {args.jti}")
    print(f"revoked {args.jti}")
    return 0
