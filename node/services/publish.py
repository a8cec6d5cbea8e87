"""Node writes: validate, sign, store every version, update the change feed — in one transaction.

Every change becomes a new signed version. The feed table holds, per record, the latest version
that may leave the node (never a ``national`` one), keyed by the node-local sequence number that
was allocated in the same transaction, so the hub's cursor never skips a committed change.

Visibility dropping to ``national`` is one change, version N+1 (DESIGN §3: +1 on every change).
The hub must forget the record, so what the feed publishes for N+1 is a ``withdrawn`` tombstone
(with the previous visibility), while the node stores the national N+1: the two envelopes of N+1
never meet outside the node, because a national version never leaves it (no feed, no hub, no
federated query). The tombstone lives in the feed only (``record_versions`` keeps the node's own
versions).

Sharing groups (DESIGN §15) follow the same rule: a ``group:<name>`` version goes to the feed only
while this node's country is a member of the group (the hub's directory says so). When it leaves,
:meth:`Publisher.reconcile_groups` publishes each such record's next version as a ``withdrawn``
tombstone in the feed, keeping the record's own version ``group:<name>`` on the node; when it joins
again, the next version is published as it is.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from federation.envelope import (
    RECORD_TYPES,
    TOMBSTONE_REASONS,
    VISIBILITIES,
    Envelope,
    record_id,
    sign_record,
    sign_record_with_digest,
)
from federation.errors import ConsentMissing, GroupInvalid, SchemaInvalid
from federation.groups import group_of, is_visibility
from federation.schemas import SchemaRegistry
from federation.timefmt import format_timestamp
from federation.verify import consent_covers
from node.errors import ApiError, Gone, InvalidParameter, NotFound, VersionConflict
from node.keystore import InstanceKey
from node.services.erasure import record_erasure
from node.services.schema_versions import SchemaVersions
from node.storage import sql
from node.storage.gatekeeper_models import Application, VersionEvent
from node.storage.models import FeedEntry, FeedWithdrawal, Record, RecordVersion
from node.storage.reads import held_member_groups

if TYPE_CHECKING:
    from node.search.base import SearchDoc

#: How long the sharing groups read from the held directory are trusted before a write reads them again.
GROUPS_REFRESH_S = 5.0


# Membership workflow of Art. 8(4): which status may follow which. A new record may carry any
# status (an NCC bringing in its existing registry has registered, rejected and revoked members).
MEMBERSHIP_TRANSITIONS: Mapping[str | None, frozenset[str]] = {
    None: frozenset({"applied", "assessed", "registered", "rejected", "revoked"}),
    "applied": frozenset({"applied", "assessed", "rejected"}),
    "assessed": frozenset({"assessed", "registered", "rejected"}),
    "registered": frozenset({"registered", "revoked"}),
    "rejected": frozenset({"rejected", "applied"}),
    "revoked": frozenset({"revoked", "applied"}),
}


class InvalidTransition(ApiError):
    code, status, title = "invalid_transition", 422, "Membership status change not allowed"


class RecordIndex(Protocol):
    """What the publisher needs from the search index (same transaction as the record)."""

    async def index(self, conn: BaseDBAsyncClient, envelope: Mapping[str, Any]) -> None: ...

    async def remove(self, conn: BaseDBAsyncClient, record_ids: list[str]) -> None: ...


_INSERT_VERSION = (
    "INSERT INTO record_versions (record_id, version, seq, visibility, deleted, issued_at, digest, envelope)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_RECORD = (
    "INSERT INTO records (id, type, origin, version, visibility, deleted, seq, issued_at, envelope)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_FEED = "INSERT INTO feed (record_id, seq, envelope) VALUES (?, ?, ?)"


@dataclass(frozen=True, slots=True)
class Created:
    """A new record (version 1), signed and ready for :meth:`Publisher.store_created`: its stored
    text, the digest of its signing input and its search document (None when the publisher has no
    index that builds documents). Plain values: ``ncc import``'s signing worker sends them across
    processes."""

    id: str
    type: str
    origin: str
    visibility: str
    issued_at: str
    digest: str
    text: str
    doc: SearchDoc | None = None


@dataclass(frozen=True)
class Actor:
    """Who causes a version (DESIGN §12 history): a token's subject, ``applicant``, an import…

    Kept with the version in the ``version_events`` side table, never in the signed envelope.
    """

    name: str
    kind: str = "user"  # user | applicant | import | system
    decision: str | None = None
    ground: str | None = None
    note: str | None = None


#: Called inside the write's transaction with the new envelope (queue mails with the version).
AfterWrite = Callable[[BaseDBAsyncClient, Envelope], Awaitable[None]]


@dataclass(frozen=True)
class Amendment:
    """What :meth:`Publisher.amend` writes: the next payload and visibility; ``feed_reason`` is the
    tombstone reason the feed publishes when the record turns national (``withdrawn``, ``revoked``)."""

    payload: dict[str, Any]
    visibility: str
    feed_reason: str = "withdrawn"


def changed_pointers(old: Any, new: Any, prefix: str = "") -> list[str]:
    """JSON pointers of the values that differ between two payloads (objects compared key by key)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            pointer = f"{prefix}/{key.replace('~', '~0').replace('/', '~1')}"
            if key not in old or key not in new:
                out.append(pointer)
            else:
                out.extend(changed_pointers(old[key], new[key], pointer))
        return out
    return [] if old == new else [prefix or "/"]


def dumps(envelope: Envelope) -> str:
    return orjson.dumps(envelope.to_dict()).decode()


@dataclass
class Publisher:
    """Creates, updates and withdraws this node's records."""

    country: str
    key: Callable[[], InstanceKey]
    registry: SchemaRegistry
    clock: Callable[[], datetime]
    index: RecordIndex | None = None
    on_published: Callable[[], None] | None = None
    #: Which schema version writes use (the newest the hub accepts); built from ``registry`` if None.
    schemas: SchemaVersions | None = None

    def __post_init__(self) -> None:
        if self.schemas is None:
            self.schemas = SchemaVersions(self.registry)
        self.groups: frozenset[str] = frozenset()  # the sharing groups this node is a member of
        self._groups_at: float | None = None

    async def refresh(self, force: bool = False) -> None:
        """Re-read what the held hub directory says: accepted schemas and this node's sharing groups
        (at most every few seconds, or now with ``force``)."""
        assert self.schemas is not None
        await self.schemas.refresh(force)
        now = time.monotonic()
        if force or self._groups_at is None or now - self._groups_at >= GROUPS_REFRESH_S:
            self.groups = await held_member_groups(self.country)
            self._groups_at = now

    def shares(self, visibility: str) -> bool:
        """Whether a version of this visibility goes to the feed: not ``national``, and a group's only
        while this node is a member of it."""
        group = group_of(visibility)
        return visibility != "national" and (group is None or group in self.groups)

    # -- validation ----------------------------------------------------------------------------

    def check_payload(self, rtype: str, visibility: str, payload: Any) -> str:
        """Validate what a client sent before anything is signed; return the schema it is written
        with (``organisation/2`` once the hub accepts it, see ``node/services/schema_versions.py``).

        Raises:
            SchemaInvalid: unknown type/visibility, not an object, or payload fails the schema.
            ConsentMissing: an expert shared beyond the node without consent covering it.
        """
        if rtype not in RECORD_TYPES:
            raise SchemaInvalid(f"unknown record type {rtype!r}", [{"pointer": "/type", "message": "unknown"}])
        if visibility not in VISIBILITIES and not is_visibility(visibility):
            if isinstance(visibility, str) and visibility.startswith("group:"):
                raise GroupInvalid(f"{visibility[:80]!r}: a group name matches ^[a-z0-9-]{{1,63}}$")
            raise SchemaInvalid(
                f"unknown visibility {visibility!r}", [{"pointer": "/visibility", "message": "unknown"}]
            )
        group = group_of(visibility)
        if group is not None and group not in self.groups:
            raise GroupInvalid(f"{self.country} is not a member of the sharing group {group} (the hub's directory"
                               " lists the groups and their members)")
        if not isinstance(payload, dict):
            raise SchemaInvalid("payload must be an object", [{"pointer": "/payload", "message": "not an object"}])
        assert self.schemas is not None
        schema = self.schemas.validate(rtype, payload)
        if rtype == "organisation" and payload.get("country") != self.country:
            raise SchemaInvalid(
                f"an organisation registered at the {self.country} NCC must be established in {self.country}",
                [{"pointer": "/country", "message": f"must be {self.country}"}],
            )
        if rtype == "expert" and visibility != "national" and not consent_covers(payload, visibility):
            raise ConsentMissing(
                f"an expert record may be {visibility} only with the expert's consent covering it"
            )
        return schema

    @staticmethod
    def check_transition(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> None:
        before = ((old or {}).get("membership") or {}).get("status")
        after = (new.get("membership") or {}).get("status")
        if after is None:
            if before is not None:  # else a PUT without it, then one with any status, skips the workflow
                raise InvalidTransition(
                    f"membership status {before} cannot be removed; change it to a status that may follow it")
            return
        if after not in MEMBERSHIP_TRANSITIONS.get(before, frozenset()):
            raise InvalidTransition(f"membership status cannot change from {before} to {after}")

    # -- writes --------------------------------------------------------------------------------

    async def create(self, rtype: str, visibility: str, payload: Any, *, actor: Actor | None = None,
                     then: AfterWrite | None = None) -> Envelope:
        """Create a record (version 1); ``actor`` goes to the history, ``then`` runs in the transaction.

        Raises:
            SchemaInvalid, ConsentMissing, InvalidTransition: the input is not acceptable.
        """
        await self.refresh()
        schema = self.check_payload(rtype, visibility, payload)
        self.check_transition(None, payload)
        rid = record_id(self.country, rtype, str(uuid.uuid4()))
        async with in_transaction() as conn:
            env = await self._write(conn, rid, rtype, 1, visibility, False, payload, schema, previous=None,
                                    actor=actor)
            if then is not None:
                await then(conn, env)
        self._published()
        return env

    def prepare_create(self, rtype: str, visibility: str, payload: Any, rid: str | None = None) -> Created:
        """Check and sign a new record (version 1) as :meth:`create` does, without storing it: for
        callers that store many at once with :meth:`store_created` (``ncc import``). The caller
        refreshes ``schemas`` first (:meth:`create` does it for every record; an import once).
        ``rid``: the id to give it (made here if None).

        Raises:
            SchemaInvalid, ConsentMissing, InvalidTransition: the input is not acceptable.
        """
        schema = self.check_payload(rtype, visibility, payload)
        self.check_transition(None, payload)
        rid = rid or record_id(self.country, rtype, str(uuid.uuid4()))
        key = self.key()
        env, digest = sign_record_with_digest(
            self._fields(rid, rtype, 1, visibility, False, payload, schema), key.private_key, key.kid
        )
        wire = env.to_dict()
        document = getattr(self.index, "document", None)
        return Created(env.id, env.type, env.origin, env.visibility, wire["issued_at"], digest,
                       orjson.dumps(wire).decode(), document(wire) if document is not None else None)

    async def store_created(self, created: Sequence[Created]) -> None:
        """Store new records made by :meth:`prepare_create` in one transaction — every version row,
        current row, feed entry and index document :meth:`create` would write for each, in a few
        statements instead of a few per record.

        Raises the driver's errors (wrapped by tortoise); the transaction then rolled back, nothing
        of ``created`` is written.
        """
        if not created:
            return
        async with in_transaction() as conn:
            first = await sql.next_sequences(conn, len(created))
            versions: list[list[Any]] = []
            current: list[list[Any]] = []
            feed: list[list[Any]] = []
            for seq, c in enumerate(created, start=first):
                versions.append([c.id, 1, seq, c.visibility, False, c.issued_at, c.digest, c.text])
                current.append([c.id, c.type, c.origin, 1, c.visibility, False, seq, c.issued_at, c.text])
                if self.shares(c.visibility):
                    feed.append([c.id, seq, c.text])
            await conn.execute_many(sql.placeholders(conn, _INSERT_VERSION), versions)
            await conn.execute_many(sql.placeholders(conn, _INSERT_RECORD), current)
            if feed:
                await conn.execute_many(sql.placeholders(conn, _INSERT_FEED), feed)
            if self.index is not None:
                insert_new = getattr(self.index, "insert_new", None)
                if insert_new is not None and all(c.doc is not None for c in created):
                    await insert_new(conn, [c.doc for c in created])  # ids just made: nothing held to replace
                else:
                    for c in created:
                        await self.index.index(conn, orjson.loads(c.text))
        self._published()

    async def update(self, rid: str, payload: Any, version: Any, visibility: str | None = None, *,
                     actor: Actor | None = None,
                     guard: Callable[[dict[str, Any], Any], Any] | None = None) -> Envelope:
        """Replace a record's payload; ``version`` is the version the client is replacing.

        Raises:
            NotFound, Gone, VersionConflict, SchemaInvalid, ConsentMissing, InvalidTransition.
        """
        if not isinstance(version, int) or isinstance(version, bool):
            raise SchemaInvalid("version must be an integer", [{"pointer": "/version", "message": "required integer"}])
        await self.refresh()
        async with in_transaction() as conn:
            current = await self._lock(conn, rid)
            if current.deleted:
                raise Gone(f"{rid} was deleted")
            if version != current.version:
                raise VersionConflict(
                    f"{rid} is at version {current.version}, not {version}", current_version=current.version
                )
            vis = visibility if visibility is not None else current.visibility
            old = orjson.loads(current.envelope)
            if guard is not None:  # the caller's rule against the current payload (membership: §12)
                payload = guard(old["payload"], payload)
            schema = self.check_payload(current.type, vis, payload)
            self.check_transition(old["payload"], payload)
            next_version = current.version + 1
            if not self.shares(vis) and await self._feed_live(conn, rid):
                await self._withdraw_from_feed(conn, rid, current.type, next_version, current.visibility, old["schema"])
            env = await self._write(conn, rid, current.type, next_version, vis, False, payload, schema,
                                    previous=current, actor=actor)
        self._published()
        return env

    async def amend(self, rid: str, change: Callable[[Record, dict[str, Any]], Amendment], actor: Actor, *,
                    then: AfterWrite | None = None) -> Envelope:
        """Write the next version that ``change(current record, current payload)`` computes, inside the
        write's transaction (so the rule it applies sees the version it replaces): the gatekeeper's
        decisions. A record turning national publishes a tombstone with ``feed_reason``.

        Raises:
            NotFound, Gone, and whatever ``change`` or the payload checks raise.
        """
        await self.refresh()
        async with in_transaction() as conn:
            current = await self._lock(conn, rid)
            if current.deleted:
                raise Gone(f"{rid} was deleted")
            old = orjson.loads(current.envelope)
            amendment = change(current, old["payload"])
            schema = self.check_payload(current.type, amendment.visibility, amendment.payload)
            next_version = current.version + 1
            if not self.shares(amendment.visibility) and await self._feed_live(conn, rid):
                await self._withdraw_from_feed(conn, rid, current.type, next_version, current.visibility,
                                               old["schema"], reason=amendment.feed_reason)
            env = await self._write(conn, rid, current.type, next_version, amendment.visibility, False,
                                    amendment.payload, schema, previous=current, actor=actor)
            if then is not None:
                await then(conn, env)
        self._published()
        return env

    async def sign_again(self, rid: str, needed: Callable[[dict[str, Any]], bool]) -> bool:
        """Publish the record's current content (payload, visibility, deleted) as its next version,
        signed with the current key, if ``needed(<the envelope the feed publishes for it>)`` still
        holds inside the transaction; return whether it did (after a key revocation: see
        ``node/services/resign.py``). A national record's feed face — the ``withdrawn`` tombstone —
        is signed again with it.
        """
        await self.refresh()
        async with in_transaction() as conn:
            current = await self._lock(conn, rid)
            feed = await FeedEntry.filter(record_id=rid).using_db(conn).first()
            if feed is None:
                return False
            shared = orjson.loads(feed.envelope)
            if not needed(shared):
                return False
            version = current.version + 1
            held = orjson.loads(current.envelope)
            if not self.shares(current.visibility):
                await self._withdraw_from_feed(conn, rid, current.type, version, shared["visibility"], held["schema"])
            await self._write(conn, rid, current.type, version, current.visibility, current.deleted, held["payload"],
                              held["schema"], previous=current)
        self._published()
        return True

    async def delete(self, rid: str, reason: str, *, actor: Actor | None = None) -> Envelope:
        """Publish a tombstone; ``erased`` also purges the payloads of all older versions.

        Raises:
            NotFound, Gone, InvalidParameter (unknown reason).
        """
        if reason not in TOMBSTONE_REASONS:
            raise InvalidParameter(f"reason must be one of {', '.join(TOMBSTONE_REASONS)}")
        async with in_transaction() as conn:
            current = await self._lock(conn, rid)
            if current.deleted:
                raise Gone(f"{rid} was already deleted")
            # a tombstone names the schema of the version it ends (it carries no payload to validate)
            env = await self._write(
                conn, rid, current.type, current.version + 1, current.visibility, True,
                {"reason": reason}, orjson.loads(current.envelope)["schema"], previous=current, actor=actor,
            )
            if reason == "erased":
                await RecordVersion.filter(record_id=rid, version__lt=env.version).using_db(conn).update(
                    envelope=None
                )
                # the purge job scrubs what the files still hold (index segments, WAL, free pages)
                await record_erasure(conn, rid, env.version, self.clock())
                # the history's notes and the application it came from are its payload too (GDPR Art. 17)
                await VersionEvent.filter(record_id=rid).using_db(conn).update(note=None)
                await Application.filter(record_id=rid).using_db(conn).update(body="{}", name="", email="")
        self._published()
        return env

    async def write_version(
        self, conn: BaseDBAsyncClient, rid: str, rtype: str, version: int, visibility: str, deleted: bool,
        payload: dict[str, Any], *, previous: Record, shared_as: str, schema: str,
    ) -> Envelope:
        """Sign and store ``version`` of an existing record in the caller's (write-locked) transaction:
        ``ncc recover`` signing content again above the hub's version (node.services.recover). A
        national version puts its ``withdrawn`` tombstone (visibility ``shared_as``) in the feed.
        ``schema`` is the schema the content was signed with before (``organisation/2``)."""
        if self._groups_at is None:
            self.groups = await held_member_groups(self.country, conn)
            self._groups_at = time.monotonic()
        if not self.shares(visibility):
            await self._withdraw_from_feed(conn, rid, rtype, version, shared_as, schema)
        env = await self._write(conn, rid, rtype, version, visibility, deleted, payload, schema, previous=previous)
        if deleted and payload.get("reason") == "erased":
            await record_erasure(conn, rid, version, self.clock())  # the purge job scrubs the files
        return env

    async def reconcile_groups(self) -> tuple[int, int]:
        """Bring the feed in line with this node's sharing groups in the held directory (DESIGN §15):
        every live group record whose group the node left gets its next version, published in the feed
        as a ``withdrawn`` tombstone (the record keeps its visibility on the node); every one whose
        group it is a member of again, and whose feed face is a tombstone, is published again as its
        next version. Returns (withdrawn, republished)."""
        await self.refresh(force=True)
        withdrawn = republished = 0
        async with in_transaction() as conn:
            await sql.lock_writes(conn)
            self.groups = await held_member_groups(self.country, conn)  # read under the write lock
            rows = await Record.filter(deleted=False, visibility__startswith="group:").using_db(conn)
            for rec in rows:
                live = await self._feed_live(conn, rec.id)
                shares = self.shares(rec.visibility)
                if live == shares:
                    continue
                held = orjson.loads(rec.envelope)
                version = rec.version + 1
                if live:  # left the group: the hub must forget it
                    await self._withdraw_from_feed(conn, rec.id, rec.type, version, rec.visibility, held["schema"])
                    withdrawn += 1
                else:
                    republished += 1
                await self._write(conn, rec.id, rec.type, version, rec.visibility, False, held["payload"],
                                  held["schema"], previous=rec, actor=Actor("sharing groups", kind="system"))
        if withdrawn or republished:
            self._published()
        return withdrawn, republished

    @staticmethod
    async def _feed_live(conn: BaseDBAsyncClient, rid: str) -> bool:
        """Whether the feed publishes a live version of the record (not a tombstone, not nothing)."""
        feed = await FeedEntry.filter(record_id=rid).using_db(conn).first()
        return feed is not None and not orjson.loads(feed.envelope).get("deleted")

    async def _lock(self, conn: BaseDBAsyncClient, rid: str) -> Record:
        await sql.lock_writes(conn)
        rec = await Record.filter(id=rid).using_db(conn).select_for_update().first()
        if rec is None:
            raise NotFound(f"no record {rid}")
        return rec

    async def _withdraw_from_feed(
        self, conn: BaseDBAsyncClient, rid: str, rtype: str, version: int, visibility: str, schema: str,
        reason: str = "withdrawn",
    ) -> Envelope:
        """Put the ``withdrawn`` (or ``revoked``) tombstone of ``version`` (the version that turns the
        record national) into the feed, in place of what the feed published for the record."""
        seq = await sql.next_sequence(conn)
        env = self._sign(rid, rtype, version, visibility, True, {"reason": reason}, schema)
        text = dumps(env)
        if not await FeedEntry.filter(record_id=rid).using_db(conn).update(seq=seq, envelope=text):
            await FeedEntry.create(record_id=rid, seq=seq, envelope=text, using_db=conn)
        # record_versions keeps the national version: this face is remembered for the divergence check
        await FeedWithdrawal.create(seq=seq, record_id=rid, version=version, digest=env.digest(), using_db=conn)
        return env

    def _sign(
        self, rid: str, rtype: str, version: int, visibility: str, deleted: bool, payload: dict[str, Any],
        schema: str,
    ) -> Envelope:
        key = self.key()
        return sign_record(
            self._fields(rid, rtype, version, visibility, deleted, payload, schema), key.private_key, key.kid
        )

    def _fields(
        self, rid: str, rtype: str, version: int, visibility: str, deleted: bool, payload: dict[str, Any],
        schema: str,
    ) -> dict[str, Any]:
        return {
            "ncc": 1,
            "id": rid,
            "type": rtype,
            "schema": schema,
            "origin": self.country,
            "version": version,
            "issued_at": format_timestamp(self.clock()),
            "visibility": visibility,
            "deleted": deleted,
            "payload": payload,
        }

    async def _write(
        self,
        conn: BaseDBAsyncClient,
        rid: str,
        rtype: str,
        version: int,
        visibility: str,
        deleted: bool,
        payload: dict[str, Any],
        schema: str,
        previous: Record | None,
        actor: Actor | None = None,
    ) -> Envelope:
        seq = await sql.next_sequence(conn)
        env = self._sign(rid, rtype, version, visibility, deleted, payload, schema)
        text = dumps(env)
        issued = format_timestamp(env.issued_at)
        await RecordVersion.create(
            record_id=rid, version=version, seq=seq, visibility=visibility, deleted=deleted,
            issued_at=issued, digest=env.digest(), envelope=text, using_db=conn,
        )
        if previous is None:
            await Record.create(
                id=rid, type=rtype, origin=self.country, version=version, visibility=visibility,
                deleted=deleted, seq=seq, issued_at=issued, envelope=text, using_db=conn,
            )
        else:
            await Record.filter(id=rid).using_db(conn).update(
                version=version, visibility=visibility, deleted=deleted, seq=seq,
                issued_at=issued, envelope=text,
            )
        if self.shares(visibility):
            updated = await FeedEntry.filter(record_id=rid).using_db(conn).update(seq=seq, envelope=text)
            if not updated:
                await FeedEntry.create(record_id=rid, seq=seq, envelope=text, using_db=conn)
        if self.index is not None:
            if deleted:
                await self.index.remove(conn, [rid])
            else:
                await self.index.index(conn, env.to_dict())
        if actor is not None:
            before = orjson.loads(previous.envelope)["payload"] if previous is not None else {}
            changed = changed_pointers(before, payload)
            if previous is not None and previous.visibility != visibility:
                changed.append("visibility")  # not a payload field: named as the envelope's
            await VersionEvent.create(
                record_id=rid, version=version, at=issued, actor=actor.name[:200], actor_kind=actor.kind,
                decision=actor.decision, ground=actor.ground, note=actor.note,
                changed=orjson.dumps(changed).decode(), using_db=conn,
            )
        return env

    def _published(self) -> None:
        if self.on_published is not None:
            self.on_published()
