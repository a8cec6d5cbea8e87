"""Shared fixtures: database URLs for both backends.

PostgreSQL tests use the server at ``NCC_TEST_PG`` (default the CI machine's
``postgres://postgres@127.0.0.1:5432/test``); each test gets a fresh database that is dropped
afterwards. Without a reachable server those tests skip and say why.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("NCC_TEST_PG", "postgres://postgres@127.0.0.1:5432/test")


def _pg_reachable() -> str | None:
    """Return None when PostgreSQL answers, else the reason it does not."""
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return "asyncpg not installed"

    async def probe() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc.__class__.__name__}: {exc}"
    return None


_PG_PROBLEM: str | None | bool = False


def pg_problem() -> str | None:
    global _PG_PROBLEM
    if _PG_PROBLEM is False:
        _PG_PROBLEM = _pg_reachable()
    return _PG_PROBLEM  # type: ignore[return-value]


def _admin_exec(sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def make_pg_database() -> tuple[str, str]:
    """Create a fresh database; return (name, asyncpg-style URL)."""
    name = f"ncc_test_{uuid.uuid4().hex[:12]}"
    _admin_exec(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return name, f"{base}/{name}"


def drop_pg_database(name: str) -> None:
    _admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database URL (``postgres://…``), dropped after the test."""
    problem = pg_problem()
    if problem:
        pytest.skip(problem)
    name, url = make_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test on both backends: a SQLite file in tmp_path, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'ncc.db'}"
        return
    problem = pg_problem()
    if problem:
        pytest.skip(problem)
    name, url = make_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)
