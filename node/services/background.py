"""How the background loops of a serving instance wait and stop (one home for every loop: the app's
jobs in :mod:`node.services.wiring` and the services' own loops, e.g. the node's notifier)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger("ncc.jobs")

#: How long a stopping app waits for each background loop to end (DESIGN §9: a clean stop is prompt).
STOP_WAIT_S = 5.0


async def idle(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` or until ``stop`` is set, whichever comes first; True when stopping. The loops
    below sleep through this rather than ``asyncio.sleep``: a loop whose cancellation a library swallowed
    (asyncpg retrying a connection to a database that is gone did) still ends at its next wait."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()


async def finish(stop: asyncio.Event, *tasks: asyncio.Task[None] | None) -> None:
    """Stop background loops: set ``stop``, cancel them, and wait at most :data:`STOP_WAIT_S` — a loop
    that will not end is left to the event loop's close with a warning instead of holding the shutdown
    (and a test's teardown) forever."""
    stop.set()
    running = [t for t in tasks if t is not None]
    for task in running:
        task.cancel()
    if not running:
        return
    done, pending = await asyncio.wait(running, timeout=STOP_WAIT_S)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.warning("background job ended with an error", extra={
                "job": task.get_name(), "error": f"{task.exception().__class__.__name__}: {task.exception()}"})
    for task in pending:
        log.warning("background job did not stop in time", extra={"job": task.get_name()})
