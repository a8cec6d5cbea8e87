"""Reading a feed page's trailer ahead of its check (node.services.sync.next_page_cursor)."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.context import utc_now
from node.services.sync import next_page_cursor


@pytest.mark.parametrize(
    ("body", "at", "expected"),
    [
        (b'{"seq":1,"record":{}}\n{"next":7,"more":true,"head":9}\n', 0, 7),
        (b'{"seq":1,"record":{}}\n{"next":7,"more":true}', 0, 7),  # no final newline
        (b'{"next":7,"more":true}\n\n\n', 0, 7),
        (b'{"next":7,"more":false}\n', 0, None),  # the last page
        (b'{"next":7,"more":true}\n', 7, None),  # not advancing: the check decides
        (b'{"next":"7","more":true}\n', 0, None),
        (b'{"next":true,"more":true}\n', 0, None),
        (b'{"seq":1,"record":{}}\n{"next":7,"mo', 0, None),  # truncated
        (b"<html>", 0, None),
        (b"", 0, None),
        (b'[{"next":7,"more":true}]\n', 0, None),
    ],
)
def test_next_page_cursor(body: bytes, at: int, expected: int | None) -> None:
    assert next_page_cursor(body, at) == expected


def test_node_status_tells_the_truth() -> None:
    """Diverged before anything else (nothing of the node is ingested); a node whose probes or pulls
    fail is unreachable, one not heard from for stale_after_s stale — query-only nodes alike."""
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace
    from typing import Any

    from node.services.sync import node_status
    from node.storage.hub_models import PullState

    settings: Any = SimpleNamespace(unreachable_after=3, stale_after_s=600)  # what node_status reads
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    recent, old = "2026-12-07T11:59:50Z", (now - timedelta(seconds=settings.stale_after_s + 1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")

    def state(**kw: object) -> PullState:
        fields = {"country": "DE", "last_success": recent, "consecutive_failures": 0, "diverged_at": None, **kw}
        return PullState(**fields)

    assert node_status(None, settings, now) == "stale"
    assert node_status(state(), settings, now) == "ok"
    assert node_status(state(last_success=None), settings, now) == "stale"
    assert node_status(state(last_success=old), settings, now) == "stale"
    assert node_status(state(consecutive_failures=3), settings, now) == "unreachable"
    assert node_status(state(consecutive_failures=3, diverged_at=recent), settings, now) == "diverged"


def test_the_refused_notification_back_off_doubles_up_to_its_setting(tmp_path: Path) -> None:
    """The wait between notifications the hub refuses doubles from ``notify_retry_s`` and stops at
    ``notify_backoff_max_s`` (it was a constant, 900 s)."""
    from node.config import build_settings
    from node.services.nodefed import NodeFederation

    settings = build_settings(tmp_path, {"role": "node", "country": "AT", "notify_retry_s": 10,
                                         "notify_backoff_max_s": 75})
    fed = NodeFederation(settings, key=lambda: None, clock=utc_now)  # type: ignore[arg-type,return-value]
    waits = []
    for refusals in range(1, 7):
        fed._refusals = refusals
        waits.append(fed.refused_backoff_s())
    assert waits == [10, 20, 40, 75, 75, 75]
    assert build_settings(tmp_path, {"role": "node", "country": "AT"}).notify_backoff_max_s == 900
