"""The record reads behind the API and the portal (ORM access stays in the storage layer).

Each returns :class:`StoredRecord`, a plain snapshot of a row: callers decide what a reader may see
of it (``node.access``), never these functions.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any


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

    @property
    def origin(self) -> str:
        """The origin country, from the id (``urn:ncc:<origin>:…``, checked at verification)."""
        return self.id.split(":")[2] if self.id.count(":") >= 3 else ""


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


# -- sharing groups (DESIGN §15) ----------------------------------------------------------------------


async def hub_groups() -> dict[str, frozenset[str]]:
    """The hub's sharing groups: name -> member countries, as they are now."""
    from node.storage.hub_models import HubGroup

    return {g.name: g.members for g in await HubGroup.all()}


async def held_member_groups(country: str, conn: Any = None) -> frozenset[str]:
    """At a node: the sharing groups ``country`` is a member of, by the hub directory the node holds."""
    import orjson

    from federation.directory import Directory
    from federation.errors import DirectoryInvalid
    from node.storage.models import NodeState

    query = NodeState.filter(key="hub_directory")  # the key node/services/nodefed.py stores it under
    row = await (query.using_db(conn) if conn is not None else query).first()
    if row is None:
        return frozenset()
    try:
        return Directory.from_dict(orjson.loads(row.value)).groups_of(country)
    except (DirectoryInvalid, orjson.JSONDecodeError):
        return frozenset()


async def indexed_group_audiences() -> frozenset[str]:
    """The group audience keys (``group:<name>:<origin>``) of the documents in this instance's search
    index: read from the index's small per-visibility counts, not from the records."""
    from tortoise.connection import connections

    from node.storage import sql

    rows = await sql.fetch(connections.get("default"),
                           "SELECT DISTINCT visibility FROM search_counts WHERE visibility LIKE 'group:%' AND n > 0",
                           [])
    return frozenset(str(r["visibility"]) for r in rows)


# -- hub: nodes, pull state, quarantine (the reads of GET /api/v1/nodes and the quarantine route) ----


async def federated_nodes() -> list[Any]:
    """Every enrolled node (``FederatedNode`` rows), by country."""
    from node.storage.hub_models import FederatedNode

    return list(await FederatedNode.all().order_by("country"))


async def node_enrolled(country: str) -> bool:
    """True when a node of this country is enrolled."""
    from node.storage.hub_models import FederatedNode

    return bool(await FederatedNode.filter(country=country).exists())


@dataclass(frozen=True, slots=True)
class PullFacts:
    """What a node's displayed status is computed from (a ``PullState`` row's fields)."""

    diverged_at: str | None
    consecutive_failures: int
    last_success: str | None


async def status_facts() -> list[tuple[str, str, PullFacts | None]]:
    """(country, enrollment status, pull facts or None) of every enrolled node, by country, in one
    query: a search answer's ``nodes`` (every search at the hub asks, so not two ORM queries)."""
    from tortoise.connection import connections

    from node.storage import sql

    rows = await sql.fetch(
        connections.get("default"),
        "SELECT n.country AS country, n.status AS enrollment, s.country AS pulled, s.diverged_at AS diverged_at,"
        " s.consecutive_failures AS failures, s.last_success AS last_success"
        " FROM hub_nodes n LEFT JOIN hub_pull_state s ON s.country = n.country ORDER BY n.country",
    )
    return [(str(r["country"]), str(r["enrollment"]),
             PullFacts(r["diverged_at"], int(r["failures"]), r["last_success"]) if r["pulled"] is not None else None)
            for r in rows]


async def pull_states() -> dict[str, Any]:
    """Each node's ``PullState`` row, by country."""
    from node.storage.hub_models import PullState

    return {s.country: s for s in await PullState.all()}


async def quarantine_count(country: str | None) -> int:
    """How many quarantine items the hub holds for ``country`` (all countries when None) — public
    (``GET /api/v1/nodes``), so a group record refused as ``group_invalid`` is not counted (DESIGN §15)."""
    from node.storage.hub_models import Quarantine

    rows = Quarantine.filter(country=country) if country else Quarantine.all()
    return int(await rows.exclude(code="group_invalid").count())


async def quarantine_page(country: str | None, after: int, limit: int) -> list[Any]:
    """Quarantine rows with an id above ``after``, oldest first, at most ``limit``, of ``country``
    (all countries when None)."""
    from node.storage.hub_models import Quarantine

    query = Quarantine.filter(id__gt=after)
    if country:
        query = query.filter(country=country)
    return list(await query.order_by("id").limit(limit))


async def current_records(ids: Collection[str], hub: bool) -> dict[str, StoredRecord]:
    """The current version of each of ``ids`` held here (the hub's records, or the node's own), by id;
    unknown ids are left out."""
    unique = list(dict.fromkeys(ids))
    if not unique:
        return {}
    out: dict[str, StoredRecord] = {}
    if hub:
        from node.storage.hub_models import HubRecord

        for r in await HubRecord.filter(id__in=unique):
            out[r.id] = StoredRecord(r.id, r.type, r.visibility, r.version, r.deleted, r.issued_at, r.envelope,
                                     seq=r.node_seq, quarantined=r.quarantined)
        return out
    from node.storage.models import Record

    for n in await Record.filter(id__in=unique):
        out[n.id] = StoredRecord(n.id, n.type, n.visibility, n.version, n.deleted, n.issued_at, n.envelope, seq=n.seq)
    return out
