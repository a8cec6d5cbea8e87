"""Storage of the transparency log: appending inside the caller's transaction, reading nodes and entries.

Appends take the single log-state row's lock first (like ``sql.lock_writes``), so concurrent ingest
transactions — several hub processes on one PostgreSQL — append one after the other and the
indexes stay dense; since the append happens in the transaction that stores the records, a crash
loses or duplicates no entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.connection import connections

from federation import merkle
from node.storage import sql

LEVEL_SHIFT = 56


@dataclass(frozen=True)
class Append:
    """One entry to log."""

    entry: bytes
    origin: str | None
    record_id: str | None
    version: int | None
    visibility: str


def _key(level: int, index: int) -> int:
    return (level << LEVEL_SHIFT) | index


async def _state(conn: BaseDBAsyncClient) -> tuple[int, list[bytes]]:
    """Lock the log state row (made on first use) and return (size, frontier)."""
    if not await sql.execute(conn, "UPDATE hub_log_state SET size = size WHERE id = 1"):
        await sql.execute(conn, "INSERT INTO hub_log_state (id, size, frontier) VALUES (1, 0, '[]')")
    rows = await sql.fetch(conn, "SELECT size, frontier FROM hub_log_state WHERE id = 1")
    return int(rows[0]["size"]), [bytes.fromhex(h) for h in orjson.loads(rows[0]["frontier"])]


async def append(conn: BaseDBAsyncClient, items: Sequence[Append]) -> list[int]:
    """Append ``items`` in order inside the caller's transaction; return their indexes."""
    if not items:
        return []
    size, frontier = await _state(conn)
    entries: list[list[Any]] = []
    nodes: list[list[Any]] = []
    indexes: list[int] = []
    for item in items:
        created = merkle.append(size, frontier, merkle.leaf_hash(item.entry))
        nodes.extend([_key(level, index), digest.hex()] for (level, index), digest in created)
        entries.append([size, item.origin, item.record_id, item.version, item.visibility, item.entry.decode()])
        indexes.append(size)
        frontier = merkle.next_frontier(size, frontier, created)
        size += 1
    await conn.execute_many(sql.placeholders(conn, "INSERT INTO hub_log (\"index\", origin, record_id, version, "
                                                    "visibility, entry) VALUES (?, ?, ?, ?, ?, ?)"), entries)
    await conn.execute_many(sql.placeholders(conn, "INSERT INTO hub_log_nodes (key, hash) VALUES (?, ?)"), nodes)
    await sql.execute(conn, "UPDATE hub_log_state SET size = ?, frontier = ? WHERE id = 1",
                      [size, orjson.dumps([f.hex() for f in frontier]).decode()])
    return indexes


def _conn() -> BaseDBAsyncClient:
    return connections.get("default")


async def size() -> int:
    rows = await sql.fetch(_conn(), "SELECT size FROM hub_log_state WHERE id = 1")
    return int(rows[0]["size"]) if rows else 0


async def nodes(keys: Iterable[merkle.Key]) -> dict[merkle.Key, bytes]:
    """The stored hashes of these perfect subtrees (one query).

    Raises:
        KeyError: a node that should exist does not (the log is damaged).
    """
    wanted = {_key(level, index): (level, index) for level, index in keys}
    if not wanted:
        return {}
    marks = ", ".join("?" for _ in wanted)
    rows = await sql.fetch(_conn(), f"SELECT key, hash FROM hub_log_nodes WHERE key IN ({marks})", list(wanted))
    found = {wanted[int(r["key"])]: bytes.fromhex(r["hash"]) for r in rows}
    missing = set(wanted.values()) - set(found)
    if missing:
        raise KeyError(f"log nodes missing: {sorted(missing)[:3]}")
    return found


async def index_of(record_id: str, version: int) -> tuple[int, str, str | None] | None:
    """(index, visibility, origin) of a record version's entry."""
    rows = await sql.fetch(_conn(), "SELECT \"index\", visibility, origin FROM hub_log WHERE record_id = ? "
                                    "AND version = ?", [record_id, version])
    return (int(rows[0]["index"]), rows[0]["visibility"], rows[0]["origin"]) if rows else None


async def entries(origin: str | None, after: int, limit: int, visibilities: Iterable[str] | None) -> list[
        tuple[int, str]]:
    """Entries after index ``after`` (exclusive), of one origin or of all (``None``: directory entries
    included), limited to these visibilities (``None``: all)."""
    where, values = ["\"index\" > ?"], [after]
    if origin is not None:
        where.append("origin = ?")
        values.append(origin)  # type: ignore[arg-type]
    if visibilities is not None:
        allowed = sorted(visibilities)
        where.append(f"visibility IN ({', '.join('?' for _ in allowed)})")
        values.extend(allowed)  # type: ignore[arg-type]
    rows = await sql.fetch(_conn(), f"SELECT \"index\", entry FROM hub_log WHERE {' AND '.join(where)} "
                                    f"ORDER BY \"index\" LIMIT {int(limit)}", values)
    return [(int(r["index"]), r["entry"]) for r in rows]


async def stored_head() -> dict[str, Any] | None:
    rows = await sql.fetch(_conn(), "SELECT head FROM hub_log_state WHERE id = 1")
    return orjson.loads(rows[0]["head"]) if rows and rows[0]["head"] else None


async def store_head(head: dict[str, Any]) -> None:
    """Keep the latest signed head (only if no newer, larger one was stored meanwhile)."""
    await sql.execute(_conn(), "UPDATE hub_log_state SET head = ? WHERE id = 1 AND size = ?",
                      [orjson.dumps(head).decode(), head["size"]])


BACKFILL_BATCH = 2000


async def backfill(conn: BaseDBAsyncClient) -> int:
    """Log the records a hub held before it had a log, once (the migration that creates the log runs
    it): per node in the node's sequence order — the order they were ingested in — directories after.
    Returns how many entries it appended. Entries are computed without the hub key; the first tree
    head is signed when asked for."""
    from federation.directory import directory_signing_input
    from federation.translog import directory_entry, record_entry

    appended = 0
    origin, seq = "", -1
    while True:
        rows = await sql.fetch(conn, "SELECT origin, node_seq, id, version, deleted, digest, visibility "
                                     "FROM hub_records WHERE quarantined = ? AND (origin > ? OR (origin = ? AND "
                                     f"node_seq > ?)) ORDER BY origin, node_seq LIMIT {BACKFILL_BATCH}",
                               [False, origin, origin, seq])
        if not rows:
            break
        await append(conn, [Append(record_entry(r["id"], int(r["version"]), r["origin"], bool(r["deleted"]),
                                                r["digest"]), r["origin"], r["id"], int(r["version"]),
                                   r["visibility"]) for r in rows])
        appended += len(rows)
        origin, seq = rows[-1]["origin"], int(rows[-1]["node_seq"])
    for row in await sql.fetch(conn, "SELECT serial, document FROM hub_directories ORDER BY serial"):
        document = orjson.loads(row["document"])
        await append(conn, [Append(directory_entry(int(row["serial"]), directory_signing_input(document)),
                                   None, None, None, "public")])
        appended += 1
    return appended


async def purged_erasures(origin: str, after: int, limit: int) -> list[tuple[int, str, int, str]]:
    """``(log_index, record_id, version, purged_at)`` of ``origin``'s erased records the hub has purged,
    by the log index of their ``erased`` tombstone, after ``after`` (exclusive)."""
    rows = await sql.fetch(_conn(), "SELECT l.\"index\" AS idx, e.record_id, e.version, e.purged_at "
                                    "FROM erasures e JOIN hub_log l ON l.record_id = e.record_id "
                                    "AND l.version = e.version WHERE l.origin = ? AND e.purged_at IS NOT NULL "
                                    f"AND l.\"index\" > ? ORDER BY l.\"index\" LIMIT {int(limit)}", [origin, after])
    return [(int(r["idx"]), r["record_id"], int(r["version"]), r["purged_at"]) for r in rows]
