"""Node side of the federation: enrollment, the held hub directory, the change feed, notifying the hub,
key rotation.

State lives in the database (``node_state``), not in config, so a running node picks up an
enrollment or a rotation made by another process (the CLI) without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
import orjson

from federation.directory import Directory, verify_directory
from federation.errors import ProtocolError
from federation.keys import b64url_encode, generate_private_key, kid_for, public_key_raw
from federation.tokens import (
    enrollment_proof,
    issue_service_token,
    make_rotation_statement,
    peek_enrollment_token,
)
from node.config import Settings
from node.http.metrics import Metrics
from node.keystore import InstanceKey, retire_and_replace
from node.storage import sql
from node.storage.availability import database_unavailable
from node.storage.models import FeedEntry, NodeState

log = logging.getLogger("ncc.federation")

DIRECTORY_KEY = "hub_directory"
ENROLLMENT_KEY = "enrollment"
NOTIFIED_KEY = "notified_seq"


class FederationError(Exception):
    """Talking to the hub failed; the message is one line for the CLI."""


async def get_state(key: str) -> Any:
    row = await NodeState.filter(key=key).first()
    return None if row is None else orjson.loads(row.value)


async def set_state(key: str, value: Any) -> None:
    text = orjson.dumps(value).decode()
    if not await NodeState.filter(key=key).update(value=text):
        await NodeState.create(key=key, value=text)


async def feed_page(after: int, limit: int) -> tuple[list[tuple[int, str]], int, bool, int]:
    """Rows ``(seq, envelope_json)`` after ``after``, the next cursor, whether more follow, and the head."""
    rows = await FeedEntry.filter(seq__gt=after).order_by("seq").limit(limit + 1).values_list("seq", "envelope")
    more = len(rows) > limit
    rows = rows[:limit]
    head = await feed_head()
    nxt = int(rows[-1][0]) if rows else max(after, 0)
    return [(int(s), str(e)) for s, e in rows], nxt, more, head


async def feed_head() -> int:
    """The highest sequence in the feed (0 when empty)."""
    from tortoise.connection import connections

    rows = await sql.fetch(connections.get("default"), "SELECT COALESCE(MAX(seq), 0) AS m FROM feed")
    return int(rows[0]["m"])


async def first_signed_by(kid: str) -> str | None:
    """When this node first signed a record version with ``kid`` (None if it never did).

    Sent as ``not_before`` at enrollment, so that records made before the node enrolled stay valid.
    """
    from tortoise.connection import connections

    pattern = '%"kid":"' + kid.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + '"%'
    rows = await sql.fetch(
        connections.get("default"),
        "SELECT MIN(issued_at) AS first FROM record_versions WHERE envelope LIKE ? ESCAPE '\\'",
        [pattern],
    )
    return str(rows[0]["first"]) if rows and rows[0]["first"] else None


@dataclass
class NodeFederation:
    """What a node does towards its hub."""

    settings: Settings
    key: Callable[[], InstanceKey]
    clock: Callable[[], datetime]
    metrics: Metrics | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    _session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30, connect=10))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def service_token(self) -> str:
        key = self.key()
        return issue_service_token(key.private_key, key.kid, self.settings.country, "hub", self.clock(), ttl_s=120)

    # -- enrollment and directory --------------------------------------------------------------

    async def enroll(self, hub_url: str, token: str) -> dict[str, Any]:
        """Enroll with the hub using a one-time invitation; store and return the verified directory.

        Raises:
            FederationError: the token is not an invitation for this country, the hub refused, or
                its directory is not signed by the key the invitation names.
        """
        try:
            claims = peek_enrollment_token(token)
        except ProtocolError as exc:
            raise FederationError(f"not an enrollment token: {exc.detail}") from exc
        if claims.get("sub") != self.settings.country:
            raise FederationError(f"this invitation is for {claims.get('sub')}, not {self.settings.country}")
        key = self.key()
        body = {
            "token": token, "country": self.settings.country, "url": self.settings.base_url,
            "public_key": b64url_encode(key.public_raw), "kid": key.kid,
            "proof": enrollment_proof(key.private_key, str(claims["jti"])),
        }
        signed_since = await first_signed_by(key.kid)
        if signed_since is not None:
            body["not_before"] = signed_since
        data = await self._post(hub_url, "/federation/v1/enroll", body, auth=False)
        directory_doc = data.get("directory") if isinstance(data, dict) else None
        try:
            directory = verify_directory(directory_doc, self.clock(), trusted_kids={str(claims["hub_kid"])})
        except ProtocolError as exc:
            raise FederationError(f"hub directory rejected: {exc.code}: {exc.detail}") from exc
        if directory.node(self.settings.country) is None:
            raise FederationError("the hub's directory does not list this node")
        await set_state(DIRECTORY_KEY, directory_doc)
        await set_state(ENROLLMENT_KEY, {"hub_url": hub_url.rstrip("/"), "hub_kid": claims["hub_kid"],
                                         "enrolled_at": directory_doc["issued_at"]})
        await set_state(NOTIFIED_KEY, 0)
        self.wake.set()
        return directory_doc

    async def enrollment(self) -> dict[str, Any] | None:
        value = await get_state(ENROLLMENT_KEY)
        return value if isinstance(value, dict) else None

    async def refresh_directory(self) -> dict[str, Any] | None:
        """Fetch the hub's directory; keep it only if it verifies against the one held (no rollback).

        Raises:
            FederationError: unreachable hub or a directory that does not verify.
        """
        enrollment = await self.enrollment()
        held = await get_state(DIRECTORY_KEY)
        if enrollment is None or held is None:
            return None
        doc = await self._get(enrollment["hub_url"], "/federation/v1/directory")
        try:
            previous = Directory.from_dict(held)
            verify_directory(doc, self.clock(), previous=previous)
        except ProtocolError as exc:
            raise FederationError(f"hub directory rejected: {exc.code}: {exc.detail}") from exc
        if doc.get("serial") != held.get("serial"):
            await set_state(DIRECTORY_KEY, doc)
        return dict(doc)

    # -- notifications -------------------------------------------------------------------------

    async def notify_if_needed(self) -> bool:
        """Tell the hub to pull if the feed moved since the last successful notification.

        Returns True when nothing was pending or the hub took the notification.
        """
        enrollment = await self.enrollment()
        if enrollment is None:
            return True
        head = await feed_head()
        notified = await get_state(NOTIFIED_KEY) or 0
        if head <= notified:
            return True
        try:
            await self._post(enrollment["hub_url"], "/federation/v1/notify", {"country": self.settings.country})
        except FederationError as exc:
            if self.metrics is not None:
                self.metrics.notify_failures.inc()
            log.warning("notify failed; will retry", extra={"error": str(exc)})
            return False
        await set_state(NOTIFIED_KEY, head)
        return True

    async def run_notifier(self, stop: asyncio.Event | None = None) -> None:
        """Background loop: notify after writes (woken by the publisher) and retry periodically.

        Setting ``stop`` (and ``wake``) ends the loop between notifications, so shutdown never
        cancels it in the middle of a database query.
        """
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=self.settings.notify_retry_s)
            except TimeoutError:
                pass
            self.wake.clear()
            await asyncio.sleep(0.2)  # coalesce bursts of writes into one notification
            if stop.is_set():
                return
            try:
                await self.notify_if_needed()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not database_unavailable(exc):
                    log.exception("notifier error")
                    continue
                # (a database restart: the feed head is read again at the next retry)
                log.warning("notify postponed: database unavailable; will retry",
                            extra={"error": f"{exc.__class__.__name__}: {exc}"})

    # -- key rotation --------------------------------------------------------------------------

    async def rotate_key(self) -> dict[str, Any]:
        """Make a new key, have the hub add it (statement signed by the old key), then switch.

        Without enrollment the key is simply replaced locally.

        Raises:
            FederationError: the hub refused; the old key stays in use.
        """
        old = self.key()
        new_key = generate_private_key()
        new_kid = kid_for(self.settings.country, public_key_raw(new_key))
        enrollment = await self.enrollment()
        result: dict[str, Any] = {"old_kid": old.kid, "kid": new_kid}
        if enrollment is not None:
            statement = make_rotation_statement(old.private_key, old.kid, public_key_raw(new_key),
                                                self.settings.country, self.clock())
            data = await self._post(enrollment["hub_url"], "/federation/v1/keys/rotate", statement)
            doc = data.get("directory") if isinstance(data, dict) else None
            held = await get_state(DIRECTORY_KEY)
            try:
                verify_directory(doc, self.clock(), previous=Directory.from_dict(held) if held else None)
            except ProtocolError as exc:
                raise FederationError(f"hub directory rejected: {exc.code}: {exc.detail}") from exc
            await set_state(DIRECTORY_KEY, doc)
            result["old_key_not_after"] = data.get("old_key_not_after")
        retire_and_replace(self.settings.key_path, new_key)
        return result

    # -- HTTP ----------------------------------------------------------------------------------

    async def _post(self, base: str, path: str, body: Any, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.service_token()}"
        try:
            async with self.session().post(base.rstrip("/") + path, data=orjson.dumps(body), headers=headers) as r:
                return await _answer(r)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise FederationError(f"hub unreachable at {base}: {exc.__class__.__name__}: {exc}") from exc

    async def _get(self, base: str, path: str) -> Any:
        try:
            async with self.session().get(base.rstrip("/") + path) as r:
                return await _answer(r)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise FederationError(f"hub unreachable at {base}: {exc.__class__.__name__}: {exc}") from exc


async def _answer(response: aiohttp.ClientResponse) -> Any:
    raw = await response.read()
    try:
        data = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        data = None
    if response.status >= 400:
        if isinstance(data, dict) and "code" in data:
            raise FederationError(f"hub answered {response.status} {data['code']}: {data.get('detail', '')}")
        raise FederationError(f"hub answered HTTP {response.status}")
    return data

