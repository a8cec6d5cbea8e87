"""node.storage.availability: which errors mean "the database cannot be reached right now"."""

from __future__ import annotations

import asyncpg.exceptions as pg
import pytest
from aiohttp import ClientConnectionResetError
from tortoise.exceptions import DBConnectionError, IntegrityError, OperationalError

from node.storage.availability import database_unavailable


def caused(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize("exc", [
    ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)"),  # server stopped
    ConnectionResetError(104, "Connection reset by peer"),
    pg.CannotConnectNowError("the database system is shutting down"),
    pg.AdminShutdownError("terminating connection due to administrator command"),
    pg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    pg.TooManyConnectionsError("sorry, too many clients already"),
    pg.ObjectNotInPrerequisiteStateError('database "x" is not currently accepting connections'),
    DBConnectionError("can't connect"),
    # a pooled connection terminated while idle, used before asyncpg noticed
    pg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
    pg.InternalClientError('cannot switch to state 15; protocol is in the "failed" state'),
    caused(OperationalError("wrapped"), pg.AdminShutdownError("terminating connection")),
    caused(RuntimeError("outer"), caused(OperationalError("middle"), ConnectionRefusedError())),
], ids=lambda e: type(e).__name__)
def test_unavailable(exc: BaseException) -> None:
    assert database_unavailable(exc)


@pytest.mark.parametrize("exc", [
    OperationalError("syntax error at or near SELEC"),  # a bug, not an outage: stays a 500
    IntegrityError("duplicate key"),
    pg.QueryCanceledError("canceling statement due to statement timeout"),
    pg.ObjectNotInPrerequisiteStateError("some other prerequisite state"),
    pg.InternalClientError("cannot switch to state 12; another operation (11) is in progress"),
    ClientConnectionResetError("an HTTP peer, not the database"),
    ValueError("nothing to do with it"),
], ids=lambda e: type(e).__name__)
def test_not_unavailable(exc: BaseException) -> None:
    assert not database_unavailable(exc)


def test_only_explicit_causes_are_followed() -> None:
    """An error raised while handling an outage (``__context__``) is not itself an outage."""
    try:
        try:
            raise ConnectionRefusedError()
        except ConnectionRefusedError:
            raise KeyError("a bug in the handler")
    except KeyError as exc:
        assert not database_unavailable(exc)


async def test_hub_jobs_are_postponed_not_failed_while_the_database_is_unavailable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found by the fault suite (PostgreSQL restarted under the hub): the scheduler's reconcile and
    housekeeping jobs ended in an error with a traceback whenever they fired during the outage."""
    from node.services.wiring import postponed_while_database_unavailable

    async def down() -> None:
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")

    async def bug() -> None:
        raise ValueError("a bug stays an error")

    with caplog.at_level("WARNING", logger="ncc.jobs"):
        await postponed_while_database_unavailable("reconcile", down)()
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "job postponed: database unavailable")]
    with pytest.raises(ValueError):
        await postponed_while_database_unavailable("reconcile", bug)()
