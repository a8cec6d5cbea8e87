"""Fixtures for the schema tests: a jsonschema_rs registry of every packaged document."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import jsonschema_rs
import pytest

from federation.formats import CUSTOM_FORMATS
from schemas import SCHEMA_DIR, load_schema_documents

ENVELOPE_ID = "https://schemas.ncc-federation.eu/envelope/1"
DIRECTORY_ID = "https://schemas.ncc-federation.eu/directory/1"

Errors = list[tuple[str, str]]


def pointer(path: list[str | int]) -> str:
    """Render a jsonschema_rs instance path as an RFC 6901 JSON pointer."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


@pytest.fixture(scope="session")
def registry() -> jsonschema_rs.Registry:
    """All schema documents, keyed by their ``$id``: no remote fetching ever happens."""
    return jsonschema_rs.Registry([(doc["$id"], doc) for doc in load_schema_documents()])


@pytest.fixture(scope="session")
def validator(registry: jsonschema_rs.Registry) -> Callable[[str], jsonschema_rs.Validator]:
    """Return a cached factory: schema ``$id`` -> validator with the custom formats enforced."""
    cache: dict[str, jsonschema_rs.Validator] = {}

    def get(schema_id: str) -> jsonschema_rs.Validator:
        if schema_id not in cache:
            cache[schema_id] = jsonschema_rs.validator_for(
                {"$ref": schema_id},
                formats=CUSTOM_FORMATS,
                validate_formats=True,
                registry=registry,
            )
        return cache[schema_id]

    return get


@pytest.fixture(scope="session")
def errors(validator: Callable[[str], jsonschema_rs.Validator]) -> Callable[[str, Any], Errors]:
    """Return ``(schema_id, instance) -> [(pointer, message), ...]`` (empty when valid)."""

    def check(schema_id: str, instance: Any) -> Errors:
        return [(pointer(e.instance_path), e.message) for e in validator(schema_id).iter_errors(instance)]

    return check


@pytest.fixture
def example() -> Callable[[str], dict[str, Any]]:
    """Return a fresh deep copy of ``schemas/examples/<name>.json``."""

    def load(name: str) -> dict[str, Any]:
        return copy.deepcopy(json.loads((SCHEMA_DIR / "examples" / f"{name}.json").read_text("utf-8")))

    return load
