"""``ncc recover`` — after a restore from a backup or a replacement by a new instance: take back from the
hub what this node lacks (verified against its own keys), sign again above the hub's version what it
holds differently, then have the hub pull it again from 0 (node.services.recover)."""

from __future__ import annotations

import argparse
from typing import Any

import aiohttp

from node.commands.base import CommandError, add_data_dir, run_with_db, settings_for
from node.context import Keyring, build_registry, utc_now


def register(sub: Any) -> None:
    p = sub.add_parser(
        "recover",
        help="node: reconcile with the hub after a restore from a backup or a replacement (stopped or serving)")
    add_data_dir(p)
    p.add_argument("--trust-key", action="append", default=[], metavar="KID",
                   help="also accept records signed by this key of the country (a replaced instance's old "
                        "key, as listed in the hub's directory); repeatable. Check the kid first")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from node.services.nodefed import FederationError, NodeFederation
    from node.services.publish import Publisher
    from node.services.recover import HubLink, RecoverError, Recovery, held_directory, own_keys, recover
    from node.services.search import SearchService

    settings = settings_for(args.data_dir)
    if settings.role != "node":
        raise CommandError("ncc recover runs on a node (this data dir is a hub)")
    keyring = Keyring(settings)
    fed = NodeFederation(settings, keyring.key, utc_now)

    async def work() -> Any:
        enrollment = await fed.enrollment()
        if enrollment is None:
            raise CommandError("this node is not enrolled: ncc enroll first, then ncc recover")
        try:
            try:
                await fed.refresh_directory()  # the old keys --trust-key may name, revocations
            except FederationError as exc:
                raise CommandError(str(exc)) from exc
            keys = own_keys(settings.country, [keyring.key(), *keyring.retired], await held_directory(),
                            args.trust_key)
            publisher = Publisher(settings.country, keyring.key, build_registry(), utc_now, index=SearchService())
            recovery = Recovery(settings.country, publisher, publisher.registry, keys, utc_now)
            timeout = aiohttp.ClientTimeout(total=120, connect=10)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                link = HubLink(enrollment["hub_url"], settings.country, keyring.key, utc_now, session,
                               settings.service_token_ttl_s)
                return await recover(recovery, link)
        except RecoverError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            await fed.close()

    report = run_with_db(settings, work)
    print(f"recovered {settings.country}: {report.summary()}")
    if report.refused:
        hint = ""
        if report.unknown_kids:
            hint = (f"; signed by keys that are not this node's ({', '.join(sorted(report.unknown_kids))}):"
                    " if one was this country's old instance's, pass --trust-key KID")
        raise CommandError(f"refused {len(report.refused)} record(s) the hub holds that this node's keys did not "
                           f"sign as held (first: {report.refused[0]}){hint}")
    return 0
