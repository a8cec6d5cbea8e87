"""The clock of the running service: UTC, whole seconds (a module of its own: the CLI's commands need
it without the services' context)."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The clock of the running service (whole seconds, UTC)."""
    return datetime.now(UTC).replace(microsecond=0)
