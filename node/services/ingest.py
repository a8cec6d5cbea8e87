"""Hub ingest of one feed page: verify → validate → decide → store + index → advance the cursor.

Verification is pure CPU work done before the transaction. Everything that changes the hub's
state for the page — held records, search index, quarantine, the node's cursor — is written in one
transaction, and the cursor only moves if it still has the value the page was read from, so a crash
(or a second hub process) at any instant loses and duplicates nothing: the page is simply pulled
again.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from tortoise.transactions import in_transaction

from federation.directory import Directory
from federation.errors import ProtocolError
from federation.ingest import Decision, Held, decide, equivocation_error
from federation.schemas import SchemaRegistry
from federation.timefmt import format_timestamp
from federation.verify import VerifiedRecord, verify
from node.services.search import SearchService
from node.storage import sql

# Hub-side policy code (not a verification code): a node must never send a national record.
NATIONAL_IN_FEED = "visibility_national"


class CursorMoved(Exception):
    """Another process advanced this node's cursor meanwhile; the page was not applied."""


@dataclass
class FeedItem:
    """One record line of a feed page: its sequence, the parsed envelope (or why it did not parse)."""

    seq: int | None
    envelope: Any
    raw: str
    error: ProtocolError | None = None


@dataclass
class PageOutcome:
    """What ingest did with a page."""

    accepted: int = 0
    deleted: int = 0
    stale: int = 0
    duplicate: int = 0
    quarantined: int = 0
    codes: Tally[str] = field(default_factory=Tally)

    def add(self, other: PageOutcome) -> None:
        for name in ("accepted", "deleted", "stale", "duplicate", "quarantined"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.codes.update(other.codes)


def check_items(
    country: str, items: Sequence[FeedItem], directory: Directory, now: datetime, registry: SchemaRegistry
) -> list[VerifiedRecord | ProtocolError]:
    """Verify every item of a page (pure; may run in a worker)."""
    out: list[VerifiedRecord | ProtocolError] = []
    for item in items:
        if item.error is not None:
            out.append(item.error)
            continue
        try:
            out.append(verify(item.envelope, directory, now, registry, feed_origin=country))
        except ProtocolError as exc:
            out.append(exc)
    return out


def _quarantine_text(item: FeedItem, code: str) -> str:
    if code == NATIONAL_IN_FEED and isinstance(item.envelope, dict):
        # Never keep a national payload at the hub, not even as evidence.
        return orjson.dumps({k: v for k, v in item.envelope.items() if k != "payload"}).decode()
    return item.raw


async def apply_page(
    country: str,
    items: Sequence[FeedItem],
    results: Sequence[VerifiedRecord | ProtocolError],
    from_cursor: int,
    next_cursor: int,
    head: int,
    now: datetime,
    search: SearchService,
) -> PageOutcome:
    """Store a verified page and advance the cursor from ``from_cursor`` to ``next_cursor`` atomically.

    Raises:
        CursorMoved: the cursor was no longer ``from_cursor`` (nothing was written).
    """
    outcome = PageOutcome()
    stamp = format_timestamp(now)
    ids = [r.envelope.id for r in results if isinstance(r, VerifiedRecord)]
    async with in_transaction() as conn:
        moved = await sql.execute(
            conn,
            "UPDATE hub_pull_state SET cursor = ?, head = ? WHERE country = ? AND cursor = ?",
            [next_cursor, max(head, next_cursor), country, from_cursor],
        )
        if moved != 1:
            raise CursorMoved(country)
        held: dict[str, Held] = {}
        if ids:
            marks = ",".join("?" for _ in ids)
            for row in await sql.fetch(
                conn, f"SELECT id, version, digest FROM hub_records WHERE id IN ({marks})", list(ids)
            ):
                held[row["id"]] = Held(int(row["version"]), str(row["digest"]))
        upserts: list[list[Any]] = []
        to_index: list[dict[str, Any]] = []
        to_unindex: list[str] = []
        quarantine: list[list[Any]] = []
        flag_quarantined: list[str] = []
        for item, result in zip(items, results, strict=True):
            if isinstance(result, ProtocolError):
                code = result.code
                env = item.envelope if isinstance(item.envelope, dict) else {}
                rid = env.get("id") if isinstance(env.get("id"), str) else None
                version = env.get("version") if type(env.get("version")) is int else None
                quarantine.append([country, rid and rid[:200], version, item.seq, code, result.detail[:2000],
                                   _quarantine_text(item, code), stamp])
                outcome.quarantined += 1
                outcome.codes[code] += 1
                continue
            env_obj = result.envelope
            if env_obj.visibility == "national":
                quarantine.append([country, env_obj.id, env_obj.version, item.seq, NATIONAL_IN_FEED,
                                   "national records must never leave their node",
                                   _quarantine_text(item, NATIONAL_IN_FEED), stamp])
                outcome.quarantined += 1
                outcome.codes[NATIONAL_IN_FEED] += 1
                continue
            decision = decide(result, held.get(env_obj.id))
            if decision is Decision.STALE:
                outcome.stale += 1
                continue
            if decision is Decision.DUPLICATE:
                outcome.duplicate += 1
                continue
            if decision is Decision.EQUIVOCATION:
                err = equivocation_error(result, held[env_obj.id])
                quarantine.append([country, env_obj.id, env_obj.version, item.seq, err.code, err.detail,
                                   item.raw, stamp])
                flag_quarantined.append(env_obj.id)
                to_unindex.append(env_obj.id)
                outcome.quarantined += 1
                outcome.codes[err.code] += 1
                continue
            wire = env_obj.to_dict()
            upserts.append([env_obj.id, env_obj.origin, env_obj.type, env_obj.version, env_obj.visibility,
                            env_obj.deleted, result.digest, format_timestamp(env_obj.issued_at),
                            orjson.dumps(wire).decode(), item.seq or 0])
            held[env_obj.id] = Held(env_obj.version, result.digest)
            if env_obj.deleted:
                to_unindex.append(env_obj.id)
                outcome.deleted += 1
            else:
                to_index.append(wire)
                outcome.accepted += 1
        if upserts:
            await conn.execute_many(
                sql.placeholders(
                    conn,
                    "INSERT INTO hub_records (id, origin, type, version, visibility, deleted, digest, issued_at,"
                    " envelope, node_seq, quarantined) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, FALSE)"
                    " ON CONFLICT (id) DO UPDATE SET origin = excluded.origin, type = excluded.type,"
                    " version = excluded.version, visibility = excluded.visibility, deleted = excluded.deleted,"
                    " digest = excluded.digest, issued_at = excluded.issued_at, envelope = excluded.envelope,"
                    " node_seq = excluded.node_seq, quarantined = FALSE",
                ),
                upserts,
            )
        if flag_quarantined:
            marks = ",".join("?" for _ in flag_quarantined)
            await sql.execute(conn, f"UPDATE hub_records SET quarantined = TRUE WHERE id IN ({marks})",
                              flag_quarantined)
        if quarantine:
            await conn.execute_many(
                sql.placeholders(
                    conn,
                    "INSERT INTO hub_quarantine (country, record_id, version, node_seq, code, detail, envelope,"
                    " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                ),
                quarantine,
            )
        if to_index:
            await search.index_many(conn, to_index)
        if to_unindex:
            await search.remove(conn, to_unindex)
    return outcome
