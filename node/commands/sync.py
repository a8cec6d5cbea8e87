"""``ncc sync`` — the hub pulls nodes now; exit 0 only if every node pulled succeeded."""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from node.commands.base import CommandError, add_data_dir, country_arg, run_with_db, settings_for
from node.context import Keyring, build_registry, utc_now


def register(sub: Any) -> None:
    p = sub.add_parser("sync", help="hub: pull every node (or one) now and report")
    add_data_dir(p)
    p.add_argument("--country", metavar="XX", type=country_arg, help="pull only this node (any case)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from node.services.hub import HubService
    from node.services.search import SearchService
    from node.services.sync import Puller

    settings = settings_for(args.data_dir)
    if settings.role != "hub":
        raise CommandError("ncc sync runs on the hub (this data dir is a node; the node notifies the hub itself)")
    keyring = Keyring(settings)
    hub = HubService(settings, keyring.key, utc_now)
    puller = Puller(settings, keyring.key, hub, build_registry(), SearchService(), utc_now)

    async def work() -> list[Any]:
        try:
            if args.country:
                from node.storage.hub_models import FederatedNode

                if not await FederatedNode.filter(country=args.country).exists():
                    raise CommandError(f"no enrolled node {args.country}")
                return [await puller.pull(args.country, wait=True)]
            return await puller.pull_all(wait=True)
        finally:
            await puller.close()

    results = run_with_db(settings, work)
    failed = [r for r in results if not r.ok]
    for r in results:
        print(orjson.dumps(r.to_dict()).decode())
    print(f"pulled {len(results) - len(failed)} of {len(results)} nodes")
    if failed:
        raise CommandError("failed: " + "; ".join(f"{r.country}: {r.error}" for r in failed))
    return 0
