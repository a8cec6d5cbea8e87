"""Hub side of sync: pulling each node's change feed, on a schedule, on notification, or on demand.

One pull of node X:

1. take X's lease in ``hub_pull_state`` (a row-level database lock shared by every hub process on
   the same database: ``UPDATE … WHERE lease_until < now``; only one process wins);
2. page through ``GET {url}/federation/v1/changes?after=<cursor>`` with a short service token
   (one page of at most ``pull_batch`` records in memory, never the whole feed);
3. check each page (parse, frame, verify, validate; node.services.ingest.check_page) — in a worker
   process for large pages — then apply it and advance the cursor in one transaction
   (node.services.ingest.apply_checked). Pages are pipelined: while page k is written, page k+1 is
   fetched and checked, so at most two pages are in flight; page k+1 is applied only after page k
   committed, from the cursor page k left (the compare-and-set would refuse anything else);
4. record the outcome: ``last_success`` / ``consecutive_failures`` / ``last_error``, and for a
   failure the time of the next attempt (``retry_at``, node.services.pullstatus: the one back-off
   policy, shared by every process through the database); log it (one INFO line a pull: node,
   records, duration, error code).

The serving hub retries each failing node when its back-off ends (``start_retries``), whichever
process recorded the failure; a node that starts notifies the hub, which pulls it within seconds.

Within a process an ``asyncio.Lock`` per node makes concurrent triggers (scheduler, notify, CLI)
wait for the running pull instead of starting a second one.

Background pulls (scheduler, notify) skip a node whose lease another process holds: that process is
pulling it anyway. An explicit pull (``ncc sync``, ``POST /api/v1/sync``) waits for the lease instead,
so that it returns only once the node has been pulled. A lease whose owner was a process on this host
that no longer exists (a hub killed mid-pull) is taken over at once instead of waiting for it to
expire; correctness never depends on the lease anyway (the cursor moves by compare-and-set).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from tortoise.exceptions import BaseORMException

from federation.directory import DIRECTORY_SERIAL_HEADER, Directory
from federation.schemas import SchemaRegistry
from federation.timefmt import format_timestamp
from federation.tokens import issue_service_token
from node.config import Settings
from node.errors import RateLimited
from node.keystore import InstanceKey
from node.metrics import Metrics
from node.services import divergence
from node.services.fedclient import ByteBudget, FedClient, FedError, FedResponse, limits_for_page
from node.services.hub import HubService
from node.services.ingest import (
    MAX_LINE,
    CheckedPage,
    CheckPool,
    CursorMoved,
    FeedItem,
    PageOutcome,
    PullError,
    apply_checked,
    apply_page,
    check_items,
    check_page,
    default_workers,
)
from node.services.pullstatus import PullResult, failure_summary, node_status, retry_at
from node.services.search import SearchService
from node.storage import reads, sql
from node.storage.availability import database_unavailable
from node.storage.hub_models import DirectoryDoc, FederatedNode, PullState


async def directory_serial() -> int:
    """The serial of the newest directory the hub signed (0 before the first)."""
    row = await DirectoryDoc.all().order_by("-serial").only("serial").first()
    return int(row.serial) if row is not None else 0

log = logging.getLogger("ncc.sync")

__all__ = ["MAX_LINE", "CursorMoved", "FeedItem", "PageOutcome", "PullError", "PullResult", "Puller", "apply_page",
           "check_items", "failure_summary", "node_status"]

#: What fails a pull (recorded in the node's status) rather than being a bug of the hub.
PULL_FAILURES = (TimeoutError, PullError, FedError, CursorMoved, BaseORMException)

#: How often the serving hub looks for failing nodes whose back-off has ended (``retry_due``).
RETRY_SWEEP_S = 1.0

#: Pages up to this size are checked in a thread of the hub process; larger ones in the worker
#: process (a process round trip and the worker's start cost more than they save on small pages).
INLINE_MAX_BYTES = 256 * 1024


def _dead_local_owner(owner: str) -> bool:
    """Whether a lease owner (``host:pid:nonce``) was a process on this host that has exited."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    host, pid = parts[0], int(parts[1])
    if host != socket.gethostname() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists, owned by someone else
    return False


def next_page_cursor(body: bytes, at: int) -> int | None:
    """The cursor of the page after this one, read from its trailer (the last line), or None when
    there is none (no more pages) or the trailer cannot be read (the page's check will say why)."""
    end = len(body.rstrip(b"\n"))
    try:
        trailer = orjson.loads(body[body.rfind(b"\n", 0, end) + 1 : end])
    except orjson.JSONDecodeError:
        return None
    if not isinstance(trailer, dict) or trailer.get("more") is not True:
        return None
    following = trailer.get("next")
    return following if type(following) is int and following > at else None


@dataclass
class Puller:
    """Pulls node feeds into the hub."""

    settings: Settings
    key: Callable[[], InstanceKey]
    hub: HubService
    registry: SchemaRegistry
    search: SearchService
    clock: Callable[[], datetime]
    metrics: Metrics | None = None
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{random.getrandbits(32):08x}")
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    #: The federation client: the only way the hub reads a node (limits, redirects, addresses).
    client: FedClient = None  # type: ignore[assignment]
    _pending: dict[str, bool] = field(default_factory=dict)
    #: Nodes a pull has been started or queued for in this process (the first round at start skips them).
    _started: set[str] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # notify throttling (DESIGN §10): when each node's last notification was taken, trailing pulls
    _notified: dict[str, float] = field(default_factory=dict)
    _trailing: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    #: Pages larger than this (bytes) are checked in the worker process; smaller ones in a thread.
    inline_max_bytes: int = INLINE_MAX_BYTES
    #: Verification worker processes (default: the setting ``verify_workers``, 0 = cores − 1).
    checker: CheckPool = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.checker is None:
            self.checker = CheckPool(self.settings.verify_workers or default_workers())
        if self.client is None:
            self.client = FedClient(self.settings.allow_private_node_urls,
                                    ByteBudget(self.settings.pull_inflight_max_bytes))

    async def close(self) -> None:
        for handle in self._trailing.values():
            handle.cancel()
        self._trailing.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.client.close()
        await asyncio.to_thread(self.checker.close)

    # -- scheduling helpers --------------------------------------------------------------------

    async def backoff_due(self, country: str) -> bool:
        """False while a failing node is in its back-off window (scheduled pulls skip it); the window
        is the database's (``retry_at``), whichever process recorded the failure."""
        state = await PullState.filter(country=country).only("country", "retry_at").first()
        return state is None or time.time() >= state.retry_at

    async def retry_due(self) -> list[str]:
        """Pull again every active node that failed and whose back-off has ended, whichever process
        recorded the failure (this one, another hub process, ``ncc sync``). A diverged node is left to
        its operator (``ncc recover``); it is still pulled on schedule. Returns the nodes triggered."""
        now = int(time.time())
        # retry_at 0: no back-off recorded (a success, or a live-query miss of a query-only node)
        due = await PullState.filter(consecutive_failures__gt=0, retry_at__gt=0, retry_at__lte=now,
                                     diverged_at=None, lease_until__lt=now).values_list("country", flat=True)
        if not due:
            return []
        active = set(await FederatedNode.filter(country__in=list(due), status="active")
                     .values_list("country", flat=True))
        chosen = sorted(c for c in due if c in active)
        for country in chosen:
            lock = self._locks.get(country)
            if lock is None or not lock.locked():  # a running pull records its own outcome
                self.trigger(country)
        return chosen

    def start_retries(self, every_s: float = RETRY_SWEEP_S) -> None:
        """The serving hub: call ``retry_due`` every ``every_s`` seconds until ``close``."""

        async def sweep() -> None:
            while True:
                await asyncio.sleep(every_s)
                try:
                    await self.retry_due()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if not database_unavailable(exc):
                        log.exception("retry sweep failed")
                    # a database restart: the next sweep retries

        task = asyncio.get_running_loop().create_task(sweep())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def notified(self, country: str) -> None:
        """A node's notification: pull it now, at most once per ``notify_min_interval_s``. A closer one
        is refused, and one pull is scheduled for the end of the interval, so that no write waits for
        the next scheduled pull (a node notifying in a loop costs one pull per interval).

        Raises:
            RateLimited: (429) the node notified less than ``notify_min_interval_s`` ago.
        """
        now = time.monotonic()
        interval = float(self.settings.notify_min_interval_s)
        last = self._notified.get(country)
        if last is not None and now - last < interval:
            wait = interval - (now - last)
            if country not in self._trailing:
                self._trailing[country] = asyncio.get_running_loop().call_later(wait, self._trailing_pull, country)
            raise RateLimited(f"notifications of {country}: at most one per {interval:g} s; a pull follows",
                              retry_after_s=max(1, math.ceil(wait)))
        self._notified[country] = now
        self.trigger(country)

    def _trailing_pull(self, country: str) -> None:
        self._trailing.pop(country, None)
        self._notified[country] = time.monotonic()
        self.trigger(country)

    def trigger_first(self, country: str) -> None:
        """The pull a starting hub owes each node: :meth:`trigger`, unless a pull of ``country`` has
        been started or queued in this process already (a node's notification can come before the
        scheduler's first round: pulling it again then would be a second pull of the same feed)."""
        if country not in self._started:
            self.trigger(country)

    def trigger(self, country: str) -> None:
        """Start a pull of ``country`` in the background (a running one is not duplicated)."""
        lock = self._locks.get(country)
        if lock is not None and lock.locked() and self._pending.get(country):
            return  # one pull running and one already queued behind it: enough
        self._pending[country] = True
        self._started.add(country)

        async def run() -> None:
            try:
                lock = self._locks.setdefault(country, asyncio.Lock())
                async with lock:
                    self._pending[country] = False
                    await self._pull_locked(country)
            except Exception:
                log.exception("triggered pull failed", extra={"node": country})

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def pull_all(self, countries: list[str] | None = None, wait: bool = False) -> list[PullResult]:
        """Pull every active replicating node (or the given ones), concurrently."""
        nodes = await FederatedNode.filter(status="active", mode="replicate").order_by("country")
        chosen = [n.country for n in nodes if countries is None or n.country in countries]
        return list(await asyncio.gather(*(self.pull(c, wait=wait) for c in chosen)))

    # -- one pull ------------------------------------------------------------------------------

    async def pull(self, country: str, wait: bool = False) -> PullResult:
        """Pull one node until its feed says no more (or a failure); a failure of the node, the
        network or the database is reported in the result, never raised.

        ``wait``: if another hub process holds the node's lease, wait for it and then pull, rather
        than skip (explicit pulls must not return before the node was pulled).
        """
        lock = self._locks.setdefault(country, asyncio.Lock())
        async with lock:
            return await self._pull_locked(country, wait)

    async def _pull_locked(self, country: str, wait: bool = False) -> PullResult:
        self._started.add(country)
        try:
            return await self._pull_node(country, wait)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            # the database went away before the pull started or while its outcome was recorded:
            # nothing was written, the next pull (scheduled, notified) retries once it is back
            error = "database_unavailable"
            log.warning("pull failed", extra={"node": country, "error": error,
                                              "exception": exc.__class__.__name__})
            return PullResult(country, ok=False, error=error)

    async def _pull_node(self, country: str, wait: bool) -> PullResult:
        node = await FederatedNode.filter(country=country).first()
        if node is None:
            return PullResult(country, ok=False, error="not enrolled")
        if node.status != "active":
            state = await PullState.filter(country=country).first()
            return PullResult(country, ok=False, skipped="suspended",
                              error="suspended: not pulled until the hub admin activates it",
                              cursor=state.cursor if state else 0, head=state.head if state else 0)
        if node.mode != "replicate":
            return await divergence.probe(self, node)  # not pulled, but its status must tell the truth
        if not await self._take_lease(country):
            if not wait:
                return PullResult(country, ok=True, skipped="another hub process holds this node's pull")
            if not await self._wait_for_lease(country):
                return PullResult(country, ok=False, error="another hub process kept this node's pull lease")
        result = PullResult(country, ok=False)
        started = self.clock()
        t0 = time.perf_counter()
        try:
            directory_doc = await self.hub.directory_for_pull(country)
            answered = await divergence.check_before_pull(self, node.url, country)
            await self._pull_pages(node.url, country, directory_doc, result, check_head=not answered)
            result.ok = True
        except Exception as exc:
            if not isinstance(exc, PULL_FAILURES) and not database_unavailable(exc):
                raise
            # a database error (SQLite busy, PostgreSQL restarting) fails this pull like a transport
            # error: the page's transaction rolled back, the cursor did not move, the next pull retries
            result.error = failure_summary(exc)
        finally:
            result.elapsed_s = time.perf_counter() - t0
            await self._finish(country, result, started)
        return result

    def _lease_s(self) -> int:
        return max(self.settings.pull_timeout_s * 3, 120)

    async def _take_lease(self, country: str) -> bool:
        from tortoise.connection import connections

        now = int(time.time())
        until = now + self._lease_s()
        conn = connections.get("default")
        won = await sql.execute(
            conn,
            "UPDATE hub_pull_state SET lease_owner = ?, lease_until = ? WHERE country = ?"
            " AND (lease_until < ? OR lease_owner = ? OR lease_owner IS NULL)",
            [self.owner, until, country, now, self.owner],
        )
        if won == 1:
            return True
        state = await PullState.filter(country=country).first()
        holder = state.lease_owner if state is not None else None
        if holder is None or not _dead_local_owner(holder):
            return False
        log.warning("taking over the pull lease of a dead hub process", extra={"node": country, "owner": holder})
        won = await sql.execute(
            conn, "UPDATE hub_pull_state SET lease_owner = ?, lease_until = ? WHERE country = ? AND lease_owner = ?",
            [self.owner, until, country, holder],
        )
        return won == 1

    async def _wait_for_lease(self, country: str) -> bool:
        """Poll for the lease until the holder releases it (or it expires); False after that."""
        deadline = time.monotonic() + self._lease_s() + 5
        while time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            if await self._take_lease(country):
                return True
        return False

    async def _renew_lease(self, country: str) -> None:
        from tortoise.connection import connections

        until = int(time.time()) + self._lease_s()
        renewed = await sql.execute(
            connections.get("default"),
            "UPDATE hub_pull_state SET lease_until = ? WHERE country = ? AND lease_owner = ?",
            [until, country, self.owner],
        )
        if renewed != 1:
            raise PullError("lost the pull lease to another hub process", "lease_lost")

    async def finish(self, country: str, result: PullResult, started: datetime) -> None:
        """Record the outcome of a pull (or a probe) in the node's status."""
        await self._finish(country, result, started)

    async def _finish(self, country: str, result: PullResult, started: datetime) -> None:
        state = await PullState.filter(country=country).first()
        if state is None:
            return
        stamp = format_timestamp(self.clock())
        before = node_status(state, self.settings, self.clock())
        if result.ok:
            failures = 0
            await PullState.filter(country=country).update(
                last_success=stamp, last_attempt=format_timestamp(started), consecutive_failures=0,
                last_error=None, lease_owner=None, lease_until=0, retry_at=0,
            )
        else:
            failures = state.consecutive_failures + 1
            await PullState.filter(country=country).update(
                last_attempt=format_timestamp(started), consecutive_failures=failures,
                last_error=result.error, lease_owner=None, lease_until=0,
                retry_at=retry_at(self.settings, failures, time.time()),
            )
        state = await PullState.filter(country=country).first()
        self._log_outcome(country, result, failures, before, node_status(state, self.settings, self.clock()))
        if state is not None:
            result.cursor, result.head = state.cursor, state.head
        if self.metrics is not None:
            self.metrics.pulls.labels(country, "ok" if result.ok else "error").inc()
            if state is not None:
                self.metrics.sync_lag.labels(country).set(max(0, state.head - state.cursor))
            self.metrics.quarantine_size.labels(country).set(await reads.quarantine_count(country))

    def _log_outcome(self, country: str, result: PullResult, failures: int, before: str, after: str) -> None:
        """One INFO line for every pull (or probe) with its outcome; a WARNING when the node turns
        unreachable and an INFO line when it is reachable again."""
        fields: dict[str, Any] = {
            "node": country, "outcome": "ok" if result.ok else "failed", "records": result.records,
            "accepted": result.outcome.accepted, "quarantined": result.outcome.quarantined,
            "pages": result.pages, "duration_ms": round(result.elapsed_s * 1000), "error": result.error,
            "failures": failures,
        }
        if result.skipped:
            fields["skipped"] = result.skipped
        log.info("pull", extra=fields)
        if after == before:
            return
        if after == "unreachable":
            log.warning("node unreachable", extra={"node": country, "error": result.error, "failures": failures})
        elif before == "unreachable":
            log.info("node reachable again", extra={"node": country, "status": after})

    async def _pull_pages(self, url: str, country: str, directory_doc: dict[str, Any], result: PullResult,
                          check_head: bool = False) -> None:
        """Fetch, check and apply pages in feed order, checking ahead of the writer.

        Each page's fetch reads its trailer at once and starts the next page's fetch, so up to
        ``workers`` pages are checked (each in a verification worker) while the writer applies the
        oldest; at most ``workers + 1`` pages are held. Pages are applied strictly in order, each
        from the cursor the previous one left; a failure anywhere ends the pull after the pages
        before it were applied (later ones are dropped and pulled again next time).
        """
        directory = Directory.from_dict(directory_doc)
        directory_bytes = orjson.dumps(directory_doc)
        ahead: deque[asyncio.Task[tuple[CheckedPage, datetime]]] = deque()
        slots = asyncio.Semaphore(self.checker.workers + 1)  # pages fetched and not yet applied

        def start(at: int) -> None:
            ahead.append(asyncio.ensure_future(fetch_and_check(at)))

        async def fetch_and_check(at: int) -> tuple[CheckedPage, datetime]:
            await slots.acquire()
            answer = await self._fetch_body(url, country, at)
            try:
                body = answer.body
                following = next_page_cursor(body, at)
                if following is not None:
                    start(following)  # fetched and checked while this page is checked and written
                now = self.clock()
                return await self._check(country, body, at, directory, directory_bytes, now), now
            finally:
                answer.release()  # the raw page is no longer held once checked

        cursor = (await PullState.get(country=country)).cursor
        try:
            while True:
                if not ahead:  # first page, or a trailer that could not be read ahead
                    start(cursor)
                page, now = await ahead.popleft()
                trailer = page.trailer
                next_cursor = trailer["next"]
                head = trailer.get("head", next_cursor)
                more, advancing = trailer["more"], trailer["next"] > cursor
                if check_head and result.pages == 0:  # a node that cannot answer the anchor check
                    await divergence.check_page_head(country, cursor, head, now)
                await self._renew_lease(country)
                outcome = await apply_checked(country, page.items, cursor, next_cursor, head, now, self.search,
                                              (self.settings.quarantine_max_rows, self.settings.quarantine_max_bytes))
                slots.release()
                result.pages += 1
                result.outcome.add(outcome)
                self._count(country, outcome)
                if not more:
                    return
                if not advancing:
                    raise PullError(f"feed did not advance past {cursor} although it said more")
                cursor = next_cursor
        finally:
            for task in ahead:
                task.cancel()
            await asyncio.gather(*ahead, return_exceptions=True)

    def _count(self, country: str, outcome: PageOutcome) -> None:
        if self.metrics is None:
            return
        m = self.metrics.ingested
        for name in ("accepted", "deleted", "stale", "duplicate"):
            if getattr(outcome, name):
                m.labels(country, name, "").inc(getattr(outcome, name))
        for code, n in outcome.codes.items():
            m.labels(country, "quarantined", code).inc(n)

    async def _check(
        self, country: str, body: bytes, cursor: int, directory: Directory, directory_bytes: bytes, now: datetime
    ) -> CheckedPage:
        """Check a page: in a thread when small, in the worker process otherwise (same code).

        Raises:
            PullError: a broken frame, or the worker failed.
        """
        limit = self.settings.pull_batch
        if len(body) <= self.inline_max_bytes:
            return await asyncio.to_thread(check_page, country, body, cursor, limit, directory, now, self.registry,
                                           self.search.vocabularies)
        return await self.checker.check(country, body, cursor, limit, directory_bytes, now)

    async def _fetch_body(self, url: str, country: str, cursor: int) -> FedResponse:
        """One feed page, through the federation client: the whole request (connect, answer, body)
        within ``pull_timeout_s`` (a node trickling its answer a few bytes at a time holds nothing),
        at most twice ``feed_page_max_bytes`` compressed or decompressed, ``pull_batch`` records plus
        the trailer as lines (blank lines count), no line over ``feed_line_max_bytes``, no redirect followed.
        The caller releases the answer (its bytes count in the hub's in-flight budget until then).

        Raises:
            FedError: the call failed (its code says why), or the answer is not NDJSON.
        """
        key = self.key()
        token = issue_service_token(key.private_key, key.kid, "hub", f"node:{country}", self.clock(),
                                    ttl_s=self.settings.service_token_ttl_s)
        s = self.settings
        limits = limits_for_page(s.feed_page_max_bytes, s.pull_batch, s.feed_line_max_bytes, s.pull_timeout_s)
        resp = await self.client.request(
            "GET", f"{url.rstrip('/')}/federation/v1/changes", limits,
            params={"after": str(cursor), "limit": str(s.pull_batch)},
            headers={"Authorization": f"Bearer {token}", "Accept": "application/x-ndjson",
                     # the node refreshes its directory first when it holds an older one: a country that
                     # left a sharing group withdraws the group's records in this very pull (DESIGN §15)
                     DIRECTORY_SERIAL_HEADER: str(await directory_serial())},
        )
        page = resp.body
        start = page[:256].lstrip()
        if start and not start.startswith(b"{") and b"\n{" not in page:
            # not one line is a JSON object (a feed page has at least its trailer): some other
            # document (a proxy's HTML error page, …), which would otherwise be reported as a page
            # without its trailer. (A page with a few non-JSON lines among records is a feed page:
            # those lines are quarantined as malformed records.)
            resp.release()
            raise FedError("not_ndjson", resp.status)
        return resp

