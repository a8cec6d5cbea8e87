"""Full-text and faceted search over verified records, on SQLite (FTS5) or PostgreSQL (tsvector).

Use :func:`backend_for` with the connection's dialect, :func:`create_search_schema` once (from a
migration), :func:`document_from_envelope` to turn a verified envelope into a :class:`SearchDoc`,
then ``upsert``/``delete`` in the record's transaction and ``search`` to query::

    backend = backend_for(conn.capabilities.dialect)
    await backend.upsert(conn, [document_from_envelope(envelope, load_vocabularies())])
    result = await backend.search(conn, SearchQuery(q="kryptog", visibilities=frozenset({"public"})))

Text is folded in Python (``text.normalize``) so both engines match the same way; see
``docs`` in each module for the storage layout.
"""

from __future__ import annotations

from typing import Any

from .base import (
    DIMENSIONS,
    MAX_LIMIT,
    VISIBILITIES,
    Hit,
    SearchBackend,
    SearchDoc,
    SearchQuery,
    SearchResult,
)
from .documents import document_from_envelope
from .postgres import PostgresSearchBackend
from .sqlite import SqliteSearchBackend

__all__ = [
    "DIMENSIONS",
    "MAX_LIMIT",
    "VISIBILITIES",
    "Hit",
    "SearchBackend",
    "SearchDoc",
    "SearchQuery",
    "SearchResult",
    "backend_for",
    "create_search_schema",
    "document_from_envelope",
]

_BACKENDS: dict[str, type[SqliteSearchBackend | PostgresSearchBackend]] = {
    "sqlite": SqliteSearchBackend,
    "postgres": PostgresSearchBackend,
}


def backend_for(dialect: str, *, accelerated: bool | None = None) -> SearchBackend:
    """Return the search backend for a tortoise dialect name ("sqlite" or "postgres").

    ``accelerated`` chooses how ``search`` answers: through the in-process accelerator (roaring
    bitmaps kept current from the ``search_changes`` log, see ``accel.py``) or in SQL alone.
    None means the default: accelerated unless pyroaring/numpy are missing (the instance
    setting ``search_accelerator`` passes False to turn it off). Writes are the same either way.

    Raises ``ValueError`` for any other dialect.
    """
    try:
        backend = _BACKENDS[dialect]
    except KeyError:
        raise ValueError(f"no search backend for dialect {dialect!r}") from None
    return backend(accelerated=accelerated)


async def create_search_schema(conn: Any) -> None:
    """Create the search tables and indexes for ``conn``'s dialect if missing (idempotent).

    Safe inside a transaction (no statement commits). Raises ``ValueError`` for an unsupported
    dialect and the driver's errors for a failing statement.
    """
    backend = _BACKENDS.get(conn.capabilities.dialect)
    if backend is None:
        raise ValueError(f"no search backend for dialect {conn.capabilities.dialect!r}")
    await backend().create_schema(conn)
