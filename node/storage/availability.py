"""Telling "the database cannot be reached right now" apart from every other database error.

A database restart, a cut connection or a full connection table are transient: a request that hits
one is answered 503 ``unavailable`` (node.http.problems), a pull that hits one fails like a transport
error (node.services.sync), instead of a 500 or an exception escaping a background job. Drivers do
not say it with one class: asyncpg raises its own connection and shutdown errors, or a plain
``ConnectionRefusedError`` from its pool, and tortoise wraps some of them (``OperationalError`` caused
by the driver's error), so the whole chain of causes is examined.
"""

from __future__ import annotations

import socket

import asyncpg.exceptions as pg
from tortoise.exceptions import DBConnectionError

#: The server is gone, going, not yet back, or has no connection slot left.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    DBConnectionError,
    pg.PostgresConnectionError,  # class 08: connection failure, connection does not exist, …
    pg.AdminShutdownError,
    pg.CrashShutdownError,
    pg.CannotConnectNowError,  # starting up / shutting down
    pg.TooManyConnectionsError,
    socket.gaierror,
)


#: asyncpg's words for a connection whose protocol state the server's termination broke.
_BROKEN_PROTOCOL = ("another operation (2) is in progress", 'protocol is in the "failed" state')


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc``, or an exception that caused it (``raise … from``), says the database server
    cannot be reached."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _UNAVAILABLE):
            return True
        # `ALTER DATABASE … ALLOW_CONNECTIONS false` (maintenance): 55000 is otherwise a generic state
        if isinstance(current, pg.ObjectNotInPrerequisiteStateError) and "accepting connections" in str(current):
            return True
        # a pooled connection the server terminated while it was idle: its next query finds the
        # protocol still consuming the server's termination message (state 2) or failed
        if isinstance(current, pg.InternalClientError) and any(s in str(current) for s in _BROKEN_PROTOCOL):
            return True
        # refused / reset / aborted sockets of the driver (not the subclasses HTTP clients raise)
        if isinstance(current, ConnectionError) and type(current).__module__ == "builtins":
            return True
        current = current.__cause__
    return False
