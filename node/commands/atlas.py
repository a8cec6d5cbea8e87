"""``ncc atlas export|push`` — hand this node's registered organisations to the ECCC Atlas.

``export`` writes them, offline, as one JSON:API document of ``node--cluster`` resources (relationships
that need the Atlas's own term UUIDs are added at push). ``push`` sends them to the Atlas
(``atlas_url``, or ``--url``) with the API key from its file, and prints one line per conflict,
failure and revocation to report, then ``pushed N new, M updated, K unchanged, C conflicts, F failed``.
Exit 0 only when there was no conflict and no failure.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import orjson

from node.clock import utc_now
from node.commands.base import CommandError, add_data_dir, run_with_db, settings_for
from node.files import open_private


def register(sub: Any) -> None:
    p = sub.add_parser("atlas", help="node: export or push registered organisations to the ECCC Atlas")
    asub = p.add_subparsers(dest="atlas_command", metavar="ACTION")
    asub.required = True
    e = asub.add_parser("export", help="write the registered organisations as a JSON:API document (offline)")
    add_data_dir(e)
    e.add_argument("--out", metavar="FILE", help="write here (mode 0600) instead of stdout")
    e.set_defaults(run=export)
    s = asub.add_parser("push", help="send new and changed registered organisations to the Atlas")
    add_data_dir(s)
    s.add_argument("--url", help="the Atlas's base URL (default: the atlas_url setting)")
    s.add_argument("--api-key-file", metavar="F",
                   help="file holding the Atlas API key, mode 0600 (default: atlas_api_key_file, "
                        "<data-dir>/keys/atlas-api-key)")
    s.add_argument("--overwrite", action="append", default=[], metavar="ID",
                   help="after reconciling a conflict: overwrite this organisation's Atlas entry (repeatable)")
    s.set_defaults(run=push)


def _node_settings(args: argparse.Namespace) -> Any:
    settings = settings_for(args.data_dir)
    if settings.role != "node":
        raise CommandError("the Atlas is fed by a node (its registered organisations), not by the hub")
    return settings


def export(args: argparse.Namespace) -> int:
    from node.services.atlas import export_document

    settings = _node_settings(args)
    document = run_with_db(settings, export_document)
    data = orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"
    if args.out is None:
        sys.stdout.buffer.write(data)
    else:
        target = Path(args.out)
        partial = target.with_name(f".{target.name}.partial")
        try:
            with open_private(partial, "wb") as out:  # 0600 even when a stale partial file exists
                out.write(data)
            os.replace(partial, target)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise CommandError(f"cannot write {args.out}: {exc.strerror or exc}") from exc
    print(f"exported {len(document['data'])} registered organisations", file=sys.stderr)
    return 0


def push(args: argparse.Namespace) -> int:
    from node.services.atlas import AtlasError, AtlasPusher

    settings = _node_settings(args)
    pusher = AtlasPusher(settings, utc_now, url=args.url,
                         api_key_file=Path(args.api_key_file) if args.api_key_file else None)
    try:
        pusher.check()  # a missing URL or key file fails before the database is opened
        report = run_with_db(settings, lambda: pusher.push(frozenset(args.overwrite)))
    except AtlasError as exc:
        raise CommandError(str(exc)) from exc
    for line in report.lines:
        print(line)
    print(report.summary())
    return 0 if report.ok else 1
