"""``ncc hub …`` — hub administration: invitations (make, list, cancel), suspension, query-only mode, key
revocation, sharing groups (DESIGN §15)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from federation.errors import GroupInvalid
from node.clock import utc_now
from node.commands.base import (
    CommandError,
    UsageError,
    add_data_dir,
    add_json,
    country_arg,
    run_with_db,
    settings_for,
    table,
    timestamp_arg,
)
from node.config import Settings, country_code
from node.errors import ApiError
from node.keystore import KeyStoreError, load_key


def register(sub: Any) -> None:
    p = sub.add_parser("hub", help="hub administration (invite, suspend, activate, mode, revoke-key, nodes)")
    hsub = p.add_subparsers(dest="hub_command", metavar="ACTION")
    hsub.required = True
    i = hsub.add_parser("invite", help="print a one-time 24 h enrollment token for a country (last line)")
    add_data_dir(i)
    i.add_argument("country", metavar="XX", type=country_arg, help="the country to invite (ISO 3166-1 alpha-2, GR for Greece)")
    i.add_argument("--replace", action="store_true",
                   help="invite a country that is enrolled: when used, the invitation re-points its URL and "
                        "ends every key of the running node (key-compromise recovery, a moved node)")
    i.set_defaults(run=invite)
    v = hsub.add_parser("invites", help="list invitations still usable (--all: every one), or cancel one")
    add_data_dir(v)
    v.add_argument("--all", action="store_true", help="also used, cancelled and expired invitations")
    v.add_argument("--cancel", metavar="JTI",
                   help="cancel this unused invitation (its token is refused from now)")
    v.set_defaults(run=invites)
    for name, helptext in (("suspend", "stop accepting and pulling a node"), ("activate", "re-activate a node")):
        s = hsub.add_parser(name, help=helptext)
        add_data_dir(s)
        s.add_argument("country", metavar="XX", type=country_arg, help="the enrolled node's country")
        s.set_defaults(run=set_status, status="suspended" if name == "suspend" else "active")
    m = hsub.add_parser("mode", help="replicate a node's feed, or only query it live")
    add_data_dir(m)
    m.add_argument("country", metavar="XX", type=country_arg, help="the enrolled node's country")
    m.add_argument("mode", choices=("replicate", "query-only"),
                   help="replicate: pull its feed; query-only: hold nothing of it, ask it live at each search")
    m.set_defaults(run=set_mode)
    r = hsub.add_parser("revoke-key", help="revoke a node key: what the hub receives signed by it from then on is "
                        "rejected; --at in the past also withdraws what it received since")
    add_data_dir(r)
    r.add_argument("kid", metavar="KID", help="the key id, as in the directory (`ncc hub nodes --json`)")
    r.add_argument("--at", type=timestamp_arg, help="revocation time YYYY-MM-DDTHH:MM:SSZ (default now)")
    r.set_defaults(run=revoke_key)
    n = hsub.add_parser("nodes", help="list enrolled nodes: sync status, lag, last success, failures and why a "
                        "node is unreachable or diverged (--json: each node's directory entry with its keys, "
                        "and its sync status)")
    add_data_dir(n)
    add_json(n, "each node's directory entry (country, url, status, mode, keys) with its sync status under "
                "`sync`")
    n.set_defaults(run=nodes)
    g = hsub.add_parser("group", help="sharing groups: audiences narrower than the network (DESIGN §15)")
    gsub = g.add_subparsers(dest="group_command", metavar="ACTION")
    gsub.required = True
    gc = gsub.add_parser("create", help="create a group of member countries")
    add_data_dir(gc)
    gc.add_argument("name", metavar="NAME", help="the group's name: 1 to 63 of a-z, 0-9 and -")
    gc.add_argument("--countries", required=True, metavar="XX,YY,…", help="the member countries, comma-separated")
    gc.set_defaults(run=group_create)
    for action, helptext in (("add", "add a member country"),
                             ("remove", ("remove a member country: its records of the group are hidden at once "
                                         "and its node withdraws them at the next pull"))):
        ga = gsub.add_parser(action, help=helptext)
        add_data_dir(ga)
        ga.add_argument("name", metavar="NAME", help="the group's name")
        ga.add_argument("country", metavar="XX", type=country_arg, help="the member country (ISO 3166-1 alpha-2)")
        ga.set_defaults(run=group_member, member=action == "add")
    gd = gsub.add_parser("delete", help="delete a group (its records are hidden at once, withdrawn by their nodes)")
    add_data_dir(gd)
    gd.add_argument("name", metavar="NAME", help="the group's name")
    gd.set_defaults(run=group_delete)
    gl = gsub.add_parser("list", help="list the groups and their members (one JSON object a line)")
    add_data_dir(gl)
    gl.set_defaults(run=group_list)


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
        except GroupInvalid as exc:
            raise UsageError(f"{exc.code}: {exc.detail}") from exc

    return run_with_db(settings, guarded)


def invite(args: argparse.Namespace) -> int:
    from federation.tokens import peek_enrollment_token

    settings = settings_for(args.data_dir)
    hub = _hub(settings)
    country = args.country
    token = _run(settings, lambda: hub.invite(country, replace=args.replace))
    if args.replace:
        print(f"ncc hub invite: warning: used, this invitation re-points {country}'s URL and ends every key "
              "of its enrolled node at once; keep it secret and cancel it if not used", file=sys.stderr)
    jti = peek_enrollment_token(token)["jti"]
    print(f"# one-time enrollment token for {country} (invitation {jti}), "
          f"valid {settings.invite_ttl_s // 3600} h; on the node, save it to a file and run:")
    print(f"#   ncc enroll --data-dir <node-data-dir> --hub {settings.base_url} --token-file <file>")
    print(f"# cancel it with: ncc hub invites --data-dir {settings.data_dir} --cancel {jti}")
    print(token)
    return 0


def invites(args: argparse.Namespace) -> int:
    settings = settings_for(args.data_dir)
    hub = _hub(settings)
    if args.cancel is not None:
        print(orjson.dumps(_run(settings, lambda: hub.cancel_invitation(args.cancel))).decode())
        return 0
    for row in _run(settings, lambda: hub.invitations(include_all=args.all)):
        print(orjson.dumps(row).decode())
    return 0


def set_status(args: argparse.Namespace) -> int:
    settings = settings_for(args.data_dir)
    hub = _hub(settings)
    print(orjson.dumps(_run(settings, lambda: hub.set_node(args.country, status=args.status))).decode())
    return 0


def set_mode(args: argparse.Namespace) -> int:
    settings = settings_for(args.data_dir)
    hub = _hub(settings)
    print(orjson.dumps(_run(settings, lambda: hub.set_node(args.country, mode=args.mode))).decode())
    return 0


def revoke_key(args: argparse.Namespace) -> int:
    settings = settings_for(args.data_dir)
    hub = _hub(settings)
    print(orjson.dumps(_run(settings, lambda: hub.revoke_key(args.kid, args.at))).decode())
    return 0


NODE_COLUMNS = ("COUNTRY", "STATUS", "MODE", "ENROLLMENT", "LAG", "LAST SUCCESS", "FAILURES", "LAST ERROR")


def nodes(args: argparse.Namespace) -> int:
    """The hub's view of every node (as ``GET /api/v1/nodes``): a table, or JSON lines."""
    from node.services.pullstatus import nodes_status

    settings = settings_for(args.data_dir)
    hub = _hub(settings)

    async def show() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        doc = await hub.current_directory()
        return doc["nodes"], await nodes_status(settings, utc_now())

    entries, statuses = _run(settings, show)
    by_country = {s["country"]: s for s in statuses}
    if args.json:
        for node in entries:
            print(orjson.dumps({**node, "sync": by_country.get(node["country"])}).decode())
        return 0
    if not statuses:
        print("no node has enrolled yet")
        return 0
    print(table(NODE_COLUMNS, [
        (s["country"], s["status"], s["mode"], s["enrollment"], s["lag"], s["last_success"] or "never",
         s["consecutive_failures"], s["reason"] or s["last_error"])
        for s in statuses
    ]), end="")
    return 0


def group_create(args: argparse.Namespace) -> int:
    settings = settings_for(args.data_dir)
    hub = _hub(settings)
    try:
        countries = [country_code(c) for c in args.countries.split(",") if c.strip()]
    except ValueError as exc:
        raise UsageError(f"--countries: {exc}") from None
    print(orjson.dumps(_run(settings, lambda: hub.create_group(args.name, countries))).decode())
    return 0


def group_member(args: argparse.Namespace) -> int:
    settings = settings_for(args.data_dir)
    hub = _hub(settings)
    country = args.country
    print(orjson.dumps(_run(settings, lambda: hub.set_member(args.name, country, args.member))).decode())
    return 0


def group_delete(args: argparse.Namespace) -> int:
    settings = settings_for(args.data_dir)
    hub = _hub(settings)
    _run(settings, lambda: hub.delete_group(args.name))
    print(f"deleted group {args.name}")
    return 0


def group_list(args: argparse.Namespace) -> int:
    settings = settings_for(args.data_dir)
    hub = _hub(settings)
    for name, countries in _run(settings, hub.groups).items():
        print(orjson.dumps({"name": name, "countries": countries}).decode())
    return 0
