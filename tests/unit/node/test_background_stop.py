"""The stop of background loops (node/services/background.py): bounded, and effective even when a library
swallows the cancellation — the cause of a CI run that hung for an hour (an application purge loop,
cancelled while asyncpg retried a connection to a dropped database, went back to a 10-minute sleep
and the app's stop awaited it)."""

from __future__ import annotations

import asyncio

import pytest

from node.services import background as wiring


async def _swallows_cancellation(stop: asyncio.Event, rounds: list[int]) -> None:
    """A loop shaped like the jobs: its work swallows one cancellation (as asyncpg's retry did)."""
    while True:
        rounds.append(1)
        try:
            await asyncio.sleep(0.2)  # "work"
        except asyncio.CancelledError:
            pass  # swallowed
        if await wiring.idle(stop, 600):
            return


async def test_a_loop_that_swallows_its_cancellation_still_ends_at_its_next_wait() -> None:
    stop, rounds = asyncio.Event(), []
    task = asyncio.get_running_loop().create_task(_swallows_cancellation(stop, rounds))
    await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await wiring.finish(stop, task)
    assert task.done() and not task.cancelled()  # it ended on its own, at the wait, not by the cancel
    assert loop.time() - started < 2
    assert rounds == [1]


async def test_a_loop_that_never_ends_is_given_up_after_the_bound(monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(wiring, "STOP_WAIT_S", 0.3)

    let_go = asyncio.Event()

    async def stubborn() -> None:
        while not let_go.is_set():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                continue

    task = asyncio.get_running_loop().create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await wiring.finish(asyncio.Event(), task)
    assert loop.time() - started < 1.5
    assert not task.done()
    assert any("did not stop in time" in r.getMessage() for r in caplog.records)
    let_go.set()  # the test's own clean-up
    task.cancel()
    await asyncio.wait([task], timeout=5)
    assert task.done()


async def test_idle_returns_at_once_when_stopping_and_after_the_time_otherwise() -> None:
    stop = asyncio.Event()
    assert await wiring.idle(stop, 0.01) is False
    stop.set()
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await wiring.idle(stop, 600) is True
    assert loop.time() - started < 0.5
