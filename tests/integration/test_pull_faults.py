"""Regression tests for what the fault suite (tests/e2e/test_faults.py) found in the hub's pull.

A real hub database (``ncc init --role hub``) and the real ``Puller`` against a node the test plays:
an aiohttp server for answers that are HTTP, a bare TCP server for one that is not. Each fault must
fail the pull with a reason an operator understands (``last_error`` at ``GET /api/v1/nodes``), write
nothing, and leave the next pull to succeed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from aiohttp import web

from federation.envelope import sign_record
from federation.keys import b64url_encode, generate_private_key, kid_for, public_key_raw
from federation.timefmt import format_timestamp
from federation.tokens import enrollment_proof, peek_enrollment_token
from node.context import Keyring, build_registry, utc_now
from node.services.hub import HubService
from node.services.search import SearchService
from node.services.sync import Puller, PullResult
from node.storage import db
from node.storage.hub_models import FederatedNode, HubRecord, PullState, Quarantine
from tests.integration.support import MINIMAL_ORG, database_outage

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class FakeNode:
    """The DE node as the hub sees it: a key, signed records, and a feed answer the test chooses."""

    key: Any
    records: list[dict[str, Any]]
    answer: Handler | None = None
    url: str = ""

    def page(self) -> bytes:
        lines = [b'{"seq":%d,"record":%s}\n' % (i + 1, orjson.dumps(r)) for i, r in enumerate(self.records)]
        trailer = {"next": len(self.records), "more": False, "head": len(self.records)}
        return b"".join(lines) + orjson.dumps(trailer) + b"\n"

    async def changes(self, request: web.Request) -> web.StreamResponse:
        if self.answer is not None:
            return await self.answer(request)
        body = self.page() if request.query["after"] == "0" else b'{"next":3,"more":false,"head":3}\n'
        return web.Response(body=body, content_type="application/x-ndjson")


@dataclass
class Rig:
    puller: Puller
    node: FakeNode

    async def pull(self) -> tuple[PullResult, float]:
        t0 = time.monotonic()
        result = await self.puller.pull("DE")
        return result, time.monotonic() - t0

    async def assert_nothing_written(self) -> PullState:
        state = await PullState.get(country="DE")
        assert state.cursor == 0
        assert await HubRecord.all().count() == 0 and await Quarantine.all().count() == 0
        return state


def signed(key: Any, kid: str) -> dict[str, Any]:
    return sign_record({
        "ncc": 1, "id": f"urn:ncc:DE:organisation:{uuid.uuid4()}", "type": "organisation",
        "schema": "organisation/1", "origin": "DE", "version": 1, "issued_at": format_timestamp(utc_now()),
        "visibility": "public", "deleted": False, "payload": MINIMAL_ORG,
    }, key, kid).to_dict()


@pytest.fixture
def hub_instance(make_instance: Any) -> Any:
    return make_instance("", role="hub", tokens=())


@pytest.fixture
async def rig(hub_instance: Any, aiohttp_server: Any) -> AsyncIterator[Rig]:
    settings = hub_instance.settings()
    ctx = await db.open_db(settings.db_url)
    key = generate_private_key()
    kid = kid_for("DE", public_key_raw(key))
    node = FakeNode(key, [signed(key, kid) for _ in range(3)])
    app = web.Application()
    app.router.add_get("/federation/v1/changes", node.changes)
    server = await aiohttp_server(app)
    node.url = str(server.make_url("")).rstrip("/")
    keyring = Keyring(settings)
    hub = HubService(settings, keyring.key, utc_now)
    token = await hub.invite("DE")
    jti = str(peek_enrollment_token(token)["jti"])
    await hub.enroll({"token": token, "country": "DE", "url": node.url, "kid": kid,
                      "public_key": b64url_encode(public_key_raw(key)), "proof": enrollment_proof(key, jti)})
    puller = Puller(settings, keyring.key, hub, build_registry(), SearchService(), utc_now)
    try:
        yield Rig(puller, node)
    finally:
        await puller.close()
        await db.close_db(ctx)


async def assert_recovers(rig: Rig) -> None:
    rig.node.answer = None
    result, _ = await rig.pull()
    assert result.ok, result.error
    assert (await PullState.get(country="DE")).cursor == 3 and await HubRecord.all().count() == 3


@pytest.mark.serial  # asserts a wall-clock bound
async def test_trickling_node_fails_the_pull_at_the_pull_timeout(rig: Rig) -> None:
    """Found by the fault suite: a node that sends its page a few bytes at a time, never silent
    for a whole read timeout, held the pull (and every later pull of it) for as long as it liked;
    ``pull_timeout_s`` now bounds the whole page request."""
    async def trickle(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(request)
        body = rig.node.page()
        try:
            for i in range(0, len(body), 32):
                await resp.write(body[i:i + 32])
                await asyncio.sleep(0.1)  # 10x faster than the read timeout; ~20 s for the page
        except (ConnectionResetError, RuntimeError):
            pass  # the hub gave up, as it should
        return resp

    rig.node.answer = trickle
    settings = rig.puller.settings
    rig.puller.settings = dataclasses.replace(settings, pull_timeout_s=1)
    result, elapsed = await rig.pull()
    assert not result.ok and result.error == "timeout", result.error
    assert elapsed < 5, f"the pull took {elapsed:.1f}s with pull_timeout_s = 1"
    state = await rig.assert_nothing_written()
    assert state.consecutive_failures == 1 and state.last_error == result.error
    rig.puller.settings = settings  # (1 s is tight for a loaded machine)
    await assert_recovers(rig)


async def test_a_feed_line_over_feed_line_max_bytes_fails_the_page(rig: Rig) -> None:
    """The longest feed line is the hub operator's setting (it was a constant): a record line passes at
    the default and fails the page ``line_too_long`` when the setting is under its length."""
    settings = rig.puller.settings
    assert settings.feed_line_max_bytes == 4 * 1024 * 1024
    longest = max(len(line) for line in rig.node.page().split(b"\n"))
    rig.puller.settings = dataclasses.replace(settings, feed_line_max_bytes=longest - 1)
    result, _ = await rig.pull()
    assert not result.ok and result.error == "line_too_long (HTTP 200)", result.error
    await rig.assert_nothing_written()
    rig.puller.settings = settings
    await assert_recovers(rig)


async def test_non_ndjson_answer_fails_the_pull_with_a_clear_error(rig: Rig) -> None:
    """Found by the fault suite: an HTML error page served with 200 was reported as a "truncated
    stream" (each line became a malformed record, then the trailer was missing)."""
    async def html(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"<html><body>502 Bad Gateway</body></html>\n", content_type="application/x-ndjson")

    rig.node.answer = html
    result, _ = await rig.pull()
    # DESIGN §10: the code and status only — nothing of the node's answer (it was quoted before)
    assert not result.ok and result.error == "not_ndjson (HTTP 200)", result.error
    await rig.assert_nothing_written()
    await assert_recovers(rig)


async def test_answer_that_is_not_http_fails_the_pull_with_a_clear_error(rig: Rig) -> None:
    """Found by the fault suite: random bytes instead of an HTTP answer were reported as
    ``ClientResponseError: 400`` — a status the node never sent."""
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(os.urandom(512))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        await FederatedNode.filter(country="DE").update(url=f"http://127.0.0.1:{port}")
        result, _ = await rig.pull()
    finally:
        server.close()
        await server.wait_closed()
    assert not result.ok and result.error == "bad_http", result.error
    await rig.assert_nothing_written()
    await FederatedNode.filter(country="DE").update(url=rig.node.url)
    await assert_recovers(rig)



@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_pull_during_a_database_outage_fails_cleanly(rig: Rig, hub_instance: Any) -> None:
    """Found by the fault suite (PostgreSQL restarted under the hub): a pull whose database went
    away raised the driver's error out of ``Puller.pull`` — an unhandled error in the scheduler and
    the notify task, a 500 for ``POST /api/v1/sync`` — instead of failing like a transport error."""
    async with database_outage(hub_instance.db):
        result, _ = await rig.pull()  # must not raise
        assert not result.ok and result.error == "database_unavailable", result.error
    for _ in range(50):  # the pool reconnects on its own
        result, _ = await rig.pull()
        if result.ok:
            break
        await asyncio.sleep(0.1)
    assert result.ok, result.error
    assert (await PullState.get(country="DE")).cursor == 3 and await HubRecord.all().count() == 3


async def test_pull_of_a_suspended_node_says_why(rig: Rig) -> None:
    """Regression (README walk-through): ``ncc sync --country DE`` of a suspended node failed with
    ``ncc sync: failed: DE: None``; the reason is now the pull's error."""
    assert (await rig.pull())[0].ok
    await rig.puller.hub.set_node("DE", status="suspended")
    result, _ = await rig.pull()
    assert not result.ok and result.skipped == "suspended"
    assert result.error is not None and result.error.startswith("suspended: ")
    assert (result.cursor, result.head) == (3, 3)  # what the hub holds, not 0


async def test_a_failed_pull_is_retried_when_its_back_off_ends(rig: Rig) -> None:
    """Regression (black-box pass): a pull that failed — here one a notification triggered while the
    node was down — was not tried again until the hub's next scheduled pull (``pull_interval_s``,
    5 minutes by default), although the node was back seconds later. The serving hub now pulls a
    failed node again when its back-off ends (5 s after a first failure)."""
    async def down(request: web.Request) -> web.StreamResponse:
        return web.Response(status=503, text="restarting")

    rig.puller.start_retries(0.2)
    rig.node.answer = down
    result, _ = await rig.pull()
    assert not result.ok
    await rig.assert_nothing_written()
    rig.node.answer = None  # the node is back; nobody pulls by hand
    deadline = time.monotonic() + 15
    while (await PullState.get(country="DE")).cursor != 3:
        assert time.monotonic() < deadline, "the failed pull was not retried"
        await asyncio.sleep(0.2)
    assert await HubRecord.all().count() == 3
    state = await PullState.get(country="DE")
    assert state.consecutive_failures == 0 and state.retry_at == 0


async def test_a_starting_hubs_first_round_skips_a_node_its_notification_pulled_already(rig: Rig) -> None:
    """Regression (flaky e2e ``test_hub_schedule``): a node's notification taken before the scheduler's
    first round pulled the node, then the first round pulled it again. ``trigger_first`` is that
    round's trigger; ``trigger`` (a node added or reactivated later) always pulls."""
    feed_reads: list[str] = []

    async def counted(request: web.Request) -> web.StreamResponse:
        feed_reads.append(request.query["after"])
        rig.node.answer = None
        try:
            return await rig.node.changes(request)
        finally:
            rig.node.answer = counted

    async def settled() -> None:
        while rig.puller._tasks:
            await asyncio.gather(*list(rig.puller._tasks))

    rig.node.answer = counted
    rig.puller.notified("DE")  # the node's "I am up", before the first round
    await settled()
    assert feed_reads == ["0"] and await HubRecord.all().count() == 3
    rig.puller.trigger_first("DE")  # the first round: DE was pulled already
    await settled()
    assert feed_reads == ["0"]
    rig.puller.trigger("DE")  # any later trigger pulls
    await settled()
    assert feed_reads == ["0", "3"]
    fresh = Puller(rig.puller.settings, rig.puller.key, rig.puller.hub, rig.puller.registry, rig.puller.search,
                   utc_now)  # another process: nothing pulled there yet
    try:
        fresh.trigger_first("DE")
        while fresh._tasks:
            await asyncio.gather(*list(fresh._tasks))
    finally:
        await fresh.close()
    assert feed_reads == ["0", "3", "3"]


async def test_a_failure_recorded_by_ncc_sync_is_retried_by_the_serving_hub(rig: Rig) -> None:
    """Issue 19: the back-off lived in the memory of the process that saw the failure, so a failure
    ``ncc sync`` recorded was unknown to the serving hub, which then waited for its next scheduled
    pull (minutes). The back-off is now the database's (``retry_at``): another ``Puller`` — the
    serving hub's — retries the node when it ends, without having seen the failure itself."""
    async def down(request: web.Request) -> web.StreamResponse:
        return web.Response(status=503, text="restarting")

    rig.node.answer = down
    one_shot = rig.puller  # plays `ncc sync`: pulls once, records the failure, exits
    result, _ = await rig.pull()
    assert not result.ok and result.error == "http_status (HTTP 503)"
    state = await PullState.get(country="DE")
    assert state.consecutive_failures == 1 and state.last_error == "http_status (HTTP 503)"
    assert 0 < state.retry_at - time.time() <= rig.puller.settings.backoff_min_s * 1.2 + 1
    assert not await one_shot.backoff_due("DE")

    serving = Puller(one_shot.settings, one_shot.key, one_shot.hub, one_shot.registry, one_shot.search, utc_now)
    try:
        assert not await serving.backoff_due("DE")  # the scheduled pull skips it: the shared back-off
        assert await serving.retry_due() == []  # not yet due
        rig.node.answer = None  # the node is back; nobody pulls by hand
        serving.start_retries(0.2)
        deadline = time.monotonic() + 15
        while (await PullState.get(country="DE")).cursor != 3:
            assert time.monotonic() < deadline, "the serving hub did not retry the failure ncc sync recorded"
            await asyncio.sleep(0.2)
        state = await PullState.get(country="DE")
        assert (state.consecutive_failures, state.last_error, state.retry_at) == (0, None, 0)
        assert await serving.backoff_due("DE")
    finally:
        await serving.close()


async def test_the_back_off_doubles_up_to_its_maximum(rig: Rig) -> None:
    from node.services.pullstatus import backoff_s

    settings = dataclasses.replace(rig.puller.settings, backoff_min_s=5, backoff_max_s=60)
    assert backoff_s(settings, 0) == 0
    for failures, nominal in ((1, 5), (2, 10), (3, 20), (4, 40), (5, 60), (50, 60), (10_000, 60)):
        assert nominal * 0.8 <= backoff_s(settings, failures) <= nominal * 1.2


async def test_every_pull_is_logged_with_its_outcome(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 19: a pull that succeeded left no line in the hub's log, and a failed one no duration;
    every pull now logs one INFO line (node, records, duration, error code), and the node's turning
    unreachable and reachable again are logged once each."""
    async def down(request: web.Request) -> web.StreamResponse:
        return web.Response(status=502)

    caplog.set_level(logging.INFO, logger="ncc.sync")
    assert (await rig.pull())[0].ok
    rig.node.answer = down
    for _ in range(rig.puller.settings.unreachable_after):
        assert not (await rig.pull())[0].ok
    await assert_recovers(rig)
    pulls = [r for r in caplog.records if r.name == "ncc.sync" and r.getMessage() == "pull"]
    assert [r.levelno for r in pulls] == [logging.INFO] * (rig.puller.settings.unreachable_after + 2)
    first, failed = pulls[0], pulls[1]
    assert (first.node, first.outcome, first.records, first.accepted, first.error) == ("DE", "ok", 3, 3, None)  # type: ignore[attr-defined]
    assert isinstance(first.duration_ms, int) and first.duration_ms >= 0  # type: ignore[attr-defined]
    assert (failed.outcome, failed.error, failed.failures) == ("failed", "http_status (HTTP 502)", 1)  # type: ignore[attr-defined]
    changes = [(r.levelno, r.getMessage()) for r in caplog.records if r.getMessage().startswith("node ")]
    assert changes == [(logging.WARNING, "node unreachable"), (logging.INFO, "node reachable again")]


async def test_regression_a_pull_between_enrollment_and_its_directory_quarantines_nothing(rig: Rig) -> None:
    """Found in a loaded full run (test_enroll_existing_registry, PostgreSQL): enrollment commits the
    node and its key, then signs the directory that lists them; a pull in between verified the node's
    records against the older directory and quarantined the whole feed. The pull now takes a directory
    that lists the node's keys as the database holds them (publishing one first when it must), and
    otherwise the newest one as it is (no new serial per pull)."""
    from node.storage.hub_models import DirectoryDoc

    newest = await DirectoryDoc.all().order_by("-serial").first()
    assert newest is not None and "DE" in newest.document
    await newest.delete()  # the state between the enrollment's commit and its directory: DE not listed
    before = await DirectoryDoc.all().order_by("-serial").first()
    assert before is not None and '"DE"' not in before.document

    result, _ = await rig.pull()
    assert result.ok, result.error
    assert await Quarantine.all().count() == 0 and await HubRecord.all().count() == 3
    serial = (await DirectoryDoc.all().order_by("-serial").first()).serial  # type: ignore[union-attr]
    assert serial > before.serial
    assert (await rig.pull())[0].ok  # the next pull: the directory lists DE's keys, none is published
    assert (await DirectoryDoc.all().order_by("-serial").first()).serial == serial  # type: ignore[union-attr]
