"""``ncc hub …`` — hub administration: invitations, suspension, query-only mode, key revocation."""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from node.commands.base import CommandError, add_data_dir, run_with_db, settings_for, timestamp_arg
from node.config import COUNTRY_RE, Settings
from node.context import utc_now
from node.errors import ApiError
from node.keystore import KeyStoreError, load_key


def register(sub: Any) -> None:
    p = sub.add_parser("hub", help="hub administration (invite, suspend, activate, mode, revoke-key, nodes)")
    hsub = p.add_subparsers(dest="hub_command", metavar="ACTION")
    hsub.required = True
    i = hsub.add_parser("invite", help="print a one-time 24 h enrollment token for a country (last line)")
    add_data_dir(i)
    i.add_argument("country", metavar="XX")
    i.set_defaults(run=invite)
    for name, helptext in (("suspend", "stop accepting and pulling a node"), ("activate", "re-activate a node")):
        s = hsub.add_parser(name, help=helptext)
        add_data_dir(s)
        s.add_argument("country", metavar="XX")
        s.set_defaults(run=set_status, status="suspended" if name == "suspend" else "active")
    m = hsub.add_parser("mode", help="replicate a node's feed, or only query it live")
    add_data_dir(m)
    m.add_argument("country", metavar="XX")
    m.add_argument("mode", choices=("replicate", "query-only"))
    m.set_defaults(run=set_mode)
    r = hsub.add_parser("revoke-key", help="revoke a node key: what the hub receives signed by it from then on is "
                        "rejected; --at in the past also withdraws what it received since")
    add_data_dir(r)
    r.add_argument("kid", metavar="KID")
    r.add_argument("--at", type=timestamp_arg, help="revocation time YYYY-MM-DDTHH:MM:SSZ (default now)")
    r.set_defaults(run=revoke_key)
    n = hsub.add_parser("nodes", help="list enrolled nodes and their keys")
    add_data_dir(n)
    n.set_defaults(run=nodes)


def _hub(settings: Settings) -> Any:
    from node.services.hub import HubService

    if settings.role != "hub":
        raise CommandError("this data dir is not a hub (role = node)")
    try:
        key = load_key(settings.key_path, settings.role, settings.country)
    except KeyStoreError as exc:
        raise CommandError(str(exc)) from exc
    return HubService(settings, lambda: key, utc_now)


def _run(settings: Settings, work: Any) -> Any:
    async def guarded() -> Any:
        try:
            return await work()
        except ApiError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from exc

    return run_with_db(settings, guarded)


def _country(text: str) -> str:
    code = text.upper()
    if not COUNTRY_RE.match(code):
        raise CommandError(f"{text!r} is not an ISO 3166-1 alpha-2 country code")
    return code


def invite(args: argparse.Namespace) -> int:
    settings = settings_for(args.data_dir)
    hub = _hub(settings)
    country = _country(args.country)
    token = _run(settings, lambda: hub.invite(country))
    print(f"# one-time enrollment token for {country}, valid {settings.invite_ttl_s // 3600} h; on the node run:")
    print(f"#   ncc enroll --data-dir <node-data-dir> --hub {settings.base_url} --token <token>")
    print(token)
    return 0


def set_status(args: argparse.Namespace) -> int:
    settings = settings_for(args.data_dir)
    hub = _hub(settings)
    print(orjson.dumps(_run(settings, lambda: hub.set_node(_country(args.country), status=args.status))).decode())
    return 0


def set_mode(args: argparse.Namespace) -> int:
    settings = settings_for(args.data_dir)
    hub = _hub(settings)
    print(orjson.dumps(_run(settings, lambda: hub.set_node(_country(args.country), mode=args.mode))).decode())
    return 0


def revoke_key(args: argparse.Namespace) -> int:
    settings = settings_for(args.data_dir)
    hub = _hub(settings)
    print(orjson.dumps(_run(settings, lambda: hub.revoke_key(args.kid, args.at))).decode())
    return 0


def nodes(args: argparse.Namespace) -> int:
    settings = settings_for(args.data_dir)
    hub = _hub(settings)

    async def show() -> Any:
        doc = await hub.current_directory()
        return doc["nodes"]

    for node in _run(settings, show):
        print(orjson.dumps(node).decode())
    return 0
