"""A standalone tortoise database client, for tools and tests that run without the ORM's models.

``Tortoise.init()`` in tortoise 1.x insists on at least one models module; the search engine only
needs a ``BaseDBAsyncClient``, which this builds straight from a database URL.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tortoise.backends.base.config_generator import expand_db_url
from tortoise.context import TortoiseContext


@asynccontextmanager
async def open_client(db_url: str, name: str = "search") -> AsyncIterator[Any]:
    """Yield a connected tortoise client for ``db_url`` (``sqlite://…``, ``postgres://…``) and close it.

    The client lives in a fresh ``TortoiseContext`` (transactions look connections up there).

    Raises tortoise's ``ConfigurationError`` for an unknown scheme and the driver's errors when
    the database cannot be reached.
    """
    info = expand_db_url(db_url)
    engine = importlib.import_module(info["engine"])
    client_class = (
        engine.get_client_class(info) if hasattr(engine, "get_client_class") else engine.client_class
    )
    credentials = dict(info["credentials"])
    if info["engine"] == "tortoise.backends.sqlite":
        credentials["secure_delete"] = "ON"  # as every connection of the service (node.storage.sqlite_engine)
    async with TortoiseContext() as context:
        client = client_class(connection_name=name, **credentials)
        await client.create_connection(with_db=True)
        context.connections.set(name, client)
        try:
            yield client
        finally:
            await client.close()
