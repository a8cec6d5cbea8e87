"""Storage of the Atlas connector: the organisations to hand over, their sync state, the push lease."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from tortoise.exceptions import IntegrityError

from federation.timefmt import format_timestamp, parse_timestamp
from node.storage.models import AtlasSync, NodeState, Record

LEASE_KEY = "atlas:push-lease"
TERMS_KEY = "atlas:terms"
PAGE = 500


@dataclass(frozen=True)
class Organisation:
    """The current state of one of this node's organisations, as the connector needs it."""

    id: str
    version: int
    visibility: str
    deleted: bool
    payload: dict[str, Any]
    reason: str | None  # a tombstone's reason

    @property
    def status(self) -> str | None:
        membership = self.payload.get("membership")
        return membership.get("status") if isinstance(membership, dict) else None

    @property
    def registered(self) -> bool:
        """Handed to the Centre: registered here and shared with the network (``national`` never leaves the
        node; a sharing group's record reaches that group's readers only, never the Atlas: DESIGN §15)."""
        return not self.deleted and self.status == "registered" and self.visibility in ("public", "network")


async def organisations() -> AsyncIterator[Organisation]:
    """Every organisation of this node (current version), in id order, a page at a time."""
    after = ""
    while True:
        rows = await Record.filter(type="organisation", id__gt=after).order_by("id").limit(PAGE).values_list(
            "id", "version", "visibility", "deleted", "envelope")
        for rid, version, visibility, deleted, envelope in rows:
            payload = orjson.loads(envelope).get("payload") or {}
            yield Organisation(rid, int(version), visibility, bool(deleted),
                               payload if not deleted else {}, payload.get("reason") if deleted else None)
        if len(rows) < PAGE:
            return
        after = rows[-1][0]


async def organisation(rid: str) -> Organisation | None:
    row = await Record.filter(id=rid, type="organisation").first()
    if row is None:
        return None
    payload = orjson.loads(row.envelope).get("payload") or {}
    return Organisation(row.id, int(row.version), row.visibility, bool(row.deleted),
                        payload if not row.deleted else {}, payload.get("reason") if row.deleted else None)


async def states() -> dict[str, AtlasSync]:
    return {s.record_id: s for s in await AtlasSync.all()}


async def state(rid: str) -> AtlasSync | None:
    return await AtlasSync.filter(record_id=rid).first()


async def save(rid: str, **fields: Any) -> None:
    """Create or update the sync row of ``rid``."""
    if not await AtlasSync.filter(record_id=rid).update(**fields):
        await AtlasSync.create(record_id=rid, **fields)


async def mark_pending(rid: str) -> None:
    """Queue ``rid`` for the next push (a registration decision); keeps what is known of it."""
    await save(rid, state="pending", reason=None)


# -- one push at a time ----------------------------------------------------------------------------


async def acquire_lease(now: datetime, ttl_s: int) -> str | None:
    """Take the push lease (a compare-and-swap on one ``node_state`` row, so it holds across
    processes and hosts sharing the database); return its token, or None while another push holds it."""
    token = uuid.uuid4().hex
    value = orjson.dumps({"token": token, "until": format_timestamp(now + timedelta(seconds=ttl_s))}).decode()
    try:
        await NodeState.create(key=LEASE_KEY, value=value)
        return token
    except IntegrityError:
        pass
    row = await NodeState.filter(key=LEASE_KEY).first()
    if row is None:
        return None  # released meanwhile: the caller tries again later
    held = orjson.loads(row.value)
    if parse_timestamp(held["until"]) > now:
        return None
    taken = await NodeState.filter(key=LEASE_KEY, value=row.value).update(value=value)
    return token if taken else None


async def lease_holder() -> str | None:
    """Until when the current lease runs (for the refusal message)."""
    row = await NodeState.filter(key=LEASE_KEY).first()
    return None if row is None else str(orjson.loads(row.value).get("until"))


async def release_lease(token: str) -> None:
    row = await NodeState.filter(key=LEASE_KEY).first()
    if row is not None and orjson.loads(row.value).get("token") == token:
        await NodeState.filter(key=LEASE_KEY, value=row.value).delete()


# -- the Atlas's terms, cached ---------------------------------------------------------------------


async def cached_terms(base_url: str, now: datetime, ttl_s: int) -> dict[str, list[dict[str, Any]]] | None:
    row = await NodeState.filter(key=TERMS_KEY).first()
    if row is None:
        return None
    cached = orjson.loads(row.value)
    if cached.get("url") != base_url or parse_timestamp(cached["fetched_at"]) + timedelta(seconds=ttl_s) <= now:
        return None
    terms: dict[str, list[dict[str, Any]]] = cached["terms"]
    return terms


async def cache_terms(base_url: str, now: datetime, terms: dict[str, list[dict[str, Any]]]) -> None:
    value = orjson.dumps({"url": base_url, "fetched_at": format_timestamp(now), "terms": terms}).decode()
    if not await NodeState.filter(key=TERMS_KEY).update(value=value):
        await NodeState.create(key=TERMS_KEY, value=value)
