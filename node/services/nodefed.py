"""Node side of the federation: enrollment, the held hub directory, the change feed, notifying the hub,
key rotation.

State lives in the database (``node_state``), not in config, so a running node picks up an
enrollment or a rotation made by another process (the CLI) without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
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
#: This instance's id, made once and sent at enrollment: a different one for a country tells the hub a
#: new instance replaced the old (a new feed epoch); a node restored from a backup keeps its own.
INSTANCE_KEY = "instance_id"


#: Longest wait between notifications while the hub refuses this node (suspended, key revoked): the
#: hub still pulls on its own schedule, and an admin reactivating the node is noticed within this.
REFUSED_BACKOFF_MAX_S = 900.0

#: What the operator of a refused node can do, by the hub's ``reason``.
REFUSAL_HINTS = {
    "key_revoked": "re-enroll with a fresh invitation (ncc hub invite at the hub, then ncc enroll), "
                   "which makes a new key",
    "key_expired": "the key was rotated out; re-enroll with a fresh invitation",
    "node_suspended": "ask the hub admin to reactivate the node (ncc hub activate)",
}


class FederationError(Exception):
    """Talking to the hub failed; the message is one line for the CLI.

    ``status``, ``code`` and ``reason`` come from the hub's problem answer (None when the hub was
    not reached or did not answer with a problem).
    """

    def __init__(self, message: str, status: int | None = None, code: str | None = None,
                 reason: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.reason = status, code, reason

    @property
    def refused(self) -> bool:
        """The hub answered that this node may not do this (not a transport failure)."""
        return self.status in (401, 403)


async def get_state(key: str) -> Any:
    row = await NodeState.filter(key=key).first()
    return None if row is None else orjson.loads(row.value)


async def set_state(key: str, value: Any) -> None:
    text = orjson.dumps(value).decode()
    if not await NodeState.filter(key=key).update(value=text):
        await NodeState.create(key=key, value=text)


async def instance_id() -> str:
    """This instance's id (made on first use)."""
    value = await get_state(INSTANCE_KEY)
    if isinstance(value, str):
        return value
    value = uuid.uuid4().hex
    await set_state(INSTANCE_KEY, value)
    return value


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

    rows = await sql.fetch(
        connections.get("default"),
        "SELECT MIN(issued_at) AS first FROM record_versions WHERE envelope LIKE ? ESCAPE '\\'",
        [sql.signed_by_pattern(kid)],
    )
    return str(rows[0]["first"]) if rows and rows[0]["first"] else None


@dataclass(frozen=True)
class Enrolled:
    """What ``enroll`` did: the hub's directory, the key now enrolled, the key it replaced (if any)."""

    directory: dict[str, Any]
    kid: str
    replaced_kid: str | None = None


@dataclass
class NodeFederation:
    """What a node does towards its hub."""

    settings: Settings
    key: Callable[[], InstanceKey]
    clock: Callable[[], datetime]
    metrics: Metrics | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    _session: aiohttp.ClientSession | None = None
    # back-off while the hub refuses the node (see notify_if_needed)
    _refusals: int = 0
    _retry_at: float = 0.0
    _refused_enrollment: Any = None

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
        """Enroll (see ``enroll_key``); return the hub's verified directory.

        Raises:
            FederationError: as ``enroll_key``.
        """
        return (await self.enroll_key(hub_url, token)).directory

    async def enroll_key(self, hub_url: str, token: str, new_key: bool = False) -> Enrolled:
        """Enroll with the hub using a one-time invitation; store the verified directory.

        The node enrolls its current key, unless ``new_key`` is set or the key is revoked (in the
        directory the node holds, or the hub refuses it as revoked: the invitation is then still
        unused and is sent again with a new key). A new key replaces the current one only once the
        hub has listed it; the old key goes to ``keys/compromised/``, where it verifies nothing.

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
        current = self.key()
        fresh = new_key or await self._held_key_revoked(current.kid)
        key = self._fresh_key() if fresh else current
        try:
            directory_doc = await self._enroll_with(hub_url, token, claims, key, fresh)
        except FederationError as exc:
            if fresh or exc.reason != "key_revoked":
                raise
            fresh, key = True, self._fresh_key()
            directory_doc = await self._enroll_with(hub_url, token, claims, key, fresh)
        if fresh:
            # key-compromise recovery (or a key the hub revoked): the old key verifies nothing any more
            retire_and_replace(self.settings.key_path, key.private_key, compromised=True, now=self.clock())
        await set_state(DIRECTORY_KEY, directory_doc)
        await set_state(ENROLLMENT_KEY, {"hub_url": hub_url.rstrip("/"), "hub_kid": claims["hub_kid"],
                                         "enrolled_at": directory_doc["issued_at"]})
        await set_state(NOTIFIED_KEY, 0)
        self.wake.set()
        return Enrolled(directory_doc, key.kid, current.kid if fresh else None)

    async def _enroll_with(self, hub_url: str, token: str, claims: dict[str, Any], key: InstanceKey,
                           fresh: bool) -> dict[str, Any]:
        """Post the enrollment of ``key``; the verified directory, which must list ``key`` for this node."""
        body = {
            "token": token, "country": self.settings.country, "url": self.settings.base_url,
            "public_key": b64url_encode(key.public_raw), "kid": key.kid,
            "proof": enrollment_proof(key.private_key, str(claims["jti"])),
            "instance": await instance_id(),
        }
        # A new key has signed nothing: it must not claim the history of the key it replaces.
        signed_since = None if fresh else await first_signed_by(key.kid)
        if signed_since is not None:
            body["not_before"] = signed_since
        data = await self._post(hub_url, "/federation/v1/enroll", body, auth=False)
        directory_doc = data.get("directory") if isinstance(data, dict) else None
        try:
            directory = verify_directory(directory_doc, self.clock(), trusted_kids={str(claims["hub_kid"])})
        except ProtocolError as exc:
            raise FederationError(f"hub directory rejected: {exc.code}: {exc.detail}") from exc
        entry = directory.node(self.settings.country)
        if entry is None:
            raise FederationError("the hub's directory does not list this node")
        listed = entry.key(key.kid)
        if listed is None or listed.revoked_at is not None:
            raise FederationError(f"the hub's directory does not list {key.kid} as a key of this node")
        return dict(directory_doc)

    def _fresh_key(self) -> InstanceKey:
        private = generate_private_key()
        return InstanceKey(private, kid_for(self.settings.country, public_key_raw(private)))

    async def _held_key_revoked(self, kid: str) -> bool:
        """Whether the directory this node holds says ``kid`` is revoked."""
        held = await get_state(DIRECTORY_KEY)
        if not isinstance(held, dict):
            return False
        try:
            entry = Directory.from_dict(held).node(self.settings.country)
        except ProtocolError:
            return False
        listed = entry.key(kid) if entry is not None else None
        return listed is not None and listed.revoked_at is not None

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

        While the hub refuses this node (401/403: suspended, key revoked, …) the notifications back off
        (doubling from ``notify_retry_s`` up to ``REFUSED_BACKOFF_MAX_S``), each refusal logged with the
        hub's reason; a new enrollment ends the back-off at once.

        Returns True when nothing was pending or the hub took the notification.
        """
        enrollment = await self.enrollment()
        if enrollment is None:
            return True
        if self._refusals and enrollment.get("enrolled_at") != self._refused_enrollment:
            self._refusals, self._retry_at = 0, 0.0  # re-enrolled (by `ncc enroll`, another process)
        if self._refusals and time.monotonic() < self._retry_at:
            return False
        head = await feed_head()
        notified = await get_state(NOTIFIED_KEY) or 0
        if head <= notified:
            return True
        try:
            await self._post(enrollment["hub_url"], "/federation/v1/notify", {"country": self.settings.country})
        except FederationError as exc:
            if self.metrics is not None:
                self.metrics.notify_failures.inc()
            if not exc.refused:
                log.warning("notify failed (%s); will retry", exc, extra={"error": str(exc)})
                return False
            self._refusals += 1
            self._refused_enrollment = enrollment.get("enrolled_at")
            delay = self.refused_backoff_s()
            self._retry_at = time.monotonic() + delay
            hint = REFUSAL_HINTS.get(exc.reason or "", "see the hub's answer")
            log.warning("notify refused (%s); %s; next try in %.0f s", exc, hint, delay,
                        extra={"error": str(exc), "reason": exc.reason, "retry_in_s": delay})
            return False
        self._refusals = 0
        await set_state(NOTIFIED_KEY, head)
        return True

    def refused_backoff_s(self) -> float:
        """The wait before the next notification after ``_refusals`` refusals in a row."""
        base = float(self.settings.notify_retry_s)
        return min(base * 2 ** max(self._refusals - 1, 0), max(base, REFUSED_BACKOFF_MAX_S))

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
        retire_and_replace(self.settings.key_path, new_key, now=self.clock())
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

    async def hub_get(self, base: str, path: str, auth: bool = True) -> Any:
        """GET a JSON answer from the hub (or a peer node), with this node's service token when ``auth``.

        Raises:
            FederationError: unreachable, or an error answer (with its status and code).
        """
        headers = {"Authorization": f"Bearer {self.service_token()}"} if auth else {}
        try:
            async with self.session().get(base.rstrip("/") + path, headers=headers, allow_redirects=False) as r:
                return await _answer(r)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise FederationError(f"unreachable at {base}: {exc.__class__.__name__}: {exc}") from exc


async def _answer(response: aiohttp.ClientResponse) -> Any:
    raw = await response.read()
    try:
        data = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        data = None
    if response.status >= 400:
        if isinstance(data, dict) and "code" in data:
            reason = data.get("reason")
            raise FederationError(f"hub answered {response.status} {data['code']}: {data.get('detail', '')}",
                                  response.status, str(data["code"]), reason if isinstance(reason, str) else None)
        raise FederationError(f"hub answered HTTP {response.status}", response.status)
    return data

