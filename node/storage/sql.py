"""Small helpers for the few raw SQL statements the storage layer needs on both dialects."""

from __future__ import annotations

from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient


def placeholders(conn: BaseDBAsyncClient, sql: str) -> str:
    """Rewrite ``?`` placeholders to ``$1, $2, …`` for asyncpg (tortoise does not translate raw SQL)."""
    if conn.capabilities.dialect != "postgres":
        return sql
    out, n = [], 0
    for ch in sql:
        if ch == "?":
            n += 1
            out.append(f"${n}")
        else:
            out.append(ch)
    return "".join(out)


def signed_by_pattern(kid: str) -> str:
    """A ``LIKE … ESCAPE '\\'`` pattern matching the stored envelopes (compact JSON) signed by ``kid``."""
    escaped = kid.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f'%"kid":"{escaped}"%'


async def fetch(conn: BaseDBAsyncClient, sql: str, values: list[Any] | None = None) -> list[dict[str, Any]]:
    """Run a query (``UPDATE … RETURNING`` included) and return its rows as dicts."""
    # Not execute_query: on asyncpg it runs UPDATE/INSERT/DELETE without fetching, so RETURNING
    # rows would be lost.
    return await conn.execute_query_dict(placeholders(conn, sql), values or [])


async def execute(conn: BaseDBAsyncClient, sql: str, values: list[Any] | None = None) -> int:
    """Run a statement and return the affected row count."""
    count, _ = await conn.execute_query(placeholders(conn, sql), values or [])
    return int(count)


async def next_sequence(conn: BaseDBAsyncClient, name: str = "seq") -> int:
    """Allocate the next value of a counter inside the caller's transaction.

    The UPDATE takes the counter row's write lock until commit, so concurrent writers commit in
    sequence order: a feed reader never sees seq N+1 committed while N is still pending.
    """
    rows = await fetch(conn, "UPDATE counters SET value = value + 1 WHERE name = ? RETURNING value", [name])
    if rows:
        return int(rows[0]["value"])
    await execute(conn, "INSERT INTO counters (name, value) VALUES (?, 1)", [name])
    return 1


async def next_sequences(conn: BaseDBAsyncClient, count: int, name: str = "seq") -> int:
    """Allocate ``count`` consecutive values of a counter (as :func:`next_sequence` does one);
    return the first."""
    rows = await fetch(
        conn, "UPDATE counters SET value = value + ? WHERE name = ? RETURNING value", [count, name]
    )
    if rows:
        return int(rows[0]["value"]) - count + 1
    await execute(conn, "INSERT INTO counters (name, value) VALUES (?, ?)", [name, count])
    return 1


async def lock_writes(conn: BaseDBAsyncClient) -> None:
    """Take the write lock at the start of a read-then-write transaction.

    On SQLite a deferred transaction that reads first and writes later fails at once with
    SQLITE_BUSY (no busy wait) when another process committed in between; writing first takes the
    database's write lock up front, and other writers then wait (busy timeout). On PostgreSQL it
    takes the sequence counter's row lock, which every writer needs anyway.
    """
    await execute(conn, "UPDATE counters SET value = value WHERE name = ?", ["seq"])
