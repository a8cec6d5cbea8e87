"""Database lifecycle: tortoise configuration, migrations, connection context."""

from __future__ import annotations

import functools
import importlib
import os
import pkgutil
import re
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.connection import connections
from tortoise.context import TortoiseContext, get_current_context

APP = "ncc"
MODEL_MODULES = ["node.storage.models", "node.storage.hub_models", "node.storage.gatekeeper_models"]
MIGRATIONS_MODULE = "node.migrations"


#: tortoise's SQLite engine, replaced by ours (reads outside transactions do not wait for them).
_SQLITE_ENGINES = {"tortoise.backends.sqlite": "node.storage.sqlite_engine"}


def tortoise_config(db_url: str) -> dict[str, Any]:
    """The tortoise config dict for one instance database.

    A ``sqlite://`` URL gets :mod:`node.storage.sqlite_engine` (tortoise's client plus a reader
    connection, so that searches are not queued behind the hub's ingest transactions).
    """
    connection: str | dict[str, Any] = db_url
    info = expand_db_url(db_url)
    if info["engine"] in _SQLITE_ENGINES:
        connection = {**info, "engine": _SQLITE_ENGINES[info["engine"]]}
    return {
        "connections": {"default": connection},
        "apps": {
            APP: {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": MIGRATIONS_MODULE,
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def migrate(db_url: str, target: str | None = None) -> None:
    """Bring the database schema up to date (or to ``target``, e.g. ``ncc.0001_initial``).

    Uses tortoise's built-in migration framework; dialect-specific DDL (FTS) runs in RunPython steps.
    """
    from tortoise.migrations.api import migrate as run_migrations

    await run_migrations(config=tortoise_config(db_url), app_labels=[APP], target=target)


@functools.cache
def migration_names() -> frozenset[str]:
    """The names of this program's migrations (``0001_initial``, …: the modules of :data:`MIGRATIONS_MODULE`)."""
    package = importlib.import_module(MIGRATIONS_MODULE)
    return frozenset(info.name for info in pkgutil.iter_modules(package.__path__) if re.match(r"\d{4}_", info.name))


async def _migrations_pending() -> bool:
    """Whether the open database lacks one of :func:`migration_names`, or records one this program does
    not know (tortoise's migrator then decides what that means). One read of tortoise's own record of
    applied migrations; any failure (no such table yet) counts as pending."""
    try:
        _, rows = await connections.get("default").execute_query(
            f"SELECT name FROM tortoise_migrations WHERE app = '{APP}'")  # a constant, not input
    except Exception:  # noqa: BLE001 - a new database (or an unreadable record): the migrator decides
        return True
    return {str(row[0]) for row in rows} != migration_names()


async def open_db(db_url: str, *, run_migrations: bool = True) -> TortoiseContext:
    """Migrate, then initialise tortoise for this process; return the context to close later.

    A database that has every migration applied (tortoise's ``tortoise_migrations`` names exactly this
    program's migrations) is opened without running tortoise's migrator, which rebuilds the state of
    every migration to find there is nothing to do: ~50 ms of CPU at each ``ncc`` command, each app
    start and each test instance (issue 13)."""
    # tortoise caches each model's INSERT statement under (connection name, table), not the dialect:
    # after a SQLite database, a PostgreSQL one in the same process (the test suite runs both)
    # would get `?` placeholders. Opening a database is rare, so start from an empty cache.
    EXECUTOR_CACHE.clear()
    _create_private_sqlite_file(db_url)
    try:
        context = await Tortoise.init(config=tortoise_config(db_url))
        if run_migrations and await _migrations_pending():
            await Tortoise.close_connections()
            await migrate(db_url)
            await Tortoise.close_connections()
            context = await Tortoise.init(config=tortoise_config(db_url))
        return context
    except BaseException:
        await close_db()  # a half-open SQLite connection's thread would keep the process alive
        raise


def _create_private_sqlite_file(db_url: str) -> None:
    """Create a new SQLite database file 0600 before SQLite does: SQLite gives its WAL, SHM and journal
    files the database file's own mode, so national records never land in a world-readable file
    whatever the umask of the process that first opened it."""
    info = expand_db_url(db_url)
    if not info["engine"].startswith("tortoise.backends.sqlite"):
        return
    path = str(info["credentials"].get("file_path", ""))
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


async def close_db(context: TortoiseContext | None = None) -> None:
    """Close the connections of ``context`` (default: the current one).

    Pass the context ``open_db`` returned when closing from another task or contextvars context
    (aiohttp may run ``cleanup_ctx`` teardown elsewhere); the current one would not be found there
    and the aiosqlite thread would keep pytest from exiting.
    """
    context = context or get_current_context()
    if context is not None:
        await context.close_connections()


def dialect() -> str:
    """``sqlite`` or ``postgres`` for the default connection."""
    return str(connections.get("default").capabilities.dialect)


async def ensure_counters() -> None:
    """Create the change-sequence counter row once, so concurrent writers only ever UPDATE it."""
    from node.storage import sql

    conn = connections.get("default")
    await sql.execute(conn, "INSERT INTO counters (name, value) VALUES (?, 0) ON CONFLICT (name) DO NOTHING", ["seq"])
