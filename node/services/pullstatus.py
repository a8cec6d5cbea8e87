"""What a pull of a node did, and what the hub makes of a node's pulls: its status, its failure
reason, and when a failing node is tried again.

The one home of the back-off policy (STYLE rule 11): every process that pulls (the serving hub, a
one-shot ``ncc sync``) records a failure and the time of the next attempt in the node's row of
``hub_pull_state`` (``retry_at``), and the serving hub retries from that row — a failure that
``ncc sync`` recorded is retried by the hub on the same schedule as its own.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tortoise.exceptions import BaseORMException

from federation.timefmt import parse_timestamp
from node.config import Settings
from node.services.fedclient import FedError
from node.services.ingest import CursorMoved, PageOutcome, PullError
from node.storage import reads
from node.storage.availability import database_unavailable
from node.storage.hub_models import PullState

#: Statuses of a node at the hub (``GET /api/v1/nodes``, ``/status``, ``ncc hub nodes``).
STATUSES = ("ok", "stale", "unreachable", "diverged")


@dataclass
class PullResult:
    """What one pull of one node did."""

    country: str
    ok: bool
    pages: int = 0
    outcome: PageOutcome = field(default_factory=PageOutcome)
    cursor: int = 0
    head: int = 0
    error: str | None = None
    skipped: str | None = None
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        o = self.outcome
        return {"country": self.country, "ok": self.ok, "pages": self.pages, "accepted": o.accepted,
                "deleted": o.deleted, "stale": o.stale, "duplicate": o.duplicate,
                "quarantined": o.quarantined, "codes": dict(o.codes), "cursor": self.cursor, "head": self.head,
                "error": self.error, "skipped": self.skipped, "elapsed_s": round(self.elapsed_s, 4)}

    @property
    def records(self) -> int:
        """Records the pull went through (accepted, deleted, stale, duplicate or quarantined)."""
        o = self.outcome
        return o.accepted + o.deleted + o.stale + o.duplicate + o.quarantined


def node_status(state: PullState | reads.PullFacts | None, settings: Settings, now: datetime) -> str:
    """``ok`` | ``stale`` | ``unreachable`` | ``diverged`` for one node."""
    if state is None:
        return "stale"
    if state.diverged_at is not None:
        return "diverged"  # nothing of it is ingested until `ncc recover` (node.services.divergence)
    if state.consecutive_failures >= settings.unreachable_after:
        return "unreachable"
    if state.last_success is None:
        return "stale"
    if now - parse_timestamp(state.last_success) > timedelta(seconds=settings.stale_after_s):
        return "stale"
    return "ok"


def status_reason(state: PullState | None, status: str) -> str | None:
    """Why a node is ``unreachable`` or ``diverged`` (None for the other statuses): what an operator
    reads first at ``/status`` and in ``ncc hub nodes``."""
    if state is None:
        return None
    if status == "diverged":
        return state.diverged_reason or state.last_error
    if status == "unreachable":
        return state.last_error
    return None


def displayed_status(enrollment: str, state: PullState | reads.PullFacts | None, settings: Settings,
                     now: datetime) -> str:
    """A node's status as the hub shows it. A suspended node is not pulled: what the hub holds of it
    is ``stale`` from the moment it is suspended (regression: it showed ``ok`` until ``stale_after_s``
    had passed). A query-only node is probed every ``pull_interval_s`` and its live answers count
    (DESIGN §11): one that is down is ``unreachable``/``stale`` like any other (regression: it always
    showed ``ok``)."""
    if enrollment != "active":  # the node's enrollment status (FederatedNode.status)
        return "stale"
    return node_status(state, settings, now)


async def nodes_status(settings: Settings, now: datetime) -> list[dict[str, Any]]:
    """Every enrolled node with its sync status (``GET /api/v1/nodes``, ``/status``, ``ncc hub nodes``):
    ``reason`` says why a node is ``unreachable`` (its last pull's error code) or ``diverged``."""
    states = await reads.pull_states()
    out: list[dict[str, Any]] = []
    for node in await reads.federated_nodes():
        st = states.get(node.country)
        status = displayed_status(node.status, st, settings, now)
        out.append({
            "country": node.country,
            "url": node.url,
            "status": status,
            "mode": node.mode,
            "enrollment": node.status,
            "last_success": st.last_success if st else None,
            "consecutive_failures": st.consecutive_failures if st else 0,
            "lag": max(0, st.head - st.cursor) if st else 0,
            "cursor": st.cursor if st else 0,
            "head": st.head if st else 0,
            "epoch": st.epoch if st else 0,
            "diverged": ({"since": st.diverged_at, "reason": st.diverged_reason}
                         if st is not None and st.diverged_at is not None else None),
            "last_error": st.last_error if st else None,
            "reason": status_reason(st, status),
            "quarantined": await reads.quarantine_count(node.country),
        })
    return out


async def node_statuses(settings: Settings, now: datetime) -> dict[str, str]:
    """Each enrolled node's displayed status alone (a search answer's ``nodes``): no quarantine count,
    which :func:`nodes_status` reads with one query per node."""
    return {country: displayed_status(enrollment, facts, settings, now)
            for country, enrollment, facts in await reads.status_facts()}


def backoff_s(settings: Settings, failures: int) -> float:
    """The wait before the next pull of a node after ``failures`` failed pulls in a row:
    ``backoff_min_s`` doubling per failure up to ``backoff_max_s``, ±20 % so that nodes that failed
    together are not retried together."""
    if failures <= 0:
        return 0.0
    base = min(float(settings.backoff_max_s), settings.backoff_min_s * 2.0 ** min(failures - 1, 32))
    return base * random.uniform(0.8, 1.2)


def retry_at(settings: Settings, failures: int, now_ts: float) -> int:
    """The wall-clock second (Unix time) from which a failing node is pulled again."""
    return math.ceil(now_ts + backoff_s(settings, failures))


def failure_summary(exc: BaseException) -> str:
    """What a failed pull records as ``last_error``: a code of ``fedclient.ERROR_CODES`` (and the
    node's HTTP status), never a message that could quote the node's bytes."""
    if isinstance(exc, FedError):
        return exc.summary()
    if isinstance(exc, PullError):
        return exc.summary()
    if isinstance(exc, CursorMoved):
        return "cursor_moved"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, BaseORMException) or database_unavailable(exc):
        return "database_unavailable"
    return "connect_failed"
