"""What the command modules share: errors, settings loading, a database session."""

from __future__ import annotations

import argparse
import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from federation.timefmt import parse_timestamp
from node.config import ConfigError, Settings, country_code, load_settings
from node.files import FileModeError, check_instance_files
from node.keystore import KeyStoreError

T = TypeVar("T")


class CommandError(Exception):
    """A command failed; the message is printed as one line on stderr (exit 1)."""


class UsageError(CommandError):
    """A command was called wrongly in a way only its settings reveal (``--ttl`` over the maximum):
    one line on stderr, exit 2 like argparse's own usage errors."""


def settings_for(data_dir: str | Path, **overrides: Any) -> Settings:
    """Load the instance settings or fail with a one-line reason; the data dir, config, keys, secrets
    and database files must not be readable by group or others (checked like the instance key)."""
    try:
        check_instance_files(Path(data_dir))
        return load_settings(Path(data_dir), overrides=overrides)
    except (ConfigError, FileModeError) as exc:
        raise CommandError(str(exc)) from exc


def run_with_db(settings: Settings, work: Callable[[], Awaitable[T]]) -> T:
    """Open the instance database (migrating it), run ``work``, close it.

    Raises:
        CommandError: the database cannot be opened.
    """
    from node.storage import db

    async def main() -> T:
        try:
            await db.open_db(settings.db_url)
            await db.ensure_counters()
        except Exception as exc:
            await db.close_db()
            raise CommandError(f"cannot open database: {exc.__class__.__name__}: {exc}") from exc
        try:
            return await work()
        finally:
            await db.close_db()

    try:
        return asyncio.run(main())
    except KeyStoreError as exc:
        raise CommandError(str(exc)) from exc


_DURATION = re.compile(r"^(\d{1,12})([smhdw]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: No duration is longer than this (100 years): beyond it datetime arithmetic overflows.
MAX_DURATION_S = 100 * 365 * 86400


def parse_duration(text: str, maximum: int = MAX_DURATION_S) -> int:
    """``30d``, ``12h``, ``15m``, ``90s`` or plain seconds, at most ``maximum`` seconds.

    Raises:
        CommandError: anything else, or longer than ``maximum``.
    """
    m = _DURATION.match(text.strip())
    if not m or int(m.group(1)) <= 0:
        raise CommandError(f"invalid duration {text!r} (use e.g. 30d, 12h, 15m, 90s)")
    seconds = int(m.group(1)) * _UNITS[m.group(2)]
    if seconds > maximum:
        raise CommandError(
            f"duration {text!r} is longer than the maximum of {maximum} s ({maximum // 86400} days)")
    return seconds


def duration_arg(text: str) -> int:
    """``parse_duration`` as an argparse ``type``: a malformed value is a usage error (exit 2)."""
    try:
        return parse_duration(text)
    except CommandError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def country_arg(text: str) -> str:
    """:func:`node.config.country_code` as an argparse ``type``: a bad code is a usage error (exit 2)."""
    try:
        return country_code(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def int_between(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type`` for a whole number in ``[low, high]``: anything else is a usage error (exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, not {value}")
        return value

    return parse


def timestamp_arg(text: str) -> datetime:
    """A ``YYYY-MM-DDTHH:MM:SSZ`` option value (exit 2 for anything else)."""
    try:
        return parse_timestamp(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"invalid timestamp {text!r} (use YYYY-MM-DDTHH:MM:SSZ)") from exc


def add_data_dir(parser: Any, required: bool = True) -> None:
    parser.add_argument("--data-dir", required=required, metavar="D",
                        help="instance data directory (holds config.toml, keys/, ncc.db)")


def add_json(parser: Any, what: str) -> None:
    parser.add_argument("--json", action="store_true",
                        help=f"print {what} as JSON lines (one object a line, for scripts) instead of a table")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain-text table: a header line, then one line a row, columns padded to their widest cell
    (None shows as ``-``; the last column is not padded, so a long reason does not widen the others)."""
    cells = [[str(h) for h in headers]] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers) - 1)]
    lines = ["  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[-1]]).rstrip() for r in cells]
    return "\n".join(lines) + "\n"
