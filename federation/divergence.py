"""Regression is never silent (DESIGN §11): the rules that decide whether a node still holds what the
hub ingested from it, and how ``ncc recover`` reconciles a node with the hub's copy of its records.

Pure functions over small values, like :mod:`federation.ingest`: no storage, no clock, no HTTP.

**Divergence.** After each page the hub remembers an *anchor*: the last record it ingested from the
node (its feed sequence, id, version and digest). Before it ingests anything more it asks the node
whether it still holds that record at that sequence with that digest. A node restored from a backup
does not (the anchor was written after the backup, or the restored node wrote something else under
that sequence since): it has *diverged*, and the hub ingests nothing from it until ``ncc recover``.
"head below cursor" alone would miss a restored node that already wrote past the old cursor.

**Recovery.** For each record the hub holds from the node, :func:`reconcile` says what the node does,
given what it holds itself (its current version and the face its feed publishes). The outcome is
always a node whose published version is at least the hub's, with the same digest when equal, so the
hub's next pull from 0 ends in exact equality and never in an equivocation.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

#: Highest version the protocol allows (JSON numbers stay exact up to 2^53 - 1).
MAX_VERSION = 2**53 - 1
_DIGEST_RE = re.compile(r"\A[0-9a-f]{64}\Z")
_ID_RE = re.compile(r"\Aurn:ncc:[A-Z]{2}:[a-z]{1,16}:[0-9a-f-]{36}\Z")


@dataclass(frozen=True, slots=True)
class Anchor:
    """The last record the hub ingested from a node: where the node's feed carried it and what it was."""

    seq: int
    id: str
    version: int
    digest: str

    def to_params(self) -> dict[str, str]:
        """As the query parameters of ``GET /federation/v1/changes/head``."""
        return {"seq": str(self.seq), "id": self.id, "version": str(self.version), "digest": self.digest}

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> Anchor | None:
        """The anchor named by query parameters; None when none is given.

        Raises:
            ValueError: some but not all of them given, or one malformed (the message names it).
        """
        names = ("seq", "id", "version", "digest")
        given = [n for n in names if params.get(n) not in (None, "")]
        if not given:
            return None
        if len(given) != len(names):
            missing = [n for n in names if n not in given]
            raise ValueError(f"{missing[0]}: an anchor needs seq, id, version and digest together")
        seq, version = _positive(params["seq"], "seq", 2**62), _positive(params["version"], "version", MAX_VERSION)
        if not _ID_RE.match(params["id"]):
            raise ValueError("id: not a record id")
        if not _DIGEST_RE.match(params["digest"]):
            raise ValueError("digest: not a lowercase hex SHA-256")
        return cls(seq, params["id"], version, params["digest"])


def _positive(text: str, name: str, limit: int) -> int:
    if not text.isdigit() or len(text) > 20 or not 1 <= int(text) <= limit:
        raise ValueError(f"{name}: not an integer between 1 and {limit}")
    return int(text)


@dataclass(frozen=True, slots=True)
class FeedState:
    """What a node answered about its feed: its head, and whether it holds the anchor (None: not asked,
    or a node that cannot answer)."""

    head: int
    holds: bool | None = None


def divergence(anchor: Anchor | None, cursor: int, state: FeedState) -> str | None:
    """Why the node has diverged from what the hub ingested from it, or None when it has not.

    ``cursor`` is the hub's cursor for the node. The anchor test comes first: it also catches a
    restored node that has already written past the old cursor, where ``head < cursor`` does not.
    """
    if anchor is not None and state.holds is False:
        return (f"the node no longer holds {anchor.id} v{anchor.version} at sequence {anchor.seq}, the last "
                f"record the hub ingested from it (restored from a backup or replaced?)")
    if state.head < cursor:
        return f"the node's feed head {state.head} is below the hub's cursor {cursor} (restored from a backup?)"
    return None


def holds(anchor: Anchor, seq: int | None, digest: str | None) -> bool:
    """Whether the node's own record of ``anchor.id`` v``anchor.version`` — first fed at ``seq`` with
    ``digest`` (None: the node has no such version) — is the one the hub ingested."""
    return seq == anchor.seq and digest == anchor.digest


def live_failure_counts(deadline_ms: int, live_timeout_ms: int) -> bool:
    """Whether a node missing a live query's deadline counts against its status: only when the asker
    gave it at least the configured ``live_timeout_ms`` (a reader asking for 5 ms marks nobody down)."""
    return deadline_ms >= live_timeout_ms


# -- recovery -----------------------------------------------------------------------------------------


class Action(enum.Enum):
    """What ``ncc recover`` does with one record the hub holds from the node."""

    EQUAL = "equal"  # the node publishes exactly the hub's version: nothing to do
    KEEP = "keep"  # the node publishes a higher version: the hub takes it at its next pull
    TAKE = "take"  # the node lacks the hub's version: store it as signed (it becomes current)
    RESIGN = "resign"  # the node's own content is newer: sign it again above the hub's version
    ADOPT = "adopt"  # the hub's content is newer but its version collides: sign it again, higher


@dataclass(frozen=True, slots=True)
class Local:
    """What the node holds of a record: its current version (national ones included) and when it was
    issued, and the face its feed publishes (None: nothing shared, e.g. national since creation)."""

    version: int
    issued_at: datetime
    deleted: bool
    face_version: int | None
    face_digest: str | None


@dataclass(frozen=True, slots=True)
class Remote:
    """The hub's version of a record (verified against the node's own keys)."""

    version: int
    digest: str
    issued_at: datetime
    erased: bool


def reconcile(local: Local | None, remote: Remote) -> Action:
    """What the node does so that its published version is at least the hub's (equal → same digest).

    Content written later wins: ``issued_at``, then — timestamps are whole seconds, and a node
    restored within a second writes in the same second as the versions it lost — the higher version
    (the node's own lower version of that second is the backup's ancestor of the hub's); a full tie
    goes to the node. An ``erased`` tombstone always wins over content the node does not hold as
    deleted: a restore must not bring back personal data that was erased (GDPR Art. 17).
    """
    if local is None:
        return Action.TAKE
    if local.face_version == remote.version and local.face_digest == remote.digest:
        return Action.EQUAL
    erasure_wins = remote.erased and not local.deleted
    if local.face_version is not None and local.face_version > remote.version and not erasure_wins:
        return Action.KEEP
    if (local.issued_at, local.version) >= (remote.issued_at, remote.version) and not erasure_wins:
        return Action.RESIGN
    return Action.TAKE if local.version < remote.version else Action.ADOPT


def next_version(local: Local, remote_version: int) -> int | None:
    """The version a re-signed record takes: above both the node's and the hub's (None: none is left)."""
    version = max(local.version, remote_version) + 1
    return version if version <= MAX_VERSION else None
