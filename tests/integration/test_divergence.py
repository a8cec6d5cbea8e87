"""Regression is never silent, status tells the truth (DESIGN §11), in-process on both databases.

* The hub's divergence check: a real hub database and ``Puller`` against a node the test plays, which
  answers ``GET /federation/v1/changes/head``: the anchor the hub sends, ``diverged`` with nothing
  ingested when the node no longer holds it, the mark cleared when it does again, a new epoch.
* The node's side of the check (``anchor_held``): its current records, versions updated since, the
  ``withdrawn`` tombstone of a record that turned national, and what it does not hold.
* ``ncc recover`` against a lying hub: a tampered record, a record signed by a key that is not the
  node's, a national record are refused and nothing of them is stored; genuine ones are taken back
  (an erased tombstone purges the older payloads again); a hub answer over the byte bound or a page
  that does not move forward stops the recovery.
* Query-only nodes: probed on the pull schedule (``unreachable`` when they do not answer), live answers
  count, a missed live deadline shorter than ``live_timeout_ms`` does not.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from federation.divergence import Action, Anchor
from federation.envelope import Envelope, sign_record
from federation.keys import b64url_encode, generate_private_key, kid_for, public_key_raw
from federation.timefmt import format_timestamp
from federation.tokens import enrollment_proof, peek_enrollment_token
from node.context import Keyring, build_registry, utc_now
from node.services import divergence
from node.services.hub import HubService
from node.services.publish import Publisher
from node.services.recover import HubLink, RecoverError, Recovery, anchor_held, own_keys, recover
from node.services.search import SearchService
from node.services.sync import Puller, node_status
from node.storage import db
from node.storage.hub_models import FederatedNode, HubRecord, PullState
from node.storage.models import FeedEntry, Record, RecordVersion
from tests.integration.support import MINIMAL_ORG


def signed(key: Any, kid: str, version: int = 1, rid: str | None = None, **fields: Any) -> dict[str, Any]:
    return sign_record({
        "ncc": 1, "id": rid or f"urn:ncc:DE:organisation:{uuid.uuid4()}", "type": "organisation",
        "schema": "organisation/1", "origin": "DE", "version": version,
        "issued_at": format_timestamp(utc_now()), "visibility": "public", "deleted": False,
        "payload": MINIMAL_ORG, **fields,
    }, key, kid).to_dict()


# -- the hub's check ---------------------------------------------------------------------------------


@dataclass
class PlayedNode:
    """The DE node as the hub sees it: a feed, and its answer about the hub's anchor."""

    records: list[dict[str, Any]]
    holds: bool = True
    up: bool = True
    asked: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    async def changes(self, request: web.Request) -> web.StreamResponse:
        after = int(request.query["after"])
        rows = [(i + 1, r) for i, r in enumerate(self.records) if i + 1 > after]
        body = b"".join(b'{"seq":%d,"record":%s}\n' % (s, orjson.dumps(r)) for s, r in rows)
        body += orjson.dumps({"next": rows[-1][0] if rows else after, "more": False, "head": len(self.records)})
        return web.Response(body=body + b"\n", content_type="application/x-ndjson")

    async def head(self, request: web.Request) -> web.StreamResponse:
        if not self.up:
            return web.Response(status=503)
        self.asked.append(dict(request.query))
        holds = self.holds if "seq" in request.query else None
        return web.json_response({"head": len(self.records), "holds": holds})


@dataclass
class Rig:
    puller: Puller
    node: PlayedNode
    key: Any
    kid: str


@pytest.fixture
def hub_instance(make_instance: Any) -> Any:
    return make_instance("", role="hub", tokens=())  # (ncc init runs its own loop: a sync fixture)


@pytest.fixture
async def rig(hub_instance: Any, aiohttp_server: Any) -> AsyncIterator[Rig]:
    settings = hub_instance.settings(unreachable_after="2")
    ctx = await db.open_db(settings.db_url)
    key = generate_private_key()
    kid = kid_for("DE", public_key_raw(key))
    node = PlayedNode([signed(key, kid) for _ in range(3)])
    app = web.Application()
    app.router.add_get("/federation/v1/changes", node.changes)
    app.router.add_get("/federation/v1/changes/head", node.head)
    server = await aiohttp_server(app)
    node.url = str(server.make_url("")).rstrip("/")
    keyring = Keyring(settings)
    hub = HubService(settings, keyring.key, utc_now)
    token = await hub.invite("DE")
    jti = str(peek_enrollment_token(token)["jti"])
    await hub.enroll({"token": token, "country": "DE", "url": node.url, "kid": kid, "instance": "instance-one",
                      "public_key": b64url_encode(public_key_raw(key)), "proof": enrollment_proof(key, jti)})
    puller = Puller(settings, keyring.key, hub, build_registry(), SearchService(), utc_now)
    try:
        yield Rig(puller, node, key, kid)
    finally:
        await puller.close()
        await db.close_db(ctx)


async def test_the_hub_sends_its_anchor_and_ingests_nothing_from_a_diverged_node(rig: Rig) -> None:
    first = await rig.puller.pull("DE")
    assert first.ok and first.outcome.accepted == 3
    assert rig.node.asked == []  # nothing ingested before: nothing to check
    last = Envelope.from_dict(rig.node.records[-1])
    state = await PullState.get(country="DE")
    assert (state.anchor_seq, state.anchor_id, state.anchor_version, state.anchor_digest) == (
        3, last.id, 1, last.digest())

    rig.node.records += [signed(rig.key, rig.kid) for _ in range(4)]  # written past the cursor
    rig.node.holds = False
    result = await rig.puller.pull("DE")
    assert not result.ok and result.error and "Diverged" in result.error and "ncc recover" in result.error
    assert rig.node.asked[-1] == {"seq": "3", "id": last.id, "version": "1", "digest": last.digest()}
    state = await PullState.get(country="DE")
    assert state.cursor == 3 and state.head == 7 and state.diverged_at is not None
    assert await HubRecord.all().count() == 3, "records of a diverged node were ingested"
    assert node_status(state, rig.puller.settings, utc_now()) == "diverged"

    rig.node.holds = True  # the operator put the right data back
    result = await rig.puller.pull("DE")
    assert result.ok and result.outcome.accepted == 4
    state = await PullState.get(country="DE")
    assert state.diverged_at is None and state.anchor_seq == 7
    assert node_status(state, rig.puller.settings, utc_now()) == "ok"


async def test_head_below_the_cursor_is_divergence_too(rig: Rig) -> None:
    assert (await rig.puller.pull("DE")).ok
    rig.node.records = rig.node.records[:1]  # restored from a backup: head 1 < cursor 3
    result = await rig.puller.pull("DE")
    assert not result.ok and "below the hub's cursor 3" in str(result.error)
    assert (await PullState.get(country="DE")).diverged_at is not None


async def test_resume_starts_a_new_epoch_pulled_from_zero(rig: Rig) -> None:
    assert (await rig.puller.pull("DE")).ok
    rig.node.holds = False
    rig.node.records.append(signed(rig.key, rig.kid))
    assert not (await rig.puller.pull("DE")).ok
    assert await divergence.start_epoch("DE") == 1
    state = await PullState.get(country="DE")
    assert (state.cursor, state.anchor_seq, state.diverged_at, state.epoch) == (0, None, None, 1)
    result = await rig.puller.pull("DE")  # no anchor: nothing to check; everything compared again
    assert result.ok and (result.outcome.duplicate, result.outcome.accepted) == (3, 1)


async def test_a_new_instance_enrolling_starts_a_new_epoch_the_same_one_does_not(rig: Rig) -> None:
    assert (await rig.puller.pull("DE")).ok
    hub = rig.puller.hub

    async def reenroll(instance: str) -> None:
        token = await hub.invite("DE", replace=True)  # re-enrolling an enrolled country
        jti = str(peek_enrollment_token(token)["jti"])
        await hub.enroll({"token": token, "country": "DE", "url": rig.node.url, "kid": rig.kid, "instance": instance,
                          "public_key": b64url_encode(public_key_raw(rig.key)), "proof": enrollment_proof(rig.key, jti)})

    await reenroll("instance-one")  # the same instance (a new URL, a new key): its cursor stays
    assert (await PullState.get(country="DE")).cursor == 3
    await reenroll("instance-two")
    state = await PullState.get(country="DE")
    assert (state.cursor, state.epoch, state.instance, state.anchor_seq) == (0, 1, "instance-two", None)


async def test_a_query_only_node_that_does_not_answer_becomes_unreachable(rig: Rig) -> None:
    await FederatedNode.filter(country="DE").update(mode="query-only")
    settings = rig.puller.settings
    result = await rig.puller.pull("DE")
    assert result.ok and result.skipped == "query-only (probed)"
    state = await PullState.get(country="DE")
    assert state.last_success is not None and node_status(state, settings, utc_now()) == "ok"
    assert await HubRecord.all().count() == 0  # probed, never pulled

    rig.node.up = False
    for _ in range(2):
        assert not (await rig.puller.pull("DE")).ok
    state = await PullState.get(country="DE")
    assert state.consecutive_failures == 2 and "probe failed" in str(state.last_error)
    assert node_status(state, settings, utc_now()) == "unreachable"
    later = utc_now() + timedelta(seconds=settings.stale_after_s + 1)
    await PullState.filter(country="DE").update(consecutive_failures=0)
    assert node_status(await PullState.get(country="DE"), settings, later) == "stale"


async def test_live_answers_count_for_a_query_only_node_short_deadlines_do_not(rig: Rig) -> None:
    await FederatedNode.filter(country="DE").update(mode="query-only")
    node = await FederatedNode.get(country="DE")
    settings = rig.puller.settings
    await divergence.record_live([node], set(), settings.live_timeout_ms - 1, settings.live_timeout_ms, utc_now())
    assert (await PullState.get(country="DE")).consecutive_failures == 0  # a reader's 5 ms marks nobody down
    for _ in range(2):
        await divergence.record_live([node], set(), settings.live_timeout_ms, settings.live_timeout_ms, utc_now())
    state = await PullState.get(country="DE")
    assert state.consecutive_failures == 2 and node_status(state, settings, utc_now()) == "unreachable"
    await divergence.record_live([node], {"DE"}, 50, settings.live_timeout_ms, utc_now())
    state = await PullState.get(country="DE")
    assert state.consecutive_failures == 0 and node_status(state, settings, utc_now()) == "ok"
    # a replicating node's status is its pulls': live answers leave it alone
    await FederatedNode.filter(country="DE").update(mode="replicate")
    node = await FederatedNode.get(country="DE")
    await divergence.record_live([node], set(), settings.live_timeout_ms, settings.live_timeout_ms, utc_now())
    assert (await PullState.get(country="DE")).consecutive_failures == 0


# -- the node's side ---------------------------------------------------------------------------------


@pytest.fixture
async def node_db(node: Any) -> AsyncIterator[tuple[Publisher, Keyring]]:
    settings = node.settings()
    ctx = await db.open_db(settings.db_url)
    await db.ensure_counters()
    keyring = Keyring(settings)
    try:
        yield Publisher("DE", keyring.key, build_registry(), utc_now, index=SearchService()), keyring
    finally:
        await db.close_db(ctx)


def anchor(env: Envelope, seq: int) -> Anchor:
    return Anchor(seq, env.id, env.version, env.digest())


async def seq_of(rid: str, version: int) -> int:
    return int((await RecordVersion.get(record_id=rid, version=version)).seq)


async def test_the_node_holds_its_versions_and_withdrawn_tombstones_and_nothing_else(
        node_db: tuple[Publisher, Keyring]) -> None:
    publisher, _ = node_db
    a1 = await publisher.create("organisation", "public", MINIMAL_ORG)
    a2 = await publisher.update(a1.id, {**MINIMAL_ORG, "description": "Changed."}, 1)
    assert await anchor_held(anchor(a1, await seq_of(a1.id, 1)))  # superseded since: still its own
    assert await anchor_held(anchor(a2, await seq_of(a2.id, 2)))
    assert not await anchor_held(anchor(a2, await seq_of(a2.id, 2) + 1))  # another sequence
    assert not await anchor_held(Anchor(await seq_of(a2.id, 2), a2.id, 2, "0" * 64))  # other content

    await publisher.update(a1.id, {**MINIMAL_ORG, "description": "Now national."}, 2, visibility="national")
    face = await FeedEntry.get(record_id=a1.id)
    tombstone = Envelope.from_dict(orjson.loads(face.envelope))
    assert tombstone.deleted and tombstone.version == 3
    fed = anchor(tombstone, int(face.seq))
    assert await anchor_held(fed)
    await publisher.update(a1.id, {**MINIMAL_ORG, "description": "Shared again."}, 3, visibility="public")
    assert await anchor_held(fed), "the withdrawn tombstone the hub ingested is forgotten once superseded"

    stranger = Envelope.from_dict(signed(generate_private_key(), "DE:AAAAAAAAAAAAAAAA"))
    assert not await anchor_held(anchor(stranger, 1))


# -- recover against a lying hub ----------------------------------------------------------------------


async def test_recover_refuses_what_the_nodes_own_keys_did_not_sign(node_db: tuple[Publisher, Keyring]) -> None:
    publisher, keyring = node_db
    mine = keyring.key()
    kept = await publisher.create("organisation", "public", MINIMAL_ORG)
    keys = own_keys("DE", [mine], None)
    recovery = Recovery("DE", publisher, publisher.registry, keys, utc_now)

    tampered = {**kept.to_dict(), "version": 2, "payload": {**MINIMAL_ORG, "description": "The hub's own words."}}
    forger = generate_private_key()
    foreign_kid = kid_for("DE", public_key_raw(forger))
    lost = signed(mine.private_key, mine.kid)  # genuine: written before the restore, lost by it
    national = signed(mine.private_key, mine.kid, visibility="national")
    erased_id = f"urn:ncc:DE:organisation:{uuid.uuid4()}"
    await publisher.create("organisation", "public", {**MINIMAL_ORG, "legal_name": "Erased Person Org"})
    restored = await Record.filter(type="organisation").order_by("-seq").first()
    assert restored is not None
    erased_id = restored.id
    erasure = signed(mine.private_key, mine.kid, version=2, rid=erased_id, deleted=True, payload={"reason": "erased"})
    await recovery.apply([
        tampered,  # a hub altering a record: its signature no longer verifies
        signed(forger, foreign_kid, rid=f"urn:ncc:DE:organisation:{uuid.uuid4()}"),  # a key that is not the node's
        signed(forger, mine.kid),  # the node's kid, another key
        national,
        lost,
        erasure,
    ])
    report = recovery.report
    codes = sorted(r.rsplit(": ", 1)[1] for r in report.refused)
    assert codes == ["signature_invalid", "signature_invalid", "unknown_key", "visibility_national"], report.refused
    assert report.unknown_kids == {foreign_kid}
    assert report.actions == {Action.TAKE: 2}
    # nothing of the refused ones was stored
    assert (await Record.get(id=kept.id)).version == 1
    assert not await RecordVersion.filter(envelope__contains="The hub's own words").exists()
    assert not await Record.filter(id=national["id"]).exists()
    # the genuine lost record is back, as signed, in the feed for the hub
    back = await Record.get(id=lost["id"])
    assert back.version == 1 and orjson.loads(back.envelope) == lost
    assert await FeedEntry.filter(record_id=lost["id"]).exists()
    # and the erasure the restore undid is done again: no older payload left
    assert (await Record.get(id=erased_id)).deleted
    assert not await RecordVersion.filter(record_id=erased_id, envelope__contains="Erased Person").exists()


async def test_trusting_an_old_key_needs_it_in_the_hubs_directory(node_db: tuple[Publisher, Keyring]) -> None:
    _, keyring = node_db
    with pytest.raises(RecoverError, match="not a key of DE"):
        own_keys("DE", [keyring.key()], None, ["DE:AAAAAAAAAAAAAAAA"])


@dataclass
class LyingHub:
    pages: list[bytes]
    calls: int = 0

    async def records(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        return web.Response(body=self.pages[min(self.calls, len(self.pages)) - 1], content_type="application/json")

    async def resume(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"country": "DE", "epoch": 4, "cursor": 0})


async def run_against(aiohttp_server: Any, hub: LyingHub, recovery: Recovery, key: Any) -> Any:
    app = web.Application()
    app.router.add_get("/federation/v1/records", hub.records)
    app.router.add_post("/federation/v1/resume", hub.resume)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        link = HubLink(str(server.make_url("")), "DE", lambda: key, utc_now, session)
        return await recover(recovery, link)


async def test_recover_bounds_what_the_hub_sends(node_db: tuple[Publisher, Keyring], aiohttp_server: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    publisher, keyring = node_db
    recovery = Recovery("DE", publisher, publisher.registry, own_keys("DE", [keyring.key()], None), utc_now)
    genuine = signed(keyring.key().private_key, keyring.key().kid)
    page = orjson.dumps({"records": [genuine], "next_after": None})
    report = await run_against(aiohttp_server, LyingHub([page]), recovery, keyring.key())
    assert report.epoch == 4 and report.actions == {Action.TAKE: 1}

    stuck = orjson.dumps({"records": [], "next_after": ""})
    with pytest.raises(RecoverError, match="does not move forward"):
        await run_against(aiohttp_server, LyingHub([stuck]), recovery, keyring.key())
    monkeypatch.setattr("node.services.recover.PAGE_MAX_BYTES", 1000)
    huge = orjson.dumps({"records": [genuine] * 3, "next_after": None})
    with pytest.raises(RecoverError, match="longer than 1000 bytes"):
        await run_against(aiohttp_server, LyingHub([huge]), recovery, keyring.key())
