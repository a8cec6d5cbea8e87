"""The hub's pull pipeline (node.services.sync + node.services.ingest) against a feed the test serves.

A real hub database (``ncc init --role hub`` on the ``db_url`` backend) and the real ``Puller``; the
node is a small aiohttp server whose feed pages the test writes, signed with a key the test holds
and enrolled through ``HubService.enroll``. ``inline_max_bytes = 0`` sends every page to the worker
process, so these tests cover the process pool; the pipeline (page k+1 fetched and checked while page
k is written) is in play whenever a feed has more than one page.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from federation.envelope import sign_record
from federation.keys import b64url_encode, generate_private_key, kid_for, public_key_raw
from federation.timefmt import format_timestamp
from federation.tokens import enrollment_proof, peek_enrollment_token
from node.context import Keyring, build_registry, utc_now
from node.services import ingest
from node.services.hub import HubService
from node.services.search import SearchService
from node.services.sync import Puller
from node.storage import db
from node.storage.hub_models import HubRecord, PullState, Quarantine
from tests.integration.support import MINIMAL_ORG

PAGE = 40


@dataclass
class Feed:
    """A node's change feed served from lines the test appends."""

    key: Any = field(default_factory=generate_private_key)
    lines: list[tuple[int, bytes]] = field(default_factory=list)
    afters: list[int] = field(default_factory=list)
    on_request: Callable[[int], Any] | None = None
    truncate_after: int | None = None
    url: str = ""

    @property
    def kid(self) -> str:
        return kid_for("DE", public_key_raw(self.key))

    @property
    def head(self) -> int:
        return self.lines[-1][0] if self.lines else 0

    def record(self, rid: str | None = None, version: int = 1, deleted: bool = False,
               visibility: str = "public", name: str = "Cyber Lab GmbH") -> dict[str, Any]:
        payload = {"reason": "withdrawn"} if deleted else {**MINIMAL_ORG, "legal_name": name}
        return sign_record({
            "ncc": 1, "id": rid or f"urn:ncc:DE:organisation:{uuid.uuid4()}", "type": "organisation",
            "schema": "organisation/1", "origin": "DE", "version": version,
            "issued_at": format_timestamp(utc_now()), "visibility": visibility, "deleted": deleted,
            "payload": payload,
        }, self.key, self.kid).to_dict()

    def serve(self, *records: dict[str, Any] | bytes) -> None:
        for rec in records:
            text = rec if isinstance(rec, bytes) else orjson.dumps(rec)
            seq = self.head + 1
            self.lines.append((seq, b'{"seq":%d,"record":%s}' % (seq, text)))

    async def changes(self, request: web.Request) -> web.Response:
        after, limit = int(request.query["after"]), int(request.query["limit"])
        self.afters.append(after)
        if self.on_request is not None:
            await self.on_request(after)
        rows = [(s, line) for s, line in self.lines if s > after]
        page, more = rows[:limit], len(rows) > limit
        trailer = {"next": page[-1][0] if page else after, "more": more, "head": self.head}
        body = b"".join(line + b"\n" for _, line in page) + orjson.dumps(trailer) + b"\n"
        if self.truncate_after is not None and after >= self.truncate_after:
            body = body[: body.rfind(b"\n", 0, len(body) - 1) + 1]
        return web.Response(body=body, content_type="application/x-ndjson")


@dataclass
class Rig:
    puller: Puller
    feed: Feed

    async def cursor(self) -> int:
        return int((await PullState.get(country="DE")).cursor)

    async def held(self) -> dict[str, int]:
        return {r.id: r.version for r in await HubRecord.all()}

    async def indexed(self) -> set[str]:
        from tortoise.connection import connections

        _, rows = await connections.get("default").execute_query("SELECT id FROM search_docs")
        return {r[0] if isinstance(r, tuple) else r["id"] for r in rows}


@pytest.fixture
def hub_instance(make_instance: Any) -> Any:
    """``ncc init --role hub`` (sync: the CLI runs its own event loop)."""
    return make_instance("", role="hub", tokens=())


@pytest.fixture(params=[1, 2], ids=["1-worker", "2-workers"])
async def rig(hub_instance: Any, aiohttp_server: Any, request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    """A hub puller and a fake node; with 2 workers two pages are checked at a time ahead of the writer."""
    settings = hub_instance.settings(pull_batch=str(PAGE), verify_workers=str(request.param))
    ctx = await db.open_db(settings.db_url)
    feed = Feed()
    app = web.Application()
    app.router.add_get("/federation/v1/changes", feed.changes)
    server = await aiohttp_server(app)
    feed.url = str(server.make_url("")).rstrip("/")
    keyring = Keyring(settings)
    hub = HubService(settings, keyring.key, utc_now)
    token = await hub.invite("DE")
    jti = str(peek_enrollment_token(token)["jti"])
    await hub.enroll({"token": token, "country": "DE", "url": feed.url, "kid": feed.kid,
                      "public_key": b64url_encode(public_key_raw(feed.key)), "proof": enrollment_proof(feed.key, jti)})
    puller = Puller(settings, keyring.key, hub, build_registry(), SearchService(), utc_now)
    puller.inline_max_bytes = 0  # every page through the worker process
    try:
        yield Rig(puller, feed)
    finally:
        await puller.close()
        await db.close_db(ctx)


# Replacement worker targets (module level: the spawned worker imports them by name).


def _crash_after_first_page(country: str, body: bytes, cursor: int, *rest: Any) -> Any:
    if cursor >= PAGE:
        os._exit(3)
    return ingest._worker_check(country, body, cursor, *rest)


def _crash_once_started(country: str, body: bytes, cursor: int, *rest: Any) -> Any:
    with open(os.environ["NCC_TEST_CHECK_STARTED"], "w"):  # the test cancels the check now
        pass
    time.sleep(1)
    os._exit(3)


def _raise_after_first_page(country: str, body: bytes, cursor: int, *rest: Any) -> Any:
    if cursor >= PAGE:
        raise RuntimeError("boom in the worker")
    return ingest._worker_check(country, body, cursor, *rest)


async def test_regression_a_check_cancelled_in_the_worker_does_not_fail_the_next_pull(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A pull that fails at page k cancels the checks of pages after k; one may already be in a worker
    (of a pool started after page k's failure replaced the broken one). Regression: the pool kept that
    work, and when it killed the worker the next pull failed too (CI: the crash test, 1 worker)."""
    started = tmp_path / "started"
    monkeypatch.setenv("NCC_TEST_CHECK_STARTED", str(started))  # the spawned worker inherits it
    records = [rig.feed.record() for _ in range(PAGE)]
    rig.feed.serve(*records)
    monkeypatch.setattr(ingest.CheckPool, "target", staticmethod(_crash_once_started))
    check = asyncio.ensure_future(rig.puller.checker.check("DE", b"", 0, PAGE, b"{}", utc_now()))
    for _ in range(600):
        if started.exists() or check.done():
            break
        await asyncio.sleep(0.05)
    assert started.exists() and not check.done(), "the worker never started the check"
    check.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await check
    monkeypatch.setattr(ingest.CheckPool, "target", staticmethod(ingest._worker_check))
    result = await rig.puller.pull("DE")
    assert result.ok, result.error
    assert await rig.cursor() == rig.feed.head and set(await rig.held()) == {r["id"] for r in records}


async def test_pages_are_applied_in_order_with_the_cursor_of_each(rig: Rig) -> None:
    feed = rig.feed
    first = [feed.record() for _ in range(PAGE * 2)]
    feed.serve(*first)
    # later pages change records of earlier ones: only applying in feed order gives the right result
    feed.serve(feed.record(first[0]["id"], version=2, name="Second Version GmbH"))
    feed.serve(feed.record(first[1]["id"], version=2, deleted=True))
    feed.serve(b'{"not": "an envelope"')  # malformed line: quarantined, the feed goes on
    # duplicate of what page 1 stored: the same envelope again (signed anew, its issued_at could fall in
    # the next second — a different version 1, quarantined as a conflict: a flake on a slow machine)
    feed.serve(first[2])
    rest = [feed.record() for _ in range(PAGE + 5)]
    feed.serve(*rest)
    result = await rig.puller.pull("DE")
    assert result.ok, result.error
    assert feed.afters == [0, PAGE, 2 * PAGE, 3 * PAGE, 4 * PAGE][: result.pages]
    assert result.pages == 4 and await rig.cursor() == feed.head
    o = result.outcome
    assert (o.accepted, o.deleted, o.duplicate, o.quarantined) == (len(first) + 1 + len(rest), 1, 1, 1)
    held = await rig.held()
    assert held[first[0]["id"]] == 2 and held[first[1]["id"]] == 2 and len(held) == len(first) + len(rest)
    indexed = await rig.indexed()
    assert first[1]["id"] not in indexed and first[0]["id"] in indexed and len(indexed) == len(held) - 1
    stored = orjson.loads((await HubRecord.get(id=first[0]["id"])).envelope)
    assert stored["payload"]["legal_name"] == "Second Version GmbH" and stored["version"] == 2
    assert [q.code for q in await Quarantine.all()] == ["malformed_json"]
    again = await rig.puller.pull("DE")  # nothing new: one page, nothing applied twice
    assert again.ok and again.outcome.accepted == 0 and await rig.cursor() == feed.head


@pytest.mark.parametrize("target", [_crash_after_first_page, _raise_after_first_page], ids=["crash", "exception"])
async def test_a_failing_worker_fails_the_pull_without_a_partial_page(
    rig: Rig, target: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = rig.feed
    records = [feed.record() for _ in range(PAGE * 3)]
    feed.serve(*records)
    monkeypatch.setattr(ingest.CheckPool, "target", staticmethod(target))
    result = await rig.puller.pull("DE")
    assert not result.ok and result.error == "worker_failed", result.error
    # nothing of page 2 (or 3) was written; page 1 committed with its cursor — unless two workers
    # checked pages 1 and 2 at once and the dying worker broke the pool under page 1's check too
    # (then nothing was written at all): never a partial page either way
    cursor = await rig.cursor()
    if rig.puller.checker.workers == 1 or target is _raise_after_first_page:
        assert cursor == PAGE
    else:
        assert cursor in (0, PAGE)
    assert set(await rig.held()) == {r["id"] for r in records[:cursor]}
    assert len(await rig.indexed()) == cursor
    state = await PullState.get(country="DE")
    assert state.consecutive_failures == 1 and state.lease_owner is None
    # the next pull gets a fresh worker and finishes the feed
    monkeypatch.setattr(ingest.CheckPool, "target", staticmethod(ingest._worker_check))
    result = await rig.puller.pull("DE")
    assert result.ok, result.error
    assert await rig.cursor() == feed.head and len(await rig.held()) == len(records)


async def test_cursor_moved_by_another_process_stops_the_pipeline_cleanly(rig: Rig) -> None:
    feed = rig.feed
    records = [feed.record() for _ in range(PAGE * 3)]
    feed.serve(*records)

    async def move(after: int) -> None:
        if after == PAGE:  # while page 1 is being written, "another hub" moves the cursor on
            await PullState.filter(country="DE").update(cursor=feed.head)

    feed.on_request = move
    result = await rig.puller.pull("DE")
    assert not result.ok and result.error == "cursor_moved", result.error
    held = await rig.held()
    # page 1 may or may not have committed before the move; page 2 never was written
    assert set(held) in ({r["id"] for r in records[:PAGE]}, set())
    assert await rig.cursor() == feed.head


async def test_truncated_page_fails_before_anything_is_written(rig: Rig) -> None:
    feed = rig.feed
    feed.serve(*[feed.record() for _ in range(PAGE * 2)])
    feed.truncate_after = PAGE  # the second page loses its trailer
    result = await rig.puller.pull("DE")
    assert not result.ok and result.error == "bad_frame", result.error
    assert await rig.cursor() == PAGE and len(await rig.held()) == PAGE
