"""Regression: a string holding U+0000 is refused as schema_invalid (PostgreSQL text cannot store it;
a record the hub cannot store would block its node's whole feed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from federation.errors import SchemaInvalid
from federation.formats import CUSTOM_FORMATS
from federation.schemas import SchemaRegistry, nul_pointer
from schemas import load_schema_documents, record_schema_id

MINIMAL = json.loads((Path(__file__).resolve().parents[3] / "schemas/examples/organisation.minimal.json").read_text())


@pytest.mark.parametrize(
    ("value", "pointer"),
    [
        ({"a": "x\x00"}, "/a"),
        ({"a": ["ok", "b\x00"]}, "/a/1"),
        ({"a\x00": 1}, "/a\x00"),
        ({"a": {"b/c": "\x00"}}, "/a/b~1c"),
        ({"a": "fine", "b": [1, True, None]}, None),
    ],
)
def test_nul_pointer(value: object, pointer: str | None) -> None:
    assert nul_pointer(value) == pointer


def test_registry_refuses_nul_with_its_pointer() -> None:
    registry = SchemaRegistry(load_schema_documents(), formats=CUSTOM_FORMATS)
    payload = {**MINIMAL, "domains": ["cry"], "description": "Post-quantum\x00"}
    with pytest.raises(SchemaInvalid) as info:
        registry.validate(record_schema_id("organisation"), payload)
    assert info.value.errors == [{"pointer": "/description", "message": "NUL characters are not allowed in strings"}]
    registry.validate(record_schema_id("organisation"), MINIMAL)
