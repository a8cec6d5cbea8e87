"""Node side of "regression is never silent" (DESIGN §11): the feed state the hub checks before each
pull, and ``ncc recover``.

``ncc recover`` runs after the node was restored from a backup or replaced by a new instance (the hub
then reports it ``diverged``, or holds records of the old instance the new one lacks):

1. read back, page by page, every record the hub holds from this node (``GET /federation/v1/records``);
2. verify each against the node's OWN keys — current and retired, plus kids the operator names with
   ``--trust-key`` (a replaced instance's old keys) — never against what the hub says: the hub is the
   node's off-site copy, and a copy may lie. A record that does not verify is refused and reported;
3. reconcile each (:func:`federation.divergence.reconcile`): take back what the node lacks, sign again
   above the hub's version what the node holds differently (so a restored node's version 2 that
   differs from the hub's version 2 becomes version 3, never an equivocation), keep what is newer;
4. ask the hub to resume (``POST /federation/v1/resume``): its cursor restarts from 0 in a new epoch
   and its next pull takes everything the node holds that it lacks — exact equality on both sides.

It works on a stopped node and on a serving one (each record in its own write transaction, as the
publisher's). National records written after the backup never left the node: nothing can bring them
back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import aiohttp
import orjson
from tortoise.transactions import in_transaction

from federation import strictjson
from federation.directory import Directory, KeyEntry, NodeEntry
from federation.divergence import Action, Anchor, Local, Remote, holds, next_version, reconcile
from federation.envelope import Envelope
from federation.errors import ProtocolError
from federation.schemas import SchemaRegistry
from federation.timefmt import format_timestamp, parse_timestamp
from federation.tokens import issue_service_token
from federation.verify import verify
from node.keystore import InstanceKey
from node.services.erasure import record_erasure
from node.services.nodefed import DIRECTORY_KEY, NOTIFIED_KEY, feed_head, get_state, set_state
from node.services.publish import Publisher
from node.storage import sql
from node.storage.models import FeedEntry, FeedWithdrawal, Record, RecordVersion

#: Records per page read back from the hub; a page's bytes are bounded by the hub (8 MiB) and here.
PAGE = 100
PAGE_MAX_BYTES = 16 * 1024 * 1024 + 65536
ANSWER_MAX_BYTES = 65536
_EPOCH_START = datetime(1970, 1, 1, tzinfo=UTC)


class RecoverError(Exception):
    """Recovery could not run (not enrolled, the hub unreachable or refusing); one line for the CLI."""


# -- the feed state the hub asks for -----------------------------------------------------------------


async def anchor_held(anchor: Anchor) -> bool:
    """Whether this node holds ``anchor``: that version of that record, first fed at that sequence,
    with that digest — as its own version, as the ``withdrawn`` tombstone its feed published, or as
    the feed's current face (a tombstone published before tombstones were remembered)."""
    row = await RecordVersion.filter(record_id=anchor.id, version=anchor.version).first()
    if row is not None and holds(anchor, int(row.seq), row.digest):
        return True
    withdrawal = await FeedWithdrawal.filter(seq=anchor.seq).first()
    if withdrawal is not None and (withdrawal.record_id, int(withdrawal.version)) == (anchor.id, anchor.version):
        return holds(anchor, int(withdrawal.seq), withdrawal.digest)
    face = await FeedEntry.filter(record_id=anchor.id, seq=anchor.seq).first()
    if face is not None:
        env = Envelope.from_dict(orjson.loads(face.envelope))
        return env.version == anchor.version and holds(anchor, int(face.seq), env.digest())
    return False


async def feed_state(anchor: Anchor | None) -> dict[str, Any]:
    """``{"head", "holds"}`` for ``GET /federation/v1/changes/head`` (``holds`` null without an anchor)."""
    return {"head": await feed_head(), "holds": None if anchor is None else await anchor_held(anchor)}


# -- whose keys --------------------------------------------------------------------------------------


class OwnKeys:
    """What :func:`federation.verify.verify` reads of a directory, holding only this node's own keys:
    a record verifies only if one of them signed it (the hub's directory is not trusted for this)."""

    serial = 0

    def __init__(self, country: str, keys: Iterable[KeyEntry]) -> None:
        self._node = NodeEntry(country, "https://recover.invalid", "active", "replicate", tuple(keys))

    def node(self, country: str) -> NodeEntry | None:
        return self._node if country == self._node.country else None

    @property
    def kids(self) -> list[str]:
        return [k.kid for k in self._node.keys]


def own_keys(country: str, keys: Iterable[InstanceKey], held_directory: Mapping[str, Any] | None,
             trusted_kids: Iterable[str] = ()) -> OwnKeys:
    """The node's own keys (valid since ever: the node vouches for what it signed), revoked from when
    the directory it holds says so (a stolen key's later signatures are not its own); plus the keys of
    ``trusted_kids``, which must be this country's keys in that directory (an old instance's).

    Raises:
        RecoverError: a trusted kid is not a key of this country in the directory the node holds.
    """
    listed: dict[str, KeyEntry] = {}
    if held_directory is not None:
        entry = Directory.from_dict(held_directory).node(country)
        listed = {k.kid: k for k in entry.keys} if entry is not None else {}
    out: dict[str, KeyEntry] = {}
    for key in keys:
        revoked = listed[key.kid].revoked_at if key.kid in listed else None
        out[key.kid] = KeyEntry(key.kid, key.public_raw, _EPOCH_START, None, revoked)
    for kid in trusted_kids:
        if kid in out:
            continue
        if kid not in listed:
            raise RecoverError(f"--trust-key {kid}: not a key of {country} in the hub's directory")
        k = listed[kid]
        out[kid] = KeyEntry(kid, k.public_key, k.not_before, k.not_after, k.revoked_at)
    return OwnKeys(country, out.values())


# -- reconciling -------------------------------------------------------------------------------------


@dataclass
class Report:
    """What a recovery did, record by record."""

    actions: Counter[Action] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)  # "<id> v<version>: <code>"
    unknown_kids: set[str] = field(default_factory=set)
    epoch: int | None = None

    def summary(self) -> str:
        a = self.actions
        line = (f"took back {a[Action.TAKE]}, signed again {a[Action.RESIGN] + a[Action.ADOPT]}, kept newer "
                f"{a[Action.KEEP]}, unchanged {a[Action.EQUAL]}, refused {len(self.refused)}")
        if self.epoch is not None:
            line += f"; the hub pulls this node again from 0 (feed epoch {self.epoch})"
        return line


def _dumps(env: Envelope) -> str:
    return orjson.dumps(env.to_dict()).decode()


@dataclass
class Recovery:
    """Reconciles this node with the records the hub holds from it (see the module doc)."""

    country: str
    publisher: Publisher
    registry: SchemaRegistry
    keys: OwnKeys
    clock: Callable[[], datetime]
    report: Report = field(default_factory=Report)

    async def apply(self, records: Iterable[Any]) -> None:
        """Verify and reconcile one page of the hub's records (each in its own transaction)."""
        for raw in records:
            rid = raw.get("id") if isinstance(raw, dict) else None
            version = raw.get("version") if isinstance(raw, dict) else None
            try:
                verified = verify(raw, cast(Directory, self.keys), self.clock(), self.registry,
                                  feed_origin=self.country)
            except ProtocolError as exc:
                self.report.refused.append(f"{str(rid)[:120]} v{version}: {exc.code}")
                kid = raw.get("sig", {}).get("kid") if isinstance(raw, dict) and isinstance(raw.get("sig"), dict) else None
                if exc.code == "unknown_key" and isinstance(kid, str):
                    self.report.unknown_kids.add(kid[:40])
                continue
            if verified.envelope.visibility == "national":  # never held by an honest hub; never taken
                self.report.refused.append(f"{verified.envelope.id} v{verified.envelope.version}: visibility_national")
                continue
            self.report.actions[await self._reconcile(verified.envelope, verified.digest)] += 1

    async def _reconcile(self, remote: Envelope, digest: str) -> Action:
        async with in_transaction() as conn:
            await sql.lock_writes(conn)
            rec = await Record.filter(id=remote.id).using_db(conn).select_for_update().first()
            local = None
            if rec is not None:
                face = await FeedEntry.filter(record_id=remote.id).using_db(conn).first()
                face_env = Envelope.from_dict(orjson.loads(face.envelope)) if face is not None else None
                local = Local(int(rec.version), parse_timestamp(rec.issued_at), bool(rec.deleted),
                              face_env.version if face_env else None, face_env.digest() if face_env else None)
            erased = remote.deleted and remote.payload.get("reason") == "erased"
            action = reconcile(local, Remote(remote.version, digest, remote.issued_at, erased))
            if action is Action.TAKE:
                await self._take(conn, remote, digest, rec)
            elif action in (Action.RESIGN, Action.ADOPT):
                assert rec is not None and local is not None
                version = next_version(local, remote.version)
                if version is None:
                    self.report.refused.append(f"{remote.id} v{remote.version}: no version left above it")
                    return Action.KEEP
                mine = orjson.loads(rec.envelope)
                content = ((mine["visibility"], bool(mine["deleted"]), mine["payload"]) if action is Action.RESIGN
                           else (remote.visibility, remote.deleted, remote.payload))
                schema = str(mine["schema"]) if action is Action.RESIGN else remote.schema
                env = await self.publisher.write_version(conn, remote.id, rec.type, version, *content,
                                                         previous=rec, shared_as=remote.visibility, schema=schema)
                if env.deleted and env.payload.get("reason") == "erased":
                    await RecordVersion.filter(record_id=remote.id, version__lt=version).using_db(conn).update(
                        envelope=None)
        return action

    async def _take(self, conn: Any, env: Envelope, digest: str, rec: Record | None) -> None:
        """Store the hub's version as signed: it becomes the record's current version and feed face."""
        seq = await sql.next_sequence(conn)
        text = _dumps(env)
        issued = format_timestamp(env.issued_at)
        await RecordVersion.create(record_id=env.id, version=env.version, seq=seq, visibility=env.visibility,
                                   deleted=env.deleted, issued_at=issued, digest=digest, envelope=text,
                                   using_db=conn)
        values = {"version": env.version, "visibility": env.visibility, "deleted": env.deleted, "seq": seq,
                  "issued_at": issued, "envelope": text}
        if rec is None:
            await Record.create(id=env.id, type=env.type, origin=env.origin, using_db=conn, **values)
        else:
            await Record.filter(id=env.id).using_db(conn).update(**values)
        if not await FeedEntry.filter(record_id=env.id).using_db(conn).update(seq=seq, envelope=text):
            await FeedEntry.create(record_id=env.id, seq=seq, envelope=text, using_db=conn)
        index = self.publisher.index
        if index is not None:
            if env.deleted:
                await index.remove(conn, [env.id])
            else:
                await index.index(conn, env.to_dict())
        if env.deleted and env.payload.get("reason") == "erased":
            # a restore must not bring back what was erased: the older versions' payloads go again
            await RecordVersion.filter(record_id=env.id, version__lt=env.version).using_db(conn).update(envelope=None)
            await record_erasure(conn, env.id, env.version, self.publisher.clock())  # and the files, by the purge


# -- talking to the hub -------------------------------------------------------------------------------


async def read_bounded(stream: aiohttp.StreamReader, limit: int) -> bytes:
    """A whole body, but never more than ``limit`` + one chunk in memory: past ``limit`` the caller gets
    ``limit + 1`` bytes and refuses the answer unparsed."""
    buffer = bytearray()
    async for chunk in stream.iter_chunked(65536):
        buffer.extend(chunk)
        if len(buffer) > limit:
            return bytes(buffer[: limit + 1])
    return bytes(buffer)


@dataclass
class HubLink:
    """The few calls recovery makes to the hub, each bounded, with this node's service token."""

    hub_url: str
    country: str
    key: Callable[[], InstanceKey]
    clock: Callable[[], datetime]
    session: aiohttp.ClientSession
    #: The setting ``service_token_ttl_s``.
    token_ttl_s: int = 120

    def _headers(self) -> dict[str, str]:
        key = self.key()
        token = issue_service_token(key.private_key, key.kid, self.country, "hub", self.clock(),
                                    ttl_s=self.token_ttl_s)
        return {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    async def _call(self, method: str, path: str, limit: int, params: Mapping[str, str] | None = None) -> Any:
        url = self.hub_url.rstrip("/") + path
        try:
            async with self.session.request(method, url, params=params, headers=self._headers(),
                                            allow_redirects=False) as resp:
                body = await read_bounded(resp.content, limit)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RecoverError(f"hub unreachable at {self.hub_url}: {exc.__class__.__name__}") from exc
        if len(body) > limit:
            raise RecoverError(f"the hub's answer to {path} is longer than {limit} bytes")
        try:
            data = strictjson.loads(body) if body else None
        except ProtocolError:
            data = None
        if status != 200:
            code = data.get("code") if isinstance(data, dict) else None
            detail = data.get("detail") if isinstance(data, dict) else None
            raise RecoverError(f"hub answered {path} with HTTP {status}"
                               + (f" {str(code)[:40]}: {str(detail)[:200]}" if code else ""))
        if not isinstance(data, dict):
            raise RecoverError(f"the hub's answer to {path} is not a JSON object")
        return data

    async def held(self, after: str) -> tuple[list[Any], str | None]:
        """One page of the records the hub holds from this node, and where the next one starts."""
        data = await self._call("GET", "/federation/v1/records", PAGE_MAX_BYTES,
                                {"after": after, "limit": str(PAGE)})
        records, following = data.get("records"), data.get("next_after")
        if not isinstance(records, list) or len(records) > PAGE or not (following is None or isinstance(following, str)):
            raise RecoverError("the hub's page of held records is malformed")
        if following is not None and (following == after or (not records and following)):
            # (compared for equality only: the hub orders ids by its database's collation)
            raise RecoverError("the hub's page of held records does not move forward")
        return records, following

    async def resume(self) -> int:
        """Ask the hub to pull this node again from 0 (a new feed epoch); the epoch."""
        data = await self._call("POST", "/federation/v1/resume", ANSWER_MAX_BYTES)
        epoch = data.get("epoch")
        if type(epoch) is not int:
            raise RecoverError("the hub's answer to resume carries no epoch")
        return epoch


async def recover(recovery: Recovery, link: HubLink) -> Report:
    """Read back every record the hub holds from this node, reconcile, ask the hub to resume.

    Raises:
        RecoverError: the hub could not be read or refused.
    """
    after = ""
    seen: set[str] = set()
    while True:
        records, following = await link.held(after)
        await recovery.apply(records)
        if following is None:
            break
        if following in seen:
            raise RecoverError("the hub's pages of held records go round in a circle")
        seen.add(following)
        after = following
    await set_state(NOTIFIED_KEY, 0)  # tell the hub again at the next start (it may not reach us now)
    recovery.report.epoch = await link.resume()
    return recovery.report


async def held_directory() -> dict[str, Any] | None:
    value = await get_state(DIRECTORY_KEY)
    return value if isinstance(value, dict) else None
