"""Builds the role's services onto the context and registers their lifecycles (cleanup_ctx)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from node.context import Context
from node.metrics import Metrics
from node.services.background import STOP_WAIT_S, finish, idle
from node.services.publish import Publisher
from node.services.search import SearchService
from node.storage.availability import database_unavailable

log = logging.getLogger("ncc.jobs")

__all__ = ["STOP_WAIT_S", "finish", "idle", "wire_services"]


def wire_services(app: web.Application, context: Context, metrics: Metrics) -> None:
    """Attach the services of ``context.settings.role``."""
    settings = context.settings
    context.search = SearchService(accelerated=settings.search_accelerator)
    # before the role's jobs: cleanup runs in reverse, so the final purge comes after pulls stopped
    app.cleanup_ctx.append(_bound(_erasure_job, context))
    app.cleanup_ctx.append(_bound(_purge_expired, context))
    if settings.role == "node":
        from node.services.nodefed import NodeFederation

        federation = NodeFederation(settings, context.keyring.key, context.clock, metrics)
        context.federation = federation
        context.publisher = Publisher(
            country=settings.country,
            key=context.keyring.key,
            registry=context.registry,
            clock=context.clock,
            index=context.search,
            on_published=federation.wake.set,
        )
        if settings.atlas_url:
            from node.services.atlas import AtlasPusher

            context.atlas = AtlasPusher(settings, context.clock)
        from node.services.applications import Gatekeeper

        context.gatekeeper = Gatekeeper(settings, context.keyring, context.registry, context.publisher,
                                        context.clock)
        app.cleanup_ctx.append(_bound(_node_jobs, context))
        app.cleanup_ctx.append(_bound(_gatekeeper_jobs, context))
    else:
        from node.services.hub import HubService
        from node.services.live import LiveQuery
        from node.services.sync import Puller

        context.hub = HubService(settings, context.keyring.key, context.clock)
        context.sync = Puller(settings, context.keyring.key, context.hub, context.registry, context.search,
                              context.clock, metrics)
        from node.services.fedclient import FedClient

        # one in-flight byte budget for every read of a node: pulls and live queries
        context.live = LiveQuery(settings, context.keyring.key, context.search, context.clock,
                                 client=FedClient(settings.allow_private_node_urls, context.sync.client.budget))
        from node.services.translog import TransparencyLog

        context.log = TransparencyLog(context.keyring.key, context.clock)
        app.cleanup_ctx.append(_bound(_hub_jobs, context))


Job = Callable[[Context], AsyncIterator[None]]


def _bound(job: Job, context: Context) -> Callable[[web.Application], AsyncIterator[None]]:
    """``job`` as a cleanup context of the app: it is handed the services' context itself (this module
    knows no app keys of the transport)."""

    def cleanup(app: web.Application) -> AsyncIterator[None]:
        return job(context)

    cleanup.__name__ = cleanup.__qualname__ = job.__name__
    cleanup.job = job  # type: ignore[attr-defined]  # which job (a test swaps the hub's scheduler out)
    return cleanup


async def _node_jobs(context: Context) -> AsyncIterator[None]:
    """The notifier loop (notify the hub after writes, retry while it is down), the directory refresh,
    the Atlas push and the audit of the hub's log."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    # the notifier ends between notifications when ``stop`` is set (never mid-query): woken, it returns
    notifier = loop.create_task(context.federation.run_notifier(stop), name="notifier")
    refresher = loop.create_task(_refresh_directory_forever(context, stop), name="directory-refresh")
    atlas = (loop.create_task(context.atlas.run_forever(stop), name="atlas-push")
             if context.atlas is not None else None)
    auditor = loop.create_task(_audit_forever(context, stop), name="audit")
    context.federation.wake.set()
    yield
    stop.set()
    context.federation.wake.set()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await asyncio.wait_for(asyncio.shield(notifier), timeout=STOP_WAIT_S)  # its current notification
    await finish(stop, notifier, refresher, atlas, auditor)
    await context.federation.close()


DIRECTORY_REFRESH_S = 3600
#: The first scheduled audit runs this long after start (the hub may be starting too).
AUDIT_FIRST_S = 60


async def _audit_forever(context: Context, stop: asyncio.Event) -> None:
    """Audit the hub's transparency log every ``audit_interval_s`` while enrolled — never failing."""
    from node.services.audit import AuditError, Auditor

    auditor = Auditor(context.settings, context.federation, context.keyring.held_kids,
                      context.clock)
    delay: float = AUDIT_FIRST_S
    while not await idle(stop, delay):
        delay = context.settings.audit_interval_s
        try:
            report = await auditor.run()
        except AuditError as exc:
            log.info("audit skipped", extra={"reason": str(exc)})
            continue
        except Exception as exc:
            if not database_unavailable(exc):
                log.exception("audit error")
            continue
        if report.ok:
            log.info("audit ok", extra={"summary": report.summary()})
        else:
            log.warning("audit found discrepancies", extra={"summary": report.summary(),
                                                              "first": report.discrepancies[0].line()})
#: Expired service-token jtis and portal sessions go this often (both roles): the replay table then
#: holds at most the accepted calls of the last few minutes (service tokens live ≤ 5 min).
PURGE_EVERY_S = 60


async def _purge_expired(context: Context) -> AsyncIterator[None]:
    """Purge the replay table and the portal's sessions of what has expired, every minute."""
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(_purge_tokens_forever(context, stop), name="token-purge")
    yield
    await finish(stop, task)


async def _purge_tokens_forever(context: Context, stop: asyncio.Event) -> None:
    from node.storage import sessions
    from node.storage.replay import purge_seen_jtis

    while not await idle(stop, PURGE_EVERY_S):
        try:
            now = context.clock()
            await purge_seen_jtis(now)
            await sessions.purge(int(now.timestamp()))
        except Exception as exc:
            if not database_unavailable(exc):
                log.exception("purge of expired tokens and sessions failed")
                continue
            log.warning("purge postponed: database unavailable",
                        extra={"error": f"{exc.__class__.__name__}: {exc}"})


#: How often unconfirmed applications past their lifetime are purged (DESIGN §12: after 48 h).
APPLICATION_PURGE_S = 600


async def _gatekeeper_jobs(context: Context) -> AsyncIterator[None]:
    """The mail outbox loop and the purge of unconfirmed applications (node role)."""
    from node.services.mail import Outbox

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    outbox = loop.create_task(Outbox(context.settings, context.clock).run(stop), name="mail-outbox")

    async def purge_forever() -> None:
        while not stop.is_set():
            try:
                purged = await context.gatekeeper.purge_unconfirmed()
                if purged:
                    log.info("unconfirmed applications purged", extra={"count": purged})
            except Exception as exc:
                if not database_unavailable(exc):
                    log.exception("application purge error")
            await idle(stop, APPLICATION_PURGE_S)

    purger = loop.create_task(purge_forever(), name="application-purge")
    yield
    stop.set()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await asyncio.wait_for(asyncio.shield(outbox), timeout=STOP_WAIT_S)  # the message it is sending
    await finish(stop, outbox, purger)


async def _erasure_job(context: Context) -> AsyncIterator[None]:
    """The erasure purge (node/services/erasure.py) every ``erasure_purge_s``, and once at a clean stop."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    task = loop.create_task(_purge_forever(context, stop), name="erasure-purge")
    # aiohttp may run the teardown in another contextvars context, where tortoise's is not current:
    # run the last purge in a copy of this one (it holds the database connections)
    started_in = contextvars.copy_context()
    yield
    await finish(stop, task)
    last = loop.create_task(_purge_once(context), context=started_in.copy(), name="erasure-purge-at-stop")
    done, _ = await asyncio.wait([last], timeout=ERASURE_STOP_WAIT_S)
    if not done:
        last.cancel()
        log.warning("erasure purge at stop did not finish in time; the next scheduled purge does it")


#: The last erasure purge at a clean stop may take this long (a VACUUM on a large hub) before the stop
#: goes on without it; what it did not remove stays pending in ``erasures`` for the next purge (DESIGN §11).
ERASURE_STOP_WAIT_S = 120.0


async def _purge_once(context: Context) -> None:
    from node.services.erasure import purge

    try:
        await purge(context.search, context.clock(), vacuum_full=context.settings.erasure_vacuum_full)
    except Exception as exc:
        if not database_unavailable(exc):
            log.exception("erasure purge error")
        else:
            log.warning("erasure purge postponed: database unavailable", extra={"error": str(exc)})


async def _purge_forever(context: Context, stop: asyncio.Event) -> None:
    while not await idle(stop, context.settings.erasure_purge_s):
        await _purge_once(context)


async def _refresh_directory_forever(context: Context, stop: asyncio.Event) -> None:
    """Keep the hub directory current (new hub keys, revocations) — hourly, never failing."""
    from node.services.nodefed import FederationError

    while not await idle(stop, DIRECTORY_REFRESH_S):
        try:
            await context.federation.refresh_directory()
        except FederationError as exc:
            log.warning("directory refresh failed", extra={"error": str(exc)})
        except Exception as exc:
            if not database_unavailable(exc):
                log.exception("directory refresh error")
                continue
            log.warning("directory refresh postponed: database unavailable", extra={"error": str(exc)})


def postponed_while_database_unavailable(name: str, job: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """``job`` for the scheduler: a database that cannot be reached (a restart) skips this run with a
    warning — the next run retries — instead of an error and a traceback every time it fires."""

    async def run() -> None:
        try:
            await job()
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            log.warning("job postponed: database unavailable", extra={"job": name,
                                                                       "error": f"{exc.__class__.__name__}: {exc}"})

    return run


async def _hub_jobs(context: Context) -> AsyncIterator[None]:
    """APScheduler: a pull (or probe) job per node (interval + jitter, one at a time), directory refresh,
    purges."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from node.storage.hub_models import FederatedNode

    settings = context.settings
    scheduler = AsyncIOScheduler(timezone="UTC", job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": max(60, settings.pull_interval_s)})

    async def pull(country: str) -> None:
        async def due_pull() -> None:
            if await context.sync.backoff_due(country):  # reads the database: a restart postpones
                await context.sync.pull(country)

        await postponed_while_database_unavailable(f"pull:{country}", due_pull)()

    first_round = True

    async def reconcile() -> None:
        """Add a job for each active node, drop jobs of nodes gone or suspended. A query-only node's
        job probes it (its status must tell the truth); a replicating node's pulls it."""
        nonlocal first_round
        wanted = {n.country for n in await FederatedNode.filter(status="active")}
        for job in scheduler.get_jobs():
            if job.id.startswith("pull:") and job.id[5:] not in wanted:
                job.remove()
        for country in wanted:
            if scheduler.get_job(f"pull:{country}") is None:
                # pulled now by the trigger, then every interval (the job's first run is one interval away);
                # at start, not again if its notification was first (a node added or reactivated later is
                # pulled at once whatever this process pulled before)
                scheduler.add_job(pull, "interval", args=[country], id=f"pull:{country}",
                                  seconds=settings.pull_interval_s, jitter=settings.pull_jitter_s or None)
                if first_round:
                    context.sync.trigger_first(country)
                else:
                    context.sync.trigger(country)
        first_round = False

    async def housekeeping() -> None:
        await context.hub.current_directory()  # re-publishes when close to expiry
        await context.search.prune()

    scheduler.add_job(postponed_while_database_unavailable("reconcile", reconcile), "interval", seconds=15,
                      id="reconcile", next_run_time=_soon(0))
    scheduler.add_job(context.search.warm, id="warm-search", next_run_time=_soon(0))
    scheduler.add_job(postponed_while_database_unavailable("housekeeping", housekeeping), "interval",
                      seconds=3600, id="housekeeping", next_run_time=_soon(5))
    scheduler.start()
    context.sync.start_retries()  # a failing node is pulled again when its back-off ends
    yield
    scheduler.shutdown(wait=False)
    await asyncio.sleep(0)
    await context.sync.close()
    await context.live.close()


def _soon(jitter: int) -> object:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) + timedelta(seconds=random.uniform(0, max(0, jitter)) + 0.5)
