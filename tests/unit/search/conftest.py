"""Fixtures for the search engine tests: a connected client per backend, with the schema."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest

from node.search import SearchBackend, SearchDoc, backend_for, create_search_schema
from node.search.client import open_client
from node.search.sql import SqlSearchBackend

#: A small hand-made vocabulary in the shape of ``schemas.load_vocabularies()``.
VOCABULARIES: dict[str, list[dict[str, Any]]] = {
    "knowledge_domains": [
        {"id": "cry", "label": "Cryptology (Cryptography and Cryptanalysis)"},
        {"id": "net", "label": "Network and Distributed Systems"},
    ],
    "subdomains": [
        {"id": "cry.10", "label": "Post-quantum cryptography", "parent": "cry"},
        {"id": "cry.01", "label": "Asymmetric cryptography", "parent": "cry"},
        {"id": "net.02", "label": "Network security", "parent": "net"},
    ],
    "sectors": [{"id": "sec.energy", "label": "Energy"}, {"id": "sec.health", "label": "Health"}],
    "technologies": [{"id": "tech.ai", "label": "Artificial intelligence"}],
    "use_cases": [{"id": "uc.cip", "label": "Critical Infrastructure Protection (CIP)"}],
    "fields_of_activity": [
        {"id": "foa.academia-research-innovation", "label": "Academia, research or innovation"}
    ],
    "organisation_types": [
        {"id": "ctype.industry-sme", "label": "Industry – SME"},
        {"id": "ctype.academic-research", "label": "Academic and research organisation"},
    ],
    "ecsf_role_profiles": [{"id": "ecsf.penetration-tester", "label": "Penetration Tester"}],
    "countries": [
        {"id": "DE", "label": "Germany"},
        {"id": "AT", "label": "Austria"},
        {"id": "FR", "label": "France"},
    ],
}


def make_doc(
    n: int,
    *,
    title: str = "",
    text: str = "",
    type: str = "organisation",
    origin: str = "DE",
    visibility: str = "public",
    version: int = 1,
    tags: Mapping[str, Sequence[str]] | None = None,
) -> SearchDoc:
    """A document whose issued_at grows with ``n`` (so higher ``n`` is newer)."""
    all_tags: dict[str, tuple[str, ...]] = {"type": (type,), "country": (origin,)}
    for dim, values in (tags or {}).items():
        all_tags[dim] = tuple(values)
    return SearchDoc(
        id=f"urn:ncc:{origin}:{type}:00000000-0000-0000-0000-{n:012d}",
        type=type,
        origin=origin,
        visibility=visibility,
        version=version,
        issued_at=f"2026-{1 + n // 28 % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:00:00Z",
        title=title or f"Organisation {n}",
        text=text,
        tags=all_tags,
    )


@pytest.fixture(params=["sql", "accelerated"])
def search_mode(request: pytest.FixtureRequest) -> str:
    """How search() answers: in SQL alone, or through the in-process accelerator (accel.py)."""
    return str(request.param)


@pytest.fixture
async def engine(db_url: str, search_mode: str) -> AsyncIterator[tuple[SearchBackend, Any]]:
    """(backend, connection) on a fresh database with the search schema, per search mode."""
    async with open_client(db_url) as conn:
        await create_search_schema(conn)
        backend = backend_for(conn.capabilities.dialect, accelerated=search_mode == "accelerated")
        assert getattr(backend, "accelerated", False) == (search_mode == "accelerated")
        yield backend, conn


@pytest.fixture
async def pair(engine: tuple[Any, Any]) -> tuple[SqlSearchBackend, SqlSearchBackend, Any]:
    """(sql backend, accelerated backend, connection) on one database."""
    _, conn = engine
    sql = backend_for(conn.capabilities.dialect, accelerated=False)
    fast = backend_for(conn.capabilities.dialect, accelerated=True)
    assert isinstance(sql, SqlSearchBackend) and isinstance(fast, SqlSearchBackend)
    return sql, fast, conn
