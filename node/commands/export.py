"""``ncc export`` — this node's current records as signed NDJSON envelopes or as CSV of one type.

NDJSON (default): one stored, signed envelope a line, verifiable offline; ``--include-deleted``
adds the tombstones. CSV: ``--type`` is required, columns as ``ncc import`` reads them
(docs/import.md). Output goes to stdout unless ``--output FILE``; the count goes to stderr.
``national`` records are included: the export is the operator's own copy.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from node.commands.base import CommandError, add_data_dir, run_with_db, settings_for
from node.files import open_private
from node.services import exporter
from schemas import RECORD_TYPES


def register(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="export this node's records (NDJSON envelopes or CSV)",
        description="Export this node's current records. See docs/import.md.",
    )
    add_data_dir(p)
    p.add_argument(
        "--format",
        choices=("ndjson", "csv"),
        default="ndjson",
        help="ndjson: signed envelopes, one a line (default); csv: a sheet (of --type, or of all types)",
    )
    p.add_argument("--type", choices=RECORD_TYPES, help="only this record type (a CSV of one type re-imports with ncc import --type)")
    p.add_argument("--output", metavar="FILE", help="write here instead of stdout")
    p.add_argument("--include-deleted", action="store_true", help="ndjson: include tombstones")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_for(args.data_dir)
    if settings.role != "node":
        raise CommandError("records are exported from a node, not from the hub")
    if args.format == "csv" and args.include_deleted:
        raise CommandError("--include-deleted: tombstones have no CSV form; use --format ndjson")

    async def write(out: TextIO) -> int:
        if args.format == "csv":
            return await exporter.write_csv(out, args.type)
        return await exporter.write_ndjson(out, args.type, args.include_deleted)

    if args.output is None:
        try:
            count = run_with_db(settings, lambda: write(sys.stdout))
            sys.stdout.flush()
        except BrokenPipeError as exc:  # `ncc export | head`: the reader left
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            raise CommandError("output closed before the export finished") from exc
    else:
        target = Path(args.output)
        partial = target.with_name(f".{target.name}.partial")
        try:
            # national records and personal data: private whatever the umask (an existing file too)
            with open_private(partial, "w", encoding="utf-8", newline="") as out:
                count = run_with_db(settings, lambda: write(out))
            os.replace(partial, target)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise CommandError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    print(f"exported {count} records", file=sys.stderr)
    return 0
