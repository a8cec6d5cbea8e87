"""The tortoise engine for SQLite files: reads outside a transaction do not wait for one.

tortoise's ``SqliteClient`` has one connection and one ``asyncio.Lock``, and a transaction holds the
lock until it commits. So while the hub writes a feed page (1,000 records and their index rows in
one transaction: hundreds of milliseconds) every other query of the process — a search, a token
check, the node status attached to search results — queued behind it, and searches took seconds
while the hub ingested (``benchmarks/load.py`` showed it; regression test:
``tests/integration/test_sqlite_reads.py``).

SQLite in WAL mode (tortoise's default pragma) lets a second connection read the last committed
state while a write transaction is open. This client keeps one such reader and sends it the plain
``SELECT`` statements issued outside a transaction. Everything else — writes, DDL, pragmas and every
statement inside a transaction (those run on tortoise's transaction wrapper, which uses the writer
connection) — goes through the writer as before, so SQLite's one-writer rule and read-your-writes
inside a transaction are unchanged; a read outside a transaction sees everything committed before
it started, as it did before. An in-memory database cannot be shared between connections: it keeps
the single connection.

Every connection also runs with ``PRAGMA secure_delete=ON`` (see :mod:`node.services.erasure`).

Transactions begin ``IMMEDIATE`` (tortoise's ``BEGIN`` is deferred): every transaction of this project
writes, and a deferred one that reads first holds a snapshot; when another process (``ncc hub mode``
beside a serving hub, two hub processes) commits in between, its first write fails at once with
"database is locked" — SQLite cannot upgrade a stale snapshot, so ``busy_timeout`` never applies.
Taking the write lock at ``BEGIN`` makes the second writer wait (``busy_timeout``) instead (Django's
``"transaction_mode": "IMMEDIATE"`` for the same reason). Regression test:
``tests/integration/test_reads_during_writes.py::test_regression_a_transaction_that_reads_first_waits_for_another_writer``.

Selected by :func:`node.storage.db.tortoise_config` for ``sqlite://`` URLs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from tortoise.backends.base.client import TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
    translate_exceptions,
)
from tortoise.exceptions import TransactionManagementError

__all__ = ["ReaderSqliteClient", "client_class", "is_plain_select"]


def is_plain_select(query: str) -> bool:
    """Whether ``query`` is a single read-only ``SELECT`` (CTEs, pragmas and writes are not)."""
    return query.lstrip()[:6].upper() == "SELECT"


def _shared_file(filename: str) -> bool:
    return filename not in ("", ":memory:") and "mode=memory" not in filename


class _ImmediateTransaction(SqliteTransactionWrapper):
    """tortoise's transaction wrapper, beginning with ``BEGIN IMMEDIATE`` (see the module docstring)."""

    async def begin(self) -> None:
        try:
            await self._connection.commit()
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc


class ReaderSqliteClient(SqliteClient):
    """``SqliteClient`` plus a second connection for plain reads outside transactions."""

    def __init__(self, file_path: str, **kwargs: Any) -> None:
        super().__init__(file_path, **kwargs)
        # Erasure (GDPR Art. 17, DESIGN §11): deleted or overwritten content, and pages put on the
        # freelist, are overwritten with zeros instead of lingering in the file. Set on every
        # connection (it is per connection); ``FAST`` would leave freelist pages as they were.
        self.pragmas["secure_delete"] = "ON"  # not optional: a promise, not a tuning knob
        self._shared = _shared_file(file_path)
        self._reader: aiosqlite.Connection | None = None

    async def create_connection(self, with_db: bool) -> None:
        await super().create_connection(with_db)
        if self._reader is None and self._shared:
            reader = await aiosqlite.connect(self.filename, isolation_level=None)
            reader._conn.row_factory = sqlite3.Row
            # the database file's journal mode is already WAL (set by the writer); the reader only
            # needs the per-connection settings
            for pragma in ("foreign_keys", "secure_delete"):
                if pragma in self.pragmas:
                    await (await reader.execute(f"PRAGMA {pragma}={self.pragmas[pragma]}")).close()
            await (await reader.execute("PRAGMA query_only=ON")).close()
            self._reader = reader

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            await reader.close()
        await super().close()

    def _in_transaction(self) -> TransactionContext:
        return SqliteTransactionContext(_ImmediateTransaction(self), self._lock)

    async def _read(self, query: str, values: list | None) -> list[Any] | None:
        """Run ``query`` on the reader and return its rows; None when it must go to the writer."""
        if not self._shared or not is_plain_select(query):
            return None
        if self._reader is None:
            await self.create_connection(with_db=True)
        assert self._reader is not None
        query = query.replace("\x00", "'||CHAR(0)||'")  # as SqliteClient does
        self.log.debug("%s: %s", query, values)
        return list(await self._reader.execute_fetchall(query, values))  # aiosqlite runs one at a time

    @translate_exceptions
    async def execute_query(self, query: str, values: list | None = None) -> tuple[int, Sequence[dict]]:
        rows = await self._read(query, values)
        if rows is None:
            return await super().execute_query(query, values)
        return len(rows), rows

    @translate_exceptions
    async def execute_query_dict(self, query: str, values: list | None = None) -> list[dict]:
        rows = await self._read(query, values)
        if rows is None:
            return await super().execute_query_dict(query, values)
        return list(map(dict, rows))


client_class = ReaderSqliteClient
