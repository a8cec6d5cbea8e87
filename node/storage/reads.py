"""The record reads behind the API and the portal (ORM access stays in the storage layer).

Each returns :class:`StoredRecord`, a plain snapshot of a row: callers decide what a reader may see
of it (``node.access``), never these functions.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True)
class StoredRecord:
    """The current version of a record as this instance holds it (the envelope as stored JSON)."""

    id: str
    type: str
    visibility: str
    version: int
    deleted: bool
    issued_at: str
    envelope: str
    seq: int = 0  # node: the feed sequence of the current version
    quarantined: bool = False  # hub: hidden after an equivocation


async def node_record(rid: str) -> StoredRecord | None:
    """One of this node's records by id, or None."""
    from node.storage.models import Record

    r = await Record.filter(id=rid).first()
    if r is None:
        return None
    return StoredRecord(r.id, r.type, r.visibility, r.version, r.deleted, r.issued_at, r.envelope, seq=r.seq)


async def hub_record(rid: str) -> StoredRecord | None:
    """A record the hub holds, by id, or None."""
    from node.storage.hub_models import HubRecord

    r = await HubRecord.filter(id=rid).first()
    if r is None:
        return None
    return StoredRecord(r.id, r.type, r.visibility, r.version, r.deleted, r.issued_at, r.envelope,
                        seq=r.node_seq, quarantined=r.quarantined)


async def node_records(
    rtype: str | None, visibilities: Collection[str] | None, before: int | None, limit: int
) -> list[StoredRecord]:
    """This node's live records, newest change first: at most ``limit``, of ``rtype`` (any when
    None), of these visibilities (any when None), with a sequence below ``before`` (when given)."""
    from node.storage.models import Record

    query = Record.filter(deleted=False)
    if rtype:
        query = query.filter(type=rtype)
    if visibilities is not None:
        query = query.filter(visibility__in=list(visibilities))
    if before is not None:
        query = query.filter(seq__lt=before)
    rows = await query.order_by("-seq").limit(limit)
    return [StoredRecord(r.id, r.type, r.visibility, r.version, r.deleted, r.issued_at, r.envelope, seq=r.seq)
            for r in rows]
