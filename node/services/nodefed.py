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
from node.keystore import InstanceKey, retire_and_replace
from node.metrics import Metrics
from node.services.background import idle
from node.services.fedclient import FedClient, FedError, FedResponse, Limits
from node.storage import sql
from node.storage.availability import database_unavailable
from node.storage.models import FeedEntry, NodeState, RecordVersion

log = logging.getLogger("ncc.federation")

DIRECTORY_KEY = "hub_directory"
ENROLLMENT_KEY = "enrollment"
NOTIFIED_KEY = "notified_seq"
#: This instance's id, made once and sent at enrollment: a different one for a country tells the hub a
#: new instance replaced the old (a new feed epoch); a node restored from a backup keeps its own.
INSTANCE_KEY = "instance_id"
#: Writes within this long of the first are announced by one notification.
NOTIFY_COALESCE_S = 0.2


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


async def feed_page(after: int, limit: int, max_bytes: int | None = None
                    ) -> tuple[list[tuple[int, str]], int, bool, int]:
    """Rows ``(seq, envelope_json)`` after ``after``, the next cursor, whether more follow, and the head.

    With ``max_bytes`` (the setting ``feed_page_max_bytes``) the page ends before its lines would pass
    it; a single record over it travels alone (the hub accepts a page up to twice the setting).
    """
    rows = await FeedEntry.filter(seq__gt=after).order_by("seq").limit(limit + 1).values_list("seq", "envelope")
    more = len(rows) > limit
    rows = rows[:limit]
    if max_bytes is not None:
        size = 0
        for i, (seq, envelope) in enumerate(rows):
            size += len(envelope.encode()) + 32  # the line's framing: {"seq":N,"record":…}\n
            if size > max_bytes and i > 0:
                rows, more = rows[:i], True
                break
    head = await feed_head()
    nxt = int(rows[-1][0]) if rows else max(after, 0)
    return [(int(s), str(e)) for s, e in rows], nxt, more, head


async def version_digests(pairs: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """The digest of each (record id, version) held here (unknown pairs are left out)."""
    ids = list(dict.fromkeys(rid for rid, _ in pairs))
    if not ids:
        return {}
    wanted = set(pairs)
    rows = await RecordVersion.filter(record_id__in=ids).values_list("record_id", "version", "digest")
    return {(str(r), int(v)): str(d) for r, v, d in rows if (r, v) in wanted}


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
    #: The hub's address is the operator's choice (``ncc enroll --hub``), so private addresses are
    #: allowed here; redirects, sizes and time are bounded as for every federation call.
    client: FedClient = field(default_factory=lambda: FedClient(allow_private=True))
    # back-off while the hub refuses the node (see notify_if_needed)
    _refusals: int = 0
    _retry_at: float = 0.0
    _refused_enrollment: Any = None
    #: The node announces itself once when it starts serving (``run_notifier``), whether or not its
    #: feed moved: a hub that marked it unreachable while it was down pulls it within seconds instead
    #: of at its next scheduled pull or back-off.
    announce: bool = False

    async def close(self) -> None:
        await self.client.close()

    def service_token(self) -> str:
        key = self.key()
        return issue_service_token(key.private_key, key.kid, self.settings.country, "hub", self.clock(),
                                    ttl_s=self.settings.service_token_ttl_s)

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
        try:
            # with this node's token: the hub then includes the sharing groups (DESIGN §15)
            doc = await self.hub_get(enrollment["hub_url"], "/federation/v1/directory")
        except FederationError as exc:
            if not exc.refused:
                raise
            # a key the hub refuses (revoked: the directory says so) still reads the public directory
            doc = await self._get(enrollment["hub_url"], "/federation/v1/directory")
        try:
            previous = Directory.from_dict(held)
            verify_directory(doc, self.clock(), previous=previous)
        except ProtocolError as exc:
            raise FederationError(f"hub directory rejected: {exc.code}: {exc.detail}") from exc
        if doc.get("serial") != held.get("serial"):
            await set_state(DIRECTORY_KEY, doc)
        return dict(doc)

    async def hub_view(self) -> Any:
        """What the hub holds of this node (``node.services.resign.HubView``): its cursor (public
        ``GET /api/v1/nodes``) and the records of this node it quarantined as signed by a revoked or
        retired key (``GET /federation/v1/quarantine``, this node's own); None when the hub cannot tell.
        """
        from node.services.resign import HubView

        enrollment = await self.enrollment()
        if enrollment is None:
            return None
        try:
            nodes = await self._get(enrollment["hub_url"], "/api/v1/nodes")
            row = next((n for n in nodes if isinstance(n, dict) and n.get("country") == self.settings.country),
                       None) if isinstance(nodes, list) else None
            cursor = row.get("cursor") if row else None
            if type(cursor) is not int:
                return None
            refused: set[str] = set()
            after = 0
            for _ in range(QUARANTINE_PAGES):
                page = await self._call("GET", enrollment["hub_url"], f"/federation/v1/quarantine?limit=1000&after={after}",
                                        {"Authorization": f"Bearer {self.service_token()}"}, None)
                items = page.get("items") if isinstance(page, dict) else None
                if not isinstance(items, list):
                    return None
                refused |= {str(i["record_id"]) for i in items if isinstance(i, dict)
                            and i.get("code") in ("key_revoked", "key_expired") and isinstance(i.get("record_id"), str)}
                following = page.get("next_after")
                if type(following) is not int:
                    return HubView(cursor, frozenset(refused))
                after = following
        except FederationError:
            return None
        return None

    # -- notifications -------------------------------------------------------------------------

    async def notify_if_needed(self) -> bool:
        """Tell the hub to pull if the feed moved since the last successful notification (or, with
        ``announce`` set, once in any case: the node has just started).

        While the hub refuses this node (401/403: suspended, key revoked, …) the notifications back off
        (doubling from ``notify_retry_s`` up to ``notify_backoff_max_s``), each refusal logged with the
        hub's reason; a new enrollment ends the back-off at once.

        Returns True when nothing was pending or the hub took the notification.
        """
        enrollment = await self.enrollment()
        if enrollment is None:
            self.announce = False  # not enrolled when it started: `ncc enroll` notifies the hub itself
            return True
        if self._refusals and enrollment.get("enrolled_at") != self._refused_enrollment:
            self._refusals, self._retry_at = 0, 0.0  # re-enrolled (by `ncc enroll`, another process)
        if self._refusals and time.monotonic() < self._retry_at:
            return False
        head = await feed_head()
        notified = await get_state(NOTIFIED_KEY) or 0
        if head <= notified and not self.announce:
            return True
        try:
            await self._post(enrollment["hub_url"], "/federation/v1/notify", {"country": self.settings.country})
        except FederationError as exc:
            if exc.status == 429:
                # throttled: the hub pulls at the end of its interval anyway; the next retry confirms
                log.debug("notify throttled by the hub; will retry")
                return False
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
        self.announce = False
        await set_state(NOTIFIED_KEY, head)
        return True

    def refused_backoff_s(self) -> float:
        """The wait before the next notification after ``_refusals`` refusals in a row."""
        base = float(self.settings.notify_retry_s)
        return min(base * 2 ** max(self._refusals - 1, 0), max(base, self.settings.notify_backoff_max_s))

    async def run_notifier(self, stop: asyncio.Event | None = None) -> None:
        """Background loop: notify after writes (woken by the publisher) and retry periodically.

        Setting ``stop`` (and ``wake``) ends the loop between notifications, so shutdown never
        cancels it in the middle of a database query.
        """
        stop = stop or asyncio.Event()
        self.announce = True  # the first notification says "I am up" (retried until the hub takes it)
        while not stop.is_set():
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=self.settings.notify_retry_s)
            except TimeoutError:
                pass
            self.wake.clear()
            if await idle(stop, NOTIFY_COALESCE_S):  # a stop ends the wait at once (it cost every stop 0.2 s)
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
        return await self._call("POST", base, path, headers, orjson.dumps(body))

    async def _get(self, base: str, path: str) -> Any:
        return await self._call("GET", base, path, {}, None)

    async def _call(self, method: str, base: str, path: str, headers: dict[str, str], data: bytes | None) -> Any:
        try:
            response = await self.client.request(method, base.rstrip("/") + path, HUB_ANSWER_LIMITS,
                                                 headers=headers, data=data, expect_status=None)
        except FedError as exc:
            raise FederationError(f"hub unreachable at {base}: {exc.summary()}", exc.status) from exc
        return _answer(response)

    async def hub_get(self, base: str, path: str, auth: bool = True) -> Any:
        """GET a JSON answer from the hub (or a peer node), with this node's service token when ``auth``.

        Raises:
            FederationError: unreachable, or an error answer (with its status and code).
        """
        headers = {"Authorization": f"Bearer {self.service_token()}"} if auth else {}
        return await self._call("GET", base, path, headers, None)  # bounded, no redirects (fedclient)


#: Quarantine pages read when asking the hub what it refused (1000 items each; the hub keeps at most
#: quarantine_max_rows = 10,000 per node by default).
QUARANTINE_PAGES = 20

#: What a node reads of its hub's answers (a signed directory of 30 nodes is a few tens of KB).
HUB_ANSWER_LIMITS = Limits(max_bytes=8 * 1024 * 1024, timeout_s=30)


def _answer(response: FedResponse) -> Any:
    raw = response.body
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

