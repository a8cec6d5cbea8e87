"""Hub side of "regression is never silent" and "status tells the truth" (DESIGN §11).

* Before a pull ingests anything, :func:`check_before_pull` asks the node
  (``GET /federation/v1/changes/head`` with the anchor: the last record the hub ingested from it)
  whether it still holds that record; a node that does not — restored from a backup, replaced by a
  new instance — is marked ``diverged`` and nothing of it is ingested (the rules:
  :mod:`federation.divergence`).
* ``ncc recover`` on the node reads back its records (:func:`held_page`), reconciles, then asks the
  hub to resume (:func:`start_epoch`): the cursor restarts from 0 in a new feed epoch and the next
  pull compares everything. A new instance enrolling for a country starts a new epoch too
  (:func:`epoch_on_enrollment`).
* Query-only nodes are probed on the pull schedule (:func:`probe`) and live answers count for their
  status (:func:`record_live`), so one that is down is ``unreachable``/``stale`` like any other.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import BaseORMException

from federation.divergence import Anchor, FeedState, divergence, live_failure_counts
from federation.timefmt import format_timestamp
from federation.tokens import issue_service_token
from node.services.fedclient import FedError, Limits
from node.services.ingest import PullError
from node.services.pullstatus import PullResult, failure_summary
from node.storage import sql
from node.storage.hub_models import FederatedNode, HubRecord, PullState

if TYPE_CHECKING:
    from node.services.sync import Puller

log = logging.getLogger("ncc.sync")

#: The node's answer about its feed is a small object: anything longer is refused unread.
FEED_STATE_MAX_BYTES = 4096
#: A page of held records a node reads back stops after this many bytes (at least one record).
HELD_PAGE_MAX_BYTES = 8 * 1024 * 1024
#: ``instance`` sent at enrollment: an opaque id the node made once (uuid hex).
INSTANCE_RE = re.compile(r"\A[A-Za-z0-9-]{8,64}\Z")
RECOVER_HINT = "run `ncc recover` on the node"


class Diverged(PullError):
    """The node no longer holds what the hub ingested from it: nothing of it is ingested."""

    def summary(self) -> str:
        """The hub's own finding (its anchor, sequence numbers); the message says what to run."""
        return f"Diverged: {self}"[:500]


def anchor_of(state: PullState) -> Anchor | None:
    if state.anchor_seq is None or state.anchor_id is None or state.anchor_version is None:
        return None
    return Anchor(int(state.anchor_seq), state.anchor_id, int(state.anchor_version), str(state.anchor_digest))


async def ask_feed_state(puller: Puller, url: str, country: str, anchor: Anchor | None) -> FeedState | None:
    """The node's feed head and whether it holds ``anchor``; None when the node does not know the
    question (404: a node older than this check — the page trailer's head is checked instead).

    Raises:
        FedError: no answer within ``pull_timeout_s``, another status, a redirect, an answer over
            ``FEED_STATE_MAX_BYTES`` (through the federation client, like every read of a node).
        PullError: an answer that is not the small object expected (``bad_answer``).
    """
    key = puller.key()
    token = issue_service_token(key.private_key, key.kid, "hub", f"node:{country}", puller.clock(),
                                ttl_s=puller.settings.service_token_ttl_s)
    params = anchor.to_params() if anchor is not None else {}
    limit = puller.settings.pull_timeout_s
    resp = await puller.client.request(
        "GET", f"{url.rstrip('/')}/federation/v1/changes/head", Limits(FEED_STATE_MAX_BYTES, limit),
        params=params, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        expect_status=None,
    )
    resp.release()
    if resp.status == 404:
        return None
    if resp.status != 200:
        raise FedError("http_status", resp.status)
    try:
        data = orjson.loads(resp.body)
    except orjson.JSONDecodeError as exc:
        raise PullError("feed state answer is not JSON", "bad_answer") from exc
    head = data.get("head") if isinstance(data, dict) else None
    held = data.get("holds") if isinstance(data, dict) else None
    if type(head) is not int or head < 0 or (held is not None and type(held) is not bool):
        raise PullError("feed state answer is not {head, holds}", "bad_answer")
    if anchor is not None and held is None:
        raise PullError("the node did not say whether it holds the anchor", "bad_answer")
    return FeedState(head, held)


async def check_before_pull(puller: Puller, url: str, country: str) -> bool:
    """Raise :class:`Diverged` (and mark the node) when it no longer holds what the hub ingested from
    it; clear the mark when it does again. Returns whether the node answered the check (False: an
    older node; the caller then compares the first page's ``head`` with the cursor).

    Raises:
        Diverged: the node diverged.
        PullError: the node could not be asked.
    """
    state = await PullState.get(country=country)
    anchor = anchor_of(state)
    if anchor is None and state.cursor == 0 and state.diverged_at is None:
        return True  # nothing ingested yet (a new node, a new epoch): nothing to lose
    feed = await ask_feed_state(puller, url, country, anchor)
    if feed is None:
        return False
    reason = divergence(anchor, int(state.cursor), feed)
    if reason is not None:
        await mark_diverged(country, reason, feed.head, puller.clock())
        raise Diverged(f"{reason}; {RECOVER_HINT}")
    if state.diverged_at is not None:
        # the operator put back the right data (another backup): the node is whole again
        await PullState.filter(country=country).update(diverged_at=None, diverged_reason=None)
        log.warning("node no longer diverged", extra={"node": country})
    return True


async def check_page_head(country: str, cursor: int, head: int, now: datetime) -> None:
    """The fallback for a node that cannot answer the anchor check: its first page's ``head``.

    Raises:
        Diverged: the head is below the cursor (the node is marked).
    """
    reason = divergence(None, cursor, FeedState(head))
    if reason is not None:
        await mark_diverged(country, reason, head, now)
        raise Diverged(f"{reason}; {RECOVER_HINT}")


async def mark_diverged(country: str, reason: str, head: int, now: datetime) -> None:
    state = await PullState.get(country=country)
    await PullState.filter(country=country).update(
        diverged_at=state.diverged_at or format_timestamp(now), diverged_reason=reason[:1000], head=head)
    if state.diverged_at is None:
        log.error("node diverged: nothing of it is ingested until `ncc recover`",
                  extra={"node": country, "reason": reason})


async def start_epoch(country: str, conn: BaseDBAsyncClient | None = None) -> int:
    """Restart the node's cursor from 0 in a new feed epoch (its divergence ends); the new epoch.

    A pull applying a page meanwhile fails its compare-and-set on the cursor and writes nothing.
    """
    from tortoise.connection import connections

    conn = conn or connections.get("default")
    await sql.execute(
        conn,
        "UPDATE hub_pull_state SET cursor = 0, head = 0, anchor_seq = NULL, anchor_id = NULL,"
        " anchor_version = NULL, anchor_digest = NULL, diverged_at = NULL, diverged_reason = NULL,"
        " epoch = epoch + 1 WHERE country = ?",
        [country],
    )
    rows = await sql.fetch(conn, "SELECT epoch FROM hub_pull_state WHERE country = ?", [country])
    return int(rows[0]["epoch"]) if rows else 0


async def epoch_on_enrollment(conn: BaseDBAsyncClient, country: str, instance: Any) -> None:
    """At (re-)enrollment: remember the node instance; a different instance than the one that
    enrolled before (a fresh ``ncc init``) starts a new feed epoch, so its records are pulled from 0.
    An unknown previous instance (enrolled before instances were sent) is left to the divergence check.

    Raises:
        ValueError: ``instance`` is given but malformed.
    """
    if instance is None:
        return
    if not isinstance(instance, str) or not INSTANCE_RE.match(instance):
        raise ValueError("instance must be 8 to 64 letters, digits or hyphens")
    rows = await sql.fetch(conn, "SELECT instance FROM hub_pull_state WHERE country = ?", [country])
    if not rows:
        return
    previous = rows[0]["instance"]
    if previous is not None and previous != instance:
        epoch = await start_epoch(country, conn)
        log.warning("a new instance enrolled: new feed epoch, pulled from 0",
                    extra={"node": country, "epoch": epoch})
    await sql.execute(conn, "UPDATE hub_pull_state SET instance = ? WHERE country = ?", [instance, country])


async def held_page(country: str, after: str, limit: int) -> bytes:
    """``{"records": [...], "next_after"}``: the envelopes the hub holds from ``country`` (exactly as
    signed), by id after ``after``; a page ends early past ``HELD_PAGE_MAX_BYTES``."""
    rows = await HubRecord.filter(origin=country, id__gt=after).order_by("id").limit(limit + 1).values_list(
        "id", "envelope")
    parts: list[bytes] = []
    size = 0
    last: str | None = None
    for rid, envelope in rows[:limit]:
        if parts and size + len(envelope) > HELD_PAGE_MAX_BYTES:
            break
        parts.append(envelope.encode())
        size += len(envelope)
        last = rid
    more = len(parts) < len(rows)
    return (b'{"records":[' + b",".join(parts) + b'],"next_after":'
            + orjson.dumps(last if more else None) + b"}")


# -- query-only nodes ----------------------------------------------------------------------------


async def probe(puller: Puller, node: FederatedNode) -> PullResult:
    """Ask a query-only node for its feed state (it is not pulled): its status follows the answer."""
    result = PullResult(node.country, ok=False)
    started = puller.clock()
    t0 = time.perf_counter()
    try:
        await ask_feed_state(puller, node.url, node.country, None)
        result.ok = True
    except (PullError, FedError) as exc:
        result.error = f"probe failed: {failure_summary(exc)}"  # a code, never the node's bytes (DESIGN §10)
    result.elapsed_s = time.perf_counter() - t0
    result.skipped = "query-only (probed)"
    await puller.finish(node.country, result, started)
    return result


async def record_live(asked: Sequence[FederatedNode], answered: Collection[str], deadline_ms: int,
                      live_timeout_ms: int, now: datetime) -> None:
    """Live answers of query-only nodes count for their status: an answer is a success; a missing one
    a failure only when the deadline was at least ``live_timeout_ms`` (DESIGN §11)."""
    counts = live_failure_counts(deadline_ms, live_timeout_ms)
    stamp = format_timestamp(now)
    try:
        for node in asked:
            if node.mode != "query-only":
                continue  # a replicating node's status is its pulls'
            if node.country in answered:
                # read first: at most one write per node and second, not one per search (SQLite has
                # one writer, and the ingest needs it)
                state = await PullState.filter(country=node.country).first()
                if state is not None and (state.consecutive_failures or state.last_success != stamp):
                    await PullState.filter(country=node.country).update(
                        last_success=stamp, consecutive_failures=0, last_error=None)
            elif counts:
                from tortoise.connection import connections

                await sql.execute(
                    connections.get("default"),
                    "UPDATE hub_pull_state SET consecutive_failures = consecutive_failures + 1, last_error = ?,"
                    " last_attempt = ? WHERE country = ?",
                    [f"live query: no answer within {deadline_ms} ms", stamp, node.country],
                )
    except BaseORMException as exc:
        # bookkeeping must never fail the search that carried it; the next answer or probe records it
        log.warning("live status not recorded", extra={"error": f"{exc.__class__.__name__}: {exc}"[:300]})
