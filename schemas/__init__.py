"""JSON Schema documents (Draft 2020-12) and controlled vocabularies, shipped as package data.

Every document carries an absolute ``$id`` under ``https://schemas.ncc-federation.eu/``; documents
reference each other by that ``$id`` only, so a registry of :func:`load_schema_documents` resolves
every ``$ref`` without fetching anything. Loads are cached: treat the returned objects as read-only.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

SCHEMA_DIR: Path = Path(__file__).resolve().parent
VOCABULARY_DIR: Path = SCHEMA_DIR / "vocabularies"
ID_BASE = "https://schemas.ncc-federation.eu"

RECORD_TYPES: tuple[str, ...] = ("organisation", "expert", "project", "facility")

__all__ = [
    "ID_BASE",
    "RECORD_TYPES",
    "SCHEMA_DIR",
    "VOCABULARY_DIR",
    "load_schema_documents",
    "load_vocabularies",
    "record_schema_id",
    "record_schemas",
    "vocabulary_schema_id",
]


def record_schema_id(type: str, version: int = 1) -> str:
    """Return the ``$id`` of a record type's payload schema, e.g. ``.../organisation/1``.

    Raises ``ValueError`` for an unknown record type or a version below 1.
    """
    if type not in RECORD_TYPES:
        raise ValueError(f"unknown record type: {type!r}")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"invalid schema version: {version!r}")
    return f"{ID_BASE}/{type}/{version}"


def record_schemas() -> list[str]:
    """Every packaged record payload schema as ``<type>/<n>`` (``organisation/1``, ``organisation/2``, …), sorted.

    What a hub of this version validates and accepts side by side (its directory lists them).
    """
    found = set()
    for document in _documents():
        head, _, version = document["$id"].rpartition("/")
        rtype = head.rpartition("/")[2]
        if head == f"{ID_BASE}/{rtype}" and rtype in RECORD_TYPES and version.isdigit():
            found.add(f"{rtype}/{int(version)}")
    return sorted(found)


def vocabulary_schema_id(name: str) -> str:
    """Return the ``$id`` of a vocabulary schema, e.g. ``.../vocab/subdomains/1``."""
    return f"{ID_BASE}/vocab/{name}/1"


def _read(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(document, dict) and isinstance(document.get("$id"), str):
        return document
    raise ValueError(f"{path.name}: not a JSON Schema document with an $id")


@functools.cache
def _documents() -> tuple[dict[str, Any], ...]:
    paths = sorted(SCHEMA_DIR.glob("*.json")) + sorted(VOCABULARY_DIR.glob("*.json"))
    return tuple(_read(path) for path in paths)


def load_schema_documents() -> list[dict[str, Any]]:
    """Return every JSON Schema document: records, envelope, directory, common defs, vocabularies.

    Raises ``OSError``/``ValueError`` if a packaged file is missing or malformed.
    """
    return list(_documents())


@functools.cache
def _vocabularies() -> dict[str, list[dict[str, Any]]]:
    vocabularies: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(VOCABULARY_DIR.glob("*.json")):
        document = _read(path)
        vocabularies[document["x-ncc-vocabulary"]] = document["x-ncc-terms"]
    return vocabularies


def load_vocabularies() -> dict[str, list[dict[str, Any]]]:
    """Return vocabulary name -> terms ``{"id", "label", "parent"?, "atlas_uuid"?, ...}``.

    Names: ``knowledge_domains``, ``subdomains``, ``sectors``, ``technologies``, ``use_cases``,
    ``fields_of_activity``, ``organisation_types``, ``cordis_activity_types``, ``ecsf_role_profiles``,
    ``countries`` (countries also carry ``group`` eu|eea-efta and, for Greece, ``eu_code`` EL).
    Raises ``OSError``/``ValueError`` if a packaged file is missing or malformed.
    """
    return dict(_vocabularies())
