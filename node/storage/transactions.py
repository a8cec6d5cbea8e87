"""A fix to tortoise's pooled transactions (PostgreSQL): the task's connection is always restored.

``in_transaction()`` on a pool acquires a connection, points the task's connection context at it,
and on exit commits or rolls back, returns the connection to the pool, then restores the context.
tortoise 1.1 restores the context only if returning the connection succeeds. When the server goes
away mid-transaction (a PostgreSQL restart), asyncpg's ``release`` can raise (the connection's reset
finds an operation still in progress); the context then keeps pointing at the released connection,
and every later query of the same task fails with ``connection has been released back to the pool``
— long after the database is back. The hub's pull found it: after a page's transaction died in a
restart, recording the failed pull (same task) failed too, with an unhandled error.

:func:`install` (called when ``node.storage`` is imported) replaces ``__aexit__`` with one that
restores the context whatever happens; the error of ``release`` still propagates (asyncpg has
already terminated that connection; the pool opens a new one). Regression test:
``tests/integration/test_db_outage.py::test_failed_connection_release_restores_the_task_connection``.
"""

from __future__ import annotations

from typing import Any

from tortoise.backends.base.client import TransactionContextPooled
from tortoise.connection import get_connections
from tortoise.exceptions import TransactionManagementError


async def _aexit(self: TransactionContextPooled, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
    try:
        if not self.client._finalized:
            if exc_type:
                # Can't rollback a transaction that already failed.
                if exc_type is not TransactionManagementError:
                    await self.client.rollback()
            else:
                await self.client.commit()
    finally:
        try:
            if self.client._parent._pool:
                await self.client._parent._pool.release(self.client._connection)
        finally:
            get_connections().reset(self.token)


def install() -> None:
    """Patch ``TransactionContextPooled.__aexit__`` (idempotent)."""
    TransactionContextPooled.__aexit__ = _aexit  # type: ignore[method-assign]
