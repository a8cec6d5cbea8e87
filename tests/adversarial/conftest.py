"""Fixtures of the hostile-input suite: an in-process hub, a fake node feed we fully control, a real node.

* ``hub`` / ``hub_client`` — ``ncc init --role hub`` in ``tmp_path`` (on the ``db_url`` backend),
  served in-process with a settable :class:`Clock`. The hub's scheduler is left out: the tests drive
  every pull themselves (``POST /api/v1/sync``), and a background pull racing them would make the
  per-pull counts nondeterministic (the stored outcome would be the same).
* ``fake_node`` — a factory of :class:`FakeNode`: a tiny aiohttp server answering
  ``GET /federation/v1/changes`` from a list of lines the test writes (signed with keys the test
  holds, or broken on purpose), enrolled at the hub through the real enroll endpoint.
* ``node`` / ``client`` — the integration suite's real DE node (``tests/integration/conftest.py``).
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation.envelope import sign_record
from federation.keys import b64url_encode, generate_private_key, kid_for, public_key_raw
from federation.timefmt import format_timestamp
from federation.tokens import enrollment_proof, issue_service_token, peek_enrollment_token
from node.context import utc_now
from tests.integration.conftest import app_client, client, make_instance, node  # noqa: F401 - fixtures
from tests.integration.support import MINIMAL_ORG, Instance

Client = TestClient[Any, Any]


class Clock:
    """The hub's clock: real time at the start, then moved by the test (whole seconds, UTC)."""

    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def org_payload(country: str, **changes: Any) -> dict[str, Any]:
    """The minimal organisation of DESIGN §9, established in ``country``."""
    payload = {**MINIMAL_ORG, "country": country, **changes}
    return {k: v for k, v in payload.items() if v is not None}


@dataclass
class FakeNode:
    """A node feed served from lines the test writes; the key and kid are the test's."""

    country: str
    key: Ed25519PrivateKey
    clock: Clock
    url: str = ""
    lines: list[tuple[int, bytes]] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    #: Replaces the computed trailer fields (hostile trailers).
    trailer_override: dict[str, Any] | None = None

    @property
    def kid(self) -> str:
        return kid_for(self.country, public_key_raw(self.key))

    @property
    def public_key(self) -> str:
        return b64url_encode(public_key_raw(self.key))

    # -- records -------------------------------------------------------------------------------

    def fields(
        self,
        *,
        rtype: str = "organisation",
        payload: dict[str, Any] | None = None,
        version: int = 1,
        uuid: str | None = None,
        origin: str | None = None,
        visibility: str = "public",
        deleted: bool = False,
        issued_at: datetime | None = None,
        rid: str | None = None,
    ) -> dict[str, Any]:
        """Unsigned envelope fields (defaults: a valid public organisation of this node, version 1)."""
        origin = origin or self.country
        if payload is None:
            payload = {"reason": "withdrawn"} if deleted else org_payload(origin)
        return {
            "ncc": 1,
            "id": rid or f"urn:ncc:{origin}:{rtype}:{uuid or uuidlib.uuid4()}",
            "type": rtype,
            "schema": f"{rtype}/1",
            "origin": origin,
            "version": version,
            "issued_at": format_timestamp(issued_at or self.clock()),
            "visibility": visibility,
            "deleted": deleted,
            "payload": payload,
        }

    def sign(self, fields: dict[str, Any], key: Ed25519PrivateKey | None = None, kid: str | None = None) -> dict[str, Any]:
        """Sign ``fields`` (with this node's key and kid unless others are given); the wire dict."""
        return sign_record(fields, key or self.key, kid or self.kid).to_dict()

    def record(self, key: Ed25519PrivateKey | None = None, kid: str | None = None, **kw: Any) -> dict[str, Any]:
        """A signed envelope: :meth:`fields` then :meth:`sign`."""
        return self.sign(self.fields(**kw), key, kid)

    # -- the feed ------------------------------------------------------------------------------

    @property
    def head(self) -> int:
        return self.lines[-1][0] if self.lines else 0

    def serve(self, *records: dict[str, Any] | bytes) -> list[int]:
        """Append records to the feed (a dict is an envelope; bytes are the record's JSON text as is)."""
        seqs = []
        for rec in records:
            seq = self.head + 1
            text = rec if isinstance(rec, bytes) else orjson.dumps(rec)
            self.lines.append((seq, b'{"seq":%d,"record":%s}' % (seq, text)))
            seqs.append(seq)
        return seqs

    def serve_line(self, line: bytes) -> int:
        """Append a raw feed line (it may not even be JSON); it occupies the next sequence number."""
        seq = self.head + 1
        self.lines.append((seq, line))
        return seq

    async def changes(self, request: web.Request) -> web.Response:
        self.requests.append(dict(request.query))
        after = int(request.query.get("after", "0"))
        limit = int(request.query.get("limit", "1000"))
        rows = [(s, line) for s, line in self.lines if s > after]
        page, more = rows[:limit], len(rows) > limit
        trailer: dict[str, Any] = {"next": page[-1][0] if page else after, "more": more, "head": self.head}
        trailer.update(self.trailer_override or {})
        body = b"".join(line + b"\n" for _, line in page) + orjson.dumps(trailer) + b"\n"
        return web.Response(body=body, content_type="application/x-ndjson")

    def service_token(self, audience: str = "hub", **kw: Any) -> str:
        """A service token of this node for the hub."""
        return issue_service_token(self.key, self.kid, self.country, audience, self.clock(), **kw)

    def auth(self, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.service_token(**kw)}"}


class Hub:
    """The in-process hub of a test: its instance, client, clock and the fake nodes enrolled."""

    def __init__(self, instance: Instance, http: Client, clock: Clock) -> None:
        self.instance = instance
        self.client = http
        self.clock = clock

    @property
    def context(self) -> Any:
        from node.http.keys import CONTEXT

        return self.client.app[CONTEXT]

    def admin(self) -> dict[str, str]:
        return self.instance.auth("admin")

    async def invite(self, country: str, replace: bool = True) -> str:
        """An invitation (``replace``: also for an enrolled country, as ``ncc hub invite --replace``; the
        refusal without it has its own cases in test_hardening.py)."""
        token: str = await self.context.hub.invite(country, replace=replace)
        return token

    def enroll_body(self, token: str, fake: FakeNode, **changes: Any) -> dict[str, Any]:
        """A correct enrollment request of ``fake`` (fields overridable)."""
        jti = str(peek_enrollment_token(token)["jti"])
        body = {
            "token": token, "country": fake.country, "url": fake.url or "http://127.0.0.1:9/",
            "public_key": fake.public_key, "kid": fake.kid, "proof": enrollment_proof(fake.key, jti),
        }
        body.update(changes)
        return body

    async def enroll(self, fake: FakeNode) -> dict[str, Any]:
        """Enroll ``fake`` with a fresh invitation through ``POST /federation/v1/enroll`` (asserts 200)."""
        body = self.enroll_body(await self.invite(fake.country), fake)
        resp = await self.client.post("/federation/v1/enroll", json=body)
        assert resp.status == 200, await resp.text()
        data: dict[str, Any] = await resp.json()
        return data

    async def sync(self) -> dict[str, dict[str, Any]]:
        """``POST /api/v1/sync`` as the hub admin; the result per country (asserts 200)."""
        resp = await self.client.post("/api/v1/sync", headers=self.admin())
        assert resp.status == 200, await resp.text()
        return {r["country"]: r for r in (await resp.json())["results"]}

    async def quarantine(self, country: str | None = None) -> list[dict[str, Any]]:
        """``GET /federation/v1/quarantine`` as the hub admin."""
        params = {"country": country} if country else {}
        resp = await self.client.get("/federation/v1/quarantine", headers=self.admin(), params=params)
        assert resp.status == 200, await resp.text()
        items: list[dict[str, Any]] = (await resp.json())["items"]
        return items

    async def held(self) -> dict[str, tuple[int, str, bool]]:
        """What the hub stores: record id → (version, digest, quarantined)."""
        from node.storage.hub_models import HubRecord

        return {r.id: (r.version, r.digest, r.quarantined) for r in await HubRecord.all()}

    async def cursor(self, country: str) -> int:
        from node.storage.hub_models import PullState

        state = await PullState.get(country=country)
        return int(state.cursor)

    async def searchable(self, analyst: bool = True) -> set[str]:
        """Ids the hub's search finds (as an analyst: public and network)."""
        headers = self.instance.auth("analyst") if analyst else {}
        resp = await self.client.get("/api/v1/search", params={"limit": "100"}, headers=headers)
        assert resp.status == 200, await resp.text()
        return {r["id"] for r in (await resp.json())["results"]}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hub_instance(make_instance: Callable[..., Instance]) -> Instance:  # noqa: F811 - the imported fixture
    """``ncc init --role hub`` with an admin and an analyst token (sync fixture: the CLI runs its own loop)."""
    return make_instance("", role="hub", tokens=("admin", "analyst"))


def _without_scheduler(app: web.Application) -> None:
    """Swap the hub's scheduler (background pulls) for a cleanup that only closes its HTTP clients."""
    from node.http.keys import CONTEXT
    from node.services.wiring import _hub_jobs

    async def close_clients(app: web.Application) -> Any:
        yield
        await app[CONTEXT].sync.close()
        await app[CONTEXT].live.close()

    index = next(i for i, c in enumerate(app.cleanup_ctx) if getattr(c, "job", None) is _hub_jobs)
    app.cleanup_ctx[index] = close_clients


@pytest.fixture
async def hub(hub_instance: Instance, aiohttp_client: Any, clock: Clock) -> Hub:
    """The hub, in-process, with the test's clock and without the scheduler."""
    from node.http.app import create_app

    app = create_app(hub_instance.settings(), clock=clock)
    _without_scheduler(app)
    return Hub(hub_instance, await aiohttp_client(app), clock)


MakeFakeNode = Callable[..., Awaitable[FakeNode]]


@pytest.fixture
def fake_node(aiohttp_server: Any, hub: Hub, clock: Clock) -> MakeFakeNode:
    """Factory: ``await fake_node("DE")`` serves a feed and enrolls it at the hub (``enroll=False``: not)."""

    async def make(country: str = "DE", enroll: bool = True) -> FakeNode:
        fake = FakeNode(country, generate_private_key(), clock)
        app = web.Application()
        app.router.add_get("/federation/v1/changes", fake.changes)
        server = await aiohttp_server(app)
        fake.url = str(server.make_url("")).rstrip("/")
        if enroll:
            await hub.enroll(fake)
        return fake

    return make
