"""``ncc import`` — publish records from a JSON, NDJSON, CSV or CORDIS file (docs/import.md).

Every row is checked like an API write and stored a batch of rows per transaction: valid rows are
imported even when others fail, a failing row writes nothing. The file is streamed (scanned once for
file-level problems, then imported as it is read again), so memory does not grow with its size. Output on stdout: one line per problem
(``line 7: schema_invalid /subdomains/0: …``), notes, and last the summary
``imported N, rejected M``. Exit 0 when every row was imported, 1 otherwise (also for a file that
cannot be read, with a one-line reason on stderr), 2 for usage errors. ``--dry-run`` runs the same
checks and writes nothing. A progress bar goes to stderr when stderr is a terminal.
The module is ``imports`` because ``import`` is a Python keyword.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from federation.envelope import VISIBILITIES
from federation.groups import is_visibility
from node.commands.base import CommandError, add_data_dir, run_with_db, settings_for
from node.services import cordis
from node.services.import_writer import ImportAborted, NaturalKeys, import_rows, load_natural_keys
from node.services.importer import CORDIS_SCOPES, FORMATS, ImportFileError, Options, Parsed, open_rows
from schemas import RECORD_TYPES

PROGRESS_MIN_ROWS = 100
#: Files smaller than this import too fast for a progress bar.
PROGRESS_MIN_BYTES = 64 * 1024
#: Standard input is spooled to a temporary file (read twice); in memory up to this size.
SPOOL_IN_MEMORY = 8 * 1024 * 1024


def _visibility_arg(text: str) -> str:
    if text in VISIBILITIES or is_visibility(text):
        return text
    raise argparse.ArgumentTypeError(f"{text!r}: public, network, national or group:NAME (^[a-z0-9-]{{1,63}}$)")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "import",
        help="import records from JSON, NDJSON, CSV or CORDIS files",
        description="Import records into this node; prints 'imported N, rejected M' last. See docs/import.md.",
    )
    add_data_dir(p)
    p.add_argument("file", metavar="FILE", help="the file to import ('-' reads stdin)")
    p.add_argument("--type", choices=RECORD_TYPES, help="record type of bare payloads and CSV rows")
    p.add_argument(
        "--visibility",
        type=_visibility_arg,
        metavar="{public,network,national,group:NAME}",
        help="visibility of rows that do not say (default public; experts national); group:NAME for a "
             "sharing group this node's country is a member of",
    )
    p.add_argument("--dry-run", action="store_true", help="check every row, write nothing")
    p.add_argument(
        "--format", choices=FORMATS, default="auto", help="file format (default: detected from the content)"
    )
    p.add_argument(
        "--cordis-organizations",
        metavar="ORG_CSV",
        help="with a CORDIS project.csv: the organization.csv that links projects to this "
        "node's organisations (import organization.csv first)",
    )
    p.add_argument(
        "--cordis-scope",
        choices=CORDIS_SCOPES,
        default="participating",
        help="with --cordis-organizations: which projects to import (default: those with an "
        "organisation of this node's country)",
    )
    p.set_defaults(run=run)


def _read(path: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _open(path: str, stack: contextlib.ExitStack) -> BinaryIO:
    """The import file as a seekable binary stream (read twice: checked, then imported). Standard
    input is copied to a temporary file first (in memory up to a few MB, on disk beyond)."""
    try:
        if path != "-":
            return stack.enter_context(Path(path).open("rb"))
        spool = stack.enter_context(tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY))  # noqa: SIM115
        shutil.copyfileobj(sys.stdin.buffer, spool)
        spool.seek(0)
        return spool  # type: ignore[return-value]
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from exc


class ProgressBar:
    """``\\r``-updated progress on a terminal, at most ten redraws a second; silent otherwise."""

    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream = stream
        self.enabled = total >= PROGRESS_MIN_ROWS and stream.isatty()
        self.shown = False
        self.last = 0.0

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or (done < total and now - self.last < 0.1):
            return
        self.last = now
        width = 30
        filled = width * done // total
        self.stream.write(f"\rimporting [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * 60 + "\r")
            self.stream.flush()
            self.shown = False


def run(args: argparse.Namespace) -> int:
    settings = settings_for(args.data_dir)
    if settings.role != "node":
        raise CommandError("records are imported on a node, not on the hub")
    if args.cordis_organizations and args.format not in ("auto", cordis.PROJECTS):
        raise CommandError("--cordis-organizations goes with a CORDIS project.csv")
    with contextlib.ExitStack() as stack:
        return _run(args, settings, _open(args.file, stack))


def _run(args: argparse.Namespace, settings: Any, stream: BinaryIO) -> int:
    org_data = _read(args.cordis_organizations) if args.cordis_organizations else None
    name = "stdin" if args.file == "-" else args.file
    options = Options(settings.country, args.type, args.visibility, args.format, args.cordis_scope)
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(0)

    def parse(keys: NaturalKeys | None) -> Parsed:
        try:
            return open_rows(
                stream,
                name,
                options,
                cordis_organisations=org_data,
                organisations_by_pic=keys.organisations_by_pic if keys else None,
            )
        except ImportFileError as exc:
            raise CommandError(str(exc)) from exc

    # Everything that needs no database is checked before opening it (the whole file is scanned:
    # a file-level problem stops the import before any row is written); only CORDIS project links
    # need this node's organisations.
    parsed = None if org_data is not None else parse(None)

    async def work() -> tuple[Parsed, int, int]:
        from node.context import build_registry, utc_now
        from node.keystore import load_key
        from node.services.publish import Publisher
        from node.services.search import SearchService

        keys = await load_natural_keys()
        rows = parsed or parse(keys)
        key = load_key(settings.key_path, settings.role, settings.country)
        # As the server builds it (node.services.wiring), so imported records are searchable at once.
        publisher = Publisher(
            country=settings.country,
            key=lambda: key,
            registry=build_registry(),
            clock=utc_now,
            index=SearchService(),
        )
        bar = ProgressBar(sys.stderr, PROGRESS_MIN_ROWS if size >= PROGRESS_MIN_BYTES else 0)

        def report(line: str) -> None:
            bar.clear()
            print(line, flush=bar.enabled)

        def progress(done: int, total: int) -> None:
            if not total:  # streamed: estimate the rows of the file from the share read so far
                read = stream.tell()
                total = max(done, round(done * size / read)) if read else done
            bar.update(done, total)

        try:
            outcome = await import_rows(
                rows.rows, publisher, keys, dry_run=args.dry_run, report=report, progress=progress
            )
        except ImportFileError as exc:  # only if the file changed between the check and the import
            bar.clear()
            raise CommandError(str(exc)) from exc
        except ImportAborted as exc:
            bar.clear()
            print(f"imported {exc.outcome.imported}, rejected {exc.outcome.rejected}")
            raise CommandError(f"database keeps failing, stopped at {exc}") from exc
        bar.clear()
        if outcome.imported and not args.dry_run:
            await _notify_hub(settings, lambda: key)
        return rows, outcome.imported, outcome.rejected

    rows, imported, rejected = run_with_db(settings, work)
    for note in rows.notes:
        print(note)
    if args.dry_run:
        print(f"dry run: {imported} of {imported + rejected} rows valid, nothing written")
        imported = 0
    print(f"imported {imported}, rejected {rejected}")
    if rejected:
        raise CommandError(f"{rejected} of {imported + rejected} rows rejected (reasons above, one a row)")
    return 0


#: How long ``ncc import`` waits for the hub to take its notification (the serving node retries).
NOTIFY_TIMEOUT_S = 5.0


async def _notify_hub(settings: Any, key: Any) -> None:
    """Tell the hub (if enrolled) that the feed moved, so it pulls the imported records now rather than
    at the serving node's next retry (``notify_retry_s``) or the hub's schedule. Best effort, quietly:
    a hub that cannot be told now is told by the serving node's notifier later."""
    from node.context import utc_now
    from node.services.nodefed import NodeFederation

    fed = NodeFederation(settings, key, utc_now)
    try:
        await asyncio.wait_for(fed.notify_if_needed(), NOTIFY_TIMEOUT_S)
    except TimeoutError:
        pass
    finally:
        await fed.close()
