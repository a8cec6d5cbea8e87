"""The pure rules of "regression is never silent" (federation.divergence): when a node has diverged
from what the hub ingested, and what ``ncc recover`` does with each record the hub holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from federation.divergence import (
    MAX_VERSION,
    Action,
    Anchor,
    FeedState,
    Local,
    Remote,
    divergence,
    holds,
    live_failure_counts,
    next_version,
    reconcile,
)

RID = "urn:ncc:DE:organisation:0b9e2c8e-4f0a-4f57-9d36-1c8f4c1d2a11"
D1, D2 = "a" * 64, "b" * 64
T0 = datetime(2026, 12, 1, tzinfo=UTC)
ANCHOR = Anchor(17, RID, 2, D1)


# -- divergence ------------------------------------------------------------------------------------


def test_a_node_holding_the_anchor_at_or_past_the_cursor_has_not_diverged() -> None:
    assert divergence(ANCHOR, 17, FeedState(17, True)) is None
    assert divergence(ANCHOR, 17, FeedState(40, True)) is None


def test_a_restored_node_that_wrote_past_the_cursor_is_caught_by_the_anchor() -> None:
    """Head above the cursor: "head below cursor" alone would ingest the restored node's writes."""
    reason = divergence(ANCHOR, 17, FeedState(25, False))
    assert reason is not None and "no longer holds" in reason and RID in reason and "17" in reason


def test_head_below_the_cursor_is_divergence_even_without_an_anchor() -> None:
    reason = divergence(None, 17, FeedState(9))
    assert reason is not None and "below the hub's cursor 17" in reason
    assert divergence(ANCHOR, 17, FeedState(9, True)) is not None  # (an inconsistent answer: still refused)


def test_nothing_ingested_yet_is_never_divergence() -> None:
    assert divergence(None, 0, FeedState(0)) is None
    assert divergence(None, 0, FeedState(5, None)) is None


def test_holds_needs_the_same_sequence_and_digest() -> None:
    assert holds(ANCHOR, 17, D1)
    assert not holds(ANCHOR, 18, D1)  # same record and version, fed elsewhere: another history
    assert not holds(ANCHOR, 17, D2)  # rewritten under the same version after a restore
    assert not holds(ANCHOR, None, None)


def test_anchor_round_trips_through_query_parameters() -> None:
    assert Anchor.from_params(ANCHOR.to_params()) == ANCHOR
    assert Anchor.from_params({}) is None


@pytest.mark.parametrize("params, name", [
    ({"seq": "17", "id": RID, "version": "2"}, "digest"),
    ({"seq": "x", "id": RID, "version": "2", "digest": D1}, "seq"),
    ({"seq": "0", "id": RID, "version": "2", "digest": D1}, "seq"),
    ({"seq": "17", "id": "urn:ncc:DE:x", "version": "2", "digest": D1}, "id"),
    ({"seq": "17", "id": RID, "version": str(MAX_VERSION + 1), "digest": D1}, "version"),
    ({"seq": "17", "id": RID, "version": "2", "digest": D1.upper()}, "digest"),
    ({"seq": "-1", "id": RID, "version": "2", "digest": D1}, "seq"),
])
def test_malformed_anchor_parameters_are_refused_by_name(params: dict[str, str], name: str) -> None:
    with pytest.raises(ValueError) as err:
        Anchor.from_params(params)
    assert str(err.value).startswith(name)


def test_a_live_failure_counts_only_with_at_least_the_configured_deadline() -> None:
    assert live_failure_counts(2000, 2000)
    assert live_failure_counts(5000, 2000)
    assert not live_failure_counts(50, 2000)


# -- recovery ---------------------------------------------------------------------------------------


def local(version: int, at: datetime, face: int | None, digest: str | None = D1, deleted: bool = False) -> Local:
    return Local(version, at, deleted, face, digest if face is not None else None)


def remote(version: int, at: datetime, digest: str = D1, erased: bool = False) -> Remote:
    return Remote(version, digest, at, erased)


LATER = T0 + timedelta(hours=1)


@pytest.mark.parametrize("mine, hub, action", [
    (None, remote(3, T0), Action.TAKE),  # lost by the restore (or an old instance's record)
    (local(2, T0, 2), remote(2, T0), Action.EQUAL),
    (local(4, LATER, 4, D2), remote(2, T0), Action.KEEP),  # the node is ahead: the hub pulls it
    (local(1, T0 - timedelta(days=1), 1), remote(3, T0), Action.TAKE),  # the backup's older version
    (local(2, LATER, 2, D2), remote(2, T0), Action.RESIGN),  # restored v2 ≠ hub v2: never an equivocation
    (local(1, LATER, 1, D2), remote(3, T0), Action.RESIGN),  # written after the restore, below the hub's
    (local(3, T0 - timedelta(days=1), 3, D2), remote(3, T0, D1), Action.ADOPT),  # the hub's is later
    (local(2, LATER, None), remote(2, T0), Action.RESIGN),  # national on the node: its tombstone goes up
    # whole-second timestamps: a node restored within the second of its lost writes
    (local(1, T0, 1, D2), remote(2, T0), Action.TAKE),  # the backup's v1 is the ancestor of the hub's v2
    (local(2, T0, 2, D2), remote(2, T0), Action.RESIGN),  # a full tie goes to the node
    (local(3, T0, 3, D2), remote(2, T0), Action.KEEP),
])
def test_reconcile(mine: Local | None, hub: Remote, action: Action) -> None:
    assert reconcile(mine, hub) is action


def test_an_erasure_wins_over_a_later_restored_edit() -> None:
    """GDPR Art. 17: a restore must not bring back (nor re-publish) what was erased."""
    assert reconcile(local(1, LATER, 1, D2), remote(2, T0, erased=True)) is Action.TAKE
    assert reconcile(local(3, LATER, 3, D2), remote(2, T0, erased=True)) is Action.ADOPT
    # ...unless the node holds the record deleted too (its own tombstone is newer)
    assert reconcile(local(3, LATER, 3, D2, deleted=True), remote(2, T0, erased=True)) is Action.KEEP


def test_a_resigned_version_is_above_both_sides() -> None:
    assert next_version(local(2, T0, 2), 5) == 6
    assert next_version(local(7, T0, 7), 5) == 8
    assert next_version(local(1, T0, 1), MAX_VERSION) is None
