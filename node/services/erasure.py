"""Erasure leaves no trace (DESIGN §11, GDPR Art. 17): the purge job.

An ``erased`` tombstone — written by this node (``Publisher.delete``) or ingested by the hub — is
recorded in ``erasures`` in the same transaction (:func:`record_erasure`). By then the rows hold no
payload any more: the node nulls the older versions' envelopes, the hub replaces its row with the
tombstone, both drop the search document. What is left are *physical* remnants, which this job
removes (every ``erasure_purge_s`` and at every clean stop of ``ncc serve``):

- rows that mention the id outside the record tables: the hub's quarantine evidence;
- SQLite: freed cells and pages are zeroed as they are freed (``PRAGMA secure_delete=ON`` on every
  connection, :mod:`node.storage.sqlite_engine`); the FTS5 index only *marks* a deleted document
  (3.40 has no FTS5 secure-delete), its terms stay in the old segments until they are merged, so
  the index is rewritten (``optimize``); then ``wal_checkpoint(TRUNCATE)`` empties the WAL, which
  still holds the pages as they were written. A database that existed before secure delete was
  switched on may hold remnants of older deletions in free space: it is ``VACUUM``-ed once;
- PostgreSQL: the tables that held the payload are vacuumed, so no row version, TOAST chunk or
  index entry is left, and the GIN text index is rebuilt (``REINDEX … CONCURRENTLY``: GIN never
  drops an entry key, the folded word itself, once its last row is gone), its pending list flushed
  first. Old bytes stay in the pages' free space unless ``erasure_vacuum_full`` is set (see
  :func:`purge`). What the server keeps outside the tables (WAL segments, archives, base backups)
  is the database operator's (README "Erasure").

The job does nothing (one indexed read) while nothing is pending.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.connection import connections
from tortoise.transactions import in_transaction

from federation.timefmt import format_timestamp
from node.storage import sql

log = logging.getLogger("ncc.erasure")

#: Erasures handled per run; the rest waits for the next run (the index rewrite covers them all).
BATCH = 1000
#: ``node_state`` key set once a pre-secure-delete SQLite database has been vacuumed.
VACUUMED_KEY = "erasure_vacuumed"
#: Tables whose rows held payloads (node and hub), vacuumed on PostgreSQL after a purge.
PAYLOAD_TABLES = ("records", "record_versions", "feed", "hub_records", "hub_quarantine", "search_docs",
                  "search_tags", "atlas_sync")
CHECKPOINT_ATTEMPTS = 50
CHECKPOINT_PAUSE_S = 0.1
HORIZON_ATTEMPTS = 100
HORIZON_PAUSE_S = 0.1


@dataclass(frozen=True)
class PurgeReport:
    """What one run did: erasures purged, quarantine rows removed, seconds spent, WAL emptied."""

    erasures: int = 0
    quarantine_rows: int = 0
    seconds: float = 0.0
    wal_truncated: bool = True


async def record_erasure(conn: BaseDBAsyncClient, record_id: str, version: int, now: datetime) -> None:
    """Note, inside the caller's transaction, that ``record_id`` was erased at ``version``."""
    await sql.execute(
        conn,
        "INSERT INTO erasures (record_id, version, erased_at, purged_at) VALUES (?, ?, ?, NULL)"
        " ON CONFLICT (record_id) DO UPDATE SET version = excluded.version, erased_at = excluded.erased_at,"
        " purged_at = NULL",
        [record_id, version, format_timestamp(now)],
    )


async def pending(conn: BaseDBAsyncClient | None = None) -> list[tuple[str, int]]:
    """Erasures not purged yet: (record id, tombstone version), oldest first, at most :data:`BATCH`."""
    conn = conn or connections.get("default")
    rows = await sql.fetch(
        conn, "SELECT record_id, version FROM erasures WHERE purged_at IS NULL ORDER BY erased_at, record_id"
        f" LIMIT {BATCH}",
    )
    return [(str(r["record_id"]), int(r["version"])) for r in rows]


async def purge(search: Any, now: datetime, *, vacuum_full: bool = False) -> PurgeReport:
    """Remove every remnant of the pending erasures from the database and its files.

    ``search`` is the :class:`node.services.search.SearchService` (its backend rewrites the
    full-text index). ``vacuum_full`` (PostgreSQL; setting ``erasure_vacuum_full``) rewrites the
    tables that held payloads with ``VACUUM FULL`` instead of ``VACUUM`` + rebuilding the text index:
    plain ``VACUUM`` removes every dead row version and index entry, but leaves their old bytes in
    the pages' free space until something overwrites them; ``VACUUM FULL`` writes new files (and
    locks each table while it does). Safe to run from several processes at once (each step is
    idempotent).

    Raises the driver's errors (the scheduler logs them and the next run retries).
    """
    todo = await pending()
    if not todo:
        return PurgeReport()
    started = time.perf_counter()
    conn = connections.get("default")
    dialect = str(conn.capabilities.dialect)
    ids = [rid for rid, _ in todo]
    async with in_transaction() as tx:
        await sql.lock_writes(tx)
        # The node nulled these in the tombstone's transaction; again here for rows written by an
        # older release, which only did so for some paths.
        for rid, version in todo:
            await sql.execute(
                tx, "UPDATE record_versions SET envelope = NULL WHERE record_id = ? AND version < ?"
                " AND envelope IS NOT NULL", [rid, version],
            )
        removed = await _purge_quarantine(tx, ids)
        await search.remove(tx, ids)
        if dialect == "sqlite":
            await search.scrub(tx)
    if dialect == "sqlite":
        await _vacuum_once(conn)
    elif not await _horizon_passed(conn):
        # an older snapshot would keep the dead row versions ("recently dead") through the VACUUM
        return PurgeReport(0, removed, time.perf_counter() - started, True)
    elif vacuum_full:
        await conn.execute_script(f"VACUUM FULL {', '.join(PAYLOAD_TABLES)}")  # indexes are rebuilt too
    else:
        await conn.execute_script(f"VACUUM {', '.join(PAYLOAD_TABLES)}")
        await search.scrub(conn)
    if dialect == "sqlite" and not await _checkpoint(conn):
        # left pending: the WAL still holds the old pages, so the next run does it all again
        return PurgeReport(0, removed, time.perf_counter() - started, False)
    async with in_transaction() as tx:
        marks = ",".join("?" for _ in ids)
        await sql.execute(tx, f"UPDATE erasures SET purged_at = ? WHERE record_id IN ({marks}) AND purged_at IS NULL",
                          [format_timestamp(now), *ids])
    truncated = True
    if dialect == "sqlite":
        # that last write went to the WAL; it holds ids and times only, but leave the file empty
        truncated = await _checkpoint(conn)
    report = PurgeReport(len(ids), removed, time.perf_counter() - started, truncated)
    log.info("erasure purge done", extra={"erasures": report.erasures, "quarantine_rows": removed,
                                          "seconds": round(report.seconds, 3), "wal_truncated": truncated})
    return report


async def _purge_quarantine(conn: BaseDBAsyncClient, ids: list[str]) -> int:
    """Delete the hub's quarantine rows about these ids (evidence may carry the payload)."""
    marks = ",".join("?" for _ in ids)
    removed = await sql.execute(conn, f"DELETE FROM hub_quarantine WHERE record_id IN ({marks})", ids)
    # A line too broken to yield an id is kept without one; find the id in its text instead. Ids are
    # `urn:ncc:XX:type:uuid` (no LIKE wildcard in them); the scan is over those rows only.
    for rid in ids:
        removed += await sql.execute(
            conn, "DELETE FROM hub_quarantine WHERE record_id IS NULL AND envelope LIKE ?", [f"%{rid}%"]
        )
    return removed


async def _horizon_passed(conn: BaseDBAsyncClient) -> bool:
    """PostgreSQL: wait (bounded) until no transaction on the server is older than now.

    VACUUM keeps a dead row version ("recently dead") while the server's oldest snapshot might
    still see it, so the purge first waits until every transaction that began before the erasures
    committed has ended. Every database counts: measured, a ``DROP DATABASE`` running in another
    database of the same server held the horizon back. Autovacuum workers are left out (their
    snapshots do not hold back vacuum).
    """
    start = int((await sql.fetch(conn, "SELECT txid_current() AS x"))[0]["x"])
    for _ in range(HORIZON_ATTEMPTS):
        rows = await sql.fetch(
            conn,
            "SELECT count(*) AS n FROM pg_stat_activity, (SELECT txid_snapshot_xmax(txid_current_snapshot())"
            " AS nxt) s WHERE pid <> pg_backend_pid() AND backend_type <> 'autovacuum worker'"
            " AND ((backend_xmin IS NOT NULL AND age(backend_xmin) > s.nxt - ?)"
            " OR (backend_xid IS NOT NULL AND age(backend_xid) > s.nxt - ?))",
            [start, start],
        )
        if not int(rows[0]["n"]):
            return True
        await asyncio.sleep(HORIZON_PAUSE_S)
    log.warning("erasure: a long transaction holds old row versions; the next run retries")
    return False


async def _vacuum_once(conn: BaseDBAsyncClient) -> None:
    """VACUUM a SQLite database once if it was written before secure delete was on (see module doc)."""
    rows = await sql.fetch(conn, "SELECT value FROM node_state WHERE key = ?", [VACUUMED_KEY])
    if rows:
        return
    log.info("erasure: vacuuming the database once (it was written before secure delete)")
    await conn.execute_script("VACUUM")
    await sql.execute(conn, "INSERT INTO node_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                      [VACUUMED_KEY, "yes"])


async def _checkpoint(conn: BaseDBAsyncClient) -> bool:
    """``PRAGMA wal_checkpoint(TRUNCATE)`` until it completes (a reader may hold an old snapshot)."""
    for _ in range(CHECKPOINT_ATTEMPTS):
        _, rows = await conn.execute_query("PRAGMA wal_checkpoint(TRUNCATE)")
        busy = int(rows[0][0]) if rows else 1
        if not busy:
            return True
        await asyncio.sleep(CHECKPOINT_PAUSE_S)
    log.warning("erasure: the WAL could not be truncated (readers kept it busy); the next run retries")
    return False


async def mark_vacuumed_if_empty(conn: BaseDBAsyncClient) -> None:
    """For a database that has never held a record, nothing predates secure delete: skip the VACUUM."""
    held = await sql.fetch(conn, "SELECT (SELECT count(*) FROM records) + (SELECT count(*) FROM hub_records) AS n")
    if int(held[0]["n"]) == 0:
        await sql.execute(conn, "INSERT INTO node_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                          [VACUUMED_KEY, "yes"])
