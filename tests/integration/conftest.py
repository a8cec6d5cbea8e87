"""Integration fixtures: real instances (the ``ncc init`` code path) served in-process by pytest-aiohttp.

Every instance is created by ``node.cli.main(["init", …])`` in ``tmp_path`` on the database of the
``db_url`` fixture (parametrised SQLite + PostgreSQL, ``tests/conftest.py``); its tokens are issued by
``ncc token create``'s own code (an instance's tokens in one database session). Both run their own
event loop, so they run in *sync* fixtures, before the test's loop starts the app. The app is ``create_app(settings)``, whose database lives in
``app.cleanup_ctx``: the client's teardown closes it, so pytest exits without a stray aiosqlite thread.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import drop_pg_database, make_pg_database, migrated_sqlite_file
from tests.integration.support import NODE_ROLES, Instance, leaked_threads, run_cli

MakeInstance = Callable[..., Instance]
ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail the test that leaves a non-daemon thread behind (it would hang pytest at exit)."""
    before = set(threading.enumerate())
    yield
    leaked = leaked_threads(before)
    assert not leaked, f"threads left running: {leaked}"


@pytest.fixture
def make_instance(tmp_path: Path, db_url: str) -> Iterator[MakeInstance]:
    """Factory: ``make_instance("DE")`` runs ``ncc init --role node`` and creates a token per role.

    The first instance uses the ``db_url`` backend; further ones get their own database of the same
    kind (a new PostgreSQL database, or a SQLite file in their data dir).
    """
    extra_pg: list[str] = []
    count = 0

    def make(country: str = "DE", role: str = "node", tokens: tuple[str, ...] = NODE_ROLES) -> Instance:
        nonlocal count
        count += 1
        data_dir = tmp_path / f"instance{count}"
        if count == 1:
            db = db_url
        elif db_url.startswith("postgres"):
            name, db = make_pg_database(migrated=True)  # ncc init would migrate it: cloned, faster
            extra_pg.append(name)
        else:
            db = migrated_sqlite_file(data_dir / "ncc.db")
        args = ["init", "--role", role, "--data-dir", str(data_dir), "--db", db]
        if role == "node":
            args += ["--country", country]
        code, _, err = run_cli(*args)
        assert code == 0, err
        if role == "hub":  # the tests' nodes listen on loopback (refused by default: DESIGN §10)
            with (data_dir / "config.toml").open("a") as fh:
                fh.write("allow_private_node_urls = true\n")
        inst = Instance(data_dir=data_dir, db=db)
        if tokens:
            inst.add_tokens(tokens)
        return inst

    yield make
    for name in extra_pg:
        drop_pg_database(name)


@pytest.fixture
def node(make_instance: MakeInstance) -> Instance:
    """A DE node with admin, editor and reader tokens."""
    return make_instance("DE")


@pytest.fixture
def app_client(aiohttp_client: Any) -> ClientFactory:
    """Factory: ``await app_client(instance, max_body_bytes="10")`` serves an instance in-process."""
    from node.http.app import create_app

    async def make(inst: Instance, **env: str) -> TestClient[Any, Any]:
        return await aiohttp_client(create_app(inst.settings(**env)))  # type: ignore[no-any-return]

    return make


@pytest.fixture
async def client(app_client: ClientFactory, node: Instance) -> TestClient[Any, Any]:
    """The DE node, in-process."""
    return await app_client(node)
