"""``ncc verify FILE --directory DIRECTORY_FILE`` — verify signed envelopes offline.

FILE holds one envelope (a JSON object), a JSON array of envelopes, or NDJSON (one envelope a
line). The directory file is the hub's signed directory as served at ``/federation/v1/directory``;
it is checked with its own listed hub keys (an offline check of integrity and freshness, not of
who the hub is). Every record goes through ``federation.verify.verify`` at the current time.

Output: one ``<id>: <code>`` line on stdout per failing record (``line N`` / ``item N`` when the
record has no usable id); when all verify, one summary line on stdout. Exit 0 when every record verifies, 1 otherwise (also for an unreadable or
invalid file, with a one-line reason on stderr), 2 for usage errors (argparse).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import schemas
from federation.directory import Directory, verify_directory
from federation.errors import MalformedJSON, ProtocolError
from federation.schemas import SchemaRegistry
from federation.verify import check


def register(sub: Any) -> None:
    """Add the ``verify`` subcommand to an argparse subparsers object."""
    p = sub.add_parser("verify", help="verify signed envelopes offline against a directory file")
    p.add_argument("file", metavar="FILE", help="envelope JSON object, JSON array, or NDJSON")
    p.add_argument("--directory", required=True, metavar="DIRECTORY_FILE", help="the hub's signed directory JSON")
    p.set_defaults(run=run)


def _loads(data: bytes) -> Any:
    """Strict parse (federation.strictjson when present)."""
    try:
        from federation.strictjson import loads
    except ImportError:  # pragma: no cover - strictjson ships with federation/
        import orjson

        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as e:
            raise MalformedJSON(str(e)) from e
    return loads(data)


def _records(data: bytes) -> Iterator[tuple[str, Any]]:
    """Yield ``(fallback label, parsed value or ProtocolError)`` for each record in the file."""
    try:
        whole = _loads(data)
    except MalformedJSON:
        pass  # not one JSON document: read it as NDJSON below
    except ProtocolError as e:  # one JSON document that cannot be a record (e.g. a 2^60 integer)
        yield "line 1", e
        return
    else:
        if isinstance(whole, list):
            for i, item in enumerate(whole, 1):
                yield f"item {i}", item
            return
        yield "line 1", whole
        return
    for n, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            yield f"line {n}", _loads(line)
        except ProtocolError as e:
            yield f"line {n}", e


def _label(value: Any, fallback: str) -> str:
    rid = value.get("id") if isinstance(value, dict) else None
    return rid if isinstance(rid, str) and rid and "\n" not in rid else fallback


def _read(path: str, what: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        print(f"ncc verify: cannot read {what} {path}: {e.strerror or e}", file=sys.stderr)
        return None


def _registry() -> SchemaRegistry:
    try:
        from federation.formats import CUSTOM_FORMATS
    except ImportError:  # pragma: no cover - formats ships with federation/
        return SchemaRegistry(schemas.load_schema_documents())
    return SchemaRegistry(schemas.load_schema_documents(), CUSTOM_FORMATS)


def run(args: argparse.Namespace) -> int:
    """Verify every record of ``args.file`` against ``args.directory``; return the exit code."""
    directory_bytes = _read(args.directory, "directory")
    data = _read(args.file, "file")
    if directory_bytes is None or data is None:
        return 1
    now = datetime.now(UTC).replace(microsecond=0)  # node/ may read the clock; federation/ may not
    try:
        directory: Directory = verify_directory(_loads(directory_bytes), now)
    except ProtocolError as e:
        print(f"ncc verify: directory {args.directory}: {e.code}: {e.detail}", file=sys.stderr)
        return 1
    registry = _registry()
    total = failed = 0
    for fallback, value in _records(data):
        total += 1
        if isinstance(value, ProtocolError):
            error: ProtocolError | None = value
        else:
            error = check(value, directory, now, registry).error
        if error is not None:
            failed += 1
            print(f"{_label(value, fallback)}: {error.code}")
    if total == 0:
        print(f"ncc verify: {args.file} holds no records", file=sys.stderr)
        return 1
    if failed:
        print(f"ncc verify: {failed} of {total} records failed verification", file=sys.stderr)
        return 1
    print(f"verified {total} record{'s' if total != 1 else ''}: every signature, key window and schema holds")
    return 0
