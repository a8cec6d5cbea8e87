"""``ncc token create|list|revoke`` — user tokens (EdDSA JWTs signed by this instance's key)."""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from federation.groups import valid_group_name
from federation.timefmt import format_timestamp
from node.clock import utc_now
from node.commands.base import (
    CommandError,
    UsageError,
    add_data_dir,
    add_json,
    parse_duration,
    run_with_db,
    settings_for,
    table,
)
from node.keystore import KeyStoreError, load_key
from node.principal import HUB_ROLES, NODE_ROLES
from node.storage.models import ApiToken


def register(sub: Any) -> None:
    p = sub.add_parser("token", help="create, list or revoke user tokens")
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
    lst = tsub.add_parser("list", help="list the user tokens issued here (jti, role, subject, expiry, "
                          "revocation), newest first; the tokens themselves are never stored")
    add_data_dir(lst)
    add_json(lst, "each token's row")
    lst.set_defaults(run=list_tokens)
    r = tsub.add_parser("revoke", help="revoke a token by its jti")
    add_data_dir(r)
    r.add_argument("jti", metavar="JTI", help="the token's id (printed by `ncc token create`; `ncc token list`)")
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


def list_tokens(args: argparse.Namespace) -> int:
    settings = settings_for(args.data_dir)
    now = format_timestamp(utc_now())

    async def rows() -> list[dict[str, Any]]:
        return [{"jti": t.jti, "role": t.role, "subject": t.subject, "created_at": t.created_at,
                 "expires_at": t.expires_at, "revoked_at": t.revoked_at,
                 "state": "revoked" if t.revoked_at else "expired" if t.expires_at <= now else "active"}
                for t in await ApiToken.all().order_by("-created_at", "jti")]

    tokens = run_with_db(settings, rows)
    if args.json:
        for row in tokens:
            print(orjson.dumps(row).decode())
        return 0
    if not tokens:
        print("no user token has been issued")
        return 0
    print(table(("JTI", "ROLE", "STATE", "EXPIRES", "REVOKED", "SUBJECT"),
                [(t["jti"], t["role"], t["state"], t["expires_at"], t["revoked_at"], t["subject"]) for t in tokens]),
          end="")
    return 0
