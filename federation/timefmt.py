"""The one timestamp format of the protocol: ``YYYY-MM-DDTHH:MM:SSZ`` (UTC, whole seconds)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_TIMESTAMP = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z", re.ASCII)


def format_timestamp(dt: datetime) -> str:
    """Format an aware datetime as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC, dropping sub-second digits.

    Raises:
        ValueError: ``dt`` is naive (has no tzinfo).
    """
    offset = dt.utcoffset()
    if offset is None:
        raise ValueError("naive datetime: timestamps must be timezone-aware")
    if offset:
        dt = dt.astimezone(UTC)
    # isoformat() is several times faster than strftime and always gives a 4-digit year.
    return dt.replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def parse_timestamp(text: str) -> datetime:
    """Parse a strict ``YYYY-MM-DDTHH:MM:SSZ`` string into an aware UTC datetime.

    Raises:
        ValueError: not a string, not exactly that form, or not a real date/time.
    """
    if type(text) is not str:
        raise ValueError(f"timestamp must be a string, not {type(text).__name__}")
    m = _TIMESTAMP.match(text)
    if m is None:
        raise ValueError(f"timestamp {text!r} is not of the form YYYY-MM-DDTHH:MM:SSZ")
    # The regex pins the form; fromisoformat then rejects impossible dates (2026-02-30, 24:00:00).
    return datetime.fromisoformat(text)  # 3.11+: a trailing "Z" gives tzinfo=timezone.utc


def truncate_to_second(dt: datetime) -> datetime:
    """Drop microseconds, so that ``parse_timestamp(format_timestamp(dt)) == truncate_to_second(dt)``."""
    return dt.replace(microsecond=0)
