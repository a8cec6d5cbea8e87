"""Schema registry: local-only $ref, compiled validation with JSON pointers, restricted fields."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fedkit import registry

import schemas
from federation.errors import SchemaInvalid
from federation.schemas import SchemaRegistry, json_pointer, redact, schema_id_for

BASE = "https://schemas.ncc-federation.eu"
COMMON = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": f"{BASE}/t-common/1",
    "$defs": {
        "person": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "email": {"type": "string", "x-ncc-restricted": True}},
            "additionalProperties": False,
        }
    },
}
THING = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": f"{BASE}/thing/1",
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 5},
        "owner": {"$ref": f"{BASE}/t-common/1#/$defs/person"},
        "staff": {"type": "array", "items": {"$ref": f"{BASE}/t-common/1#/$defs/person"}},
        "secret": {"type": "object", "x-ncc-restricted": True, "properties": {"pin": {"type": "integer"}}},
        "a/b~c": {"type": "integer"},
        "code": {"type": "string", "format": "even-length"},
    },
    "required": ["title"],
    "additionalProperties": False,
}


def small() -> SchemaRegistry:
    return SchemaRegistry([COMMON, THING], formats={"even-length": lambda s: len(s) % 2 == 0})


def errors_of(reg: SchemaRegistry, sid: str, instance: Any) -> list[dict[str, str]]:
    with pytest.raises(SchemaInvalid) as info:
        reg.validate(sid, instance)
    assert info.value.code == "schema_invalid"
    return [dict(e) for e in info.value.errors]


def test_valid_instance_passes() -> None:
    reg = small()
    reg.validate(f"{BASE}/thing/1", {"title": "ok", "owner": {"name": "x"}, "code": "ab"})
    assert reg.has(f"{BASE}/thing/1") and not reg.has(f"{BASE}/other/1")
    assert reg.is_valid(f"{BASE}/thing/1", {"title": "ok"})
    assert not reg.is_valid(f"{BASE}/nothing/1", {})


def test_every_error_with_its_json_pointer() -> None:
    instance = {"title": "too long", "staff": [{"name": 1}], "a/b~c": "x", "code": "abc", "zzz": 1}
    pointers = {e["pointer"] for e in errors_of(small(), f"{BASE}/thing/1", instance)}
    assert pointers == {"", "/title", "/staff/0/name", "/a~1b~0c", "/code"}


def test_unknown_schema_is_schema_invalid() -> None:
    assert errors_of(small(), f"{BASE}/nothing/1", {})[0]["pointer"] == ""


def test_remote_refs_are_never_fetched() -> None:
    remote = {"$id": f"{BASE}/remote/1", "$ref": "https://example.com/schema.json"}
    with pytest.raises(SchemaInvalid, match="does not compile"):
        SchemaRegistry([remote])


def test_documents_need_unique_ids() -> None:
    with pytest.raises(SchemaInvalid):
        SchemaRegistry([{"type": "object"}])
    with pytest.raises(SchemaInvalid):
        SchemaRegistry([THING, copy.deepcopy(THING)])


def test_restricted_pointers_follow_refs_and_arrays() -> None:
    assert small().restricted_pointers(f"{BASE}/thing/1") == ["/owner/email", "/secret", "/staff/*/email"]


def test_redact_removes_restricted_fields_without_touching_the_input() -> None:
    payload = {
        "title": "t",
        "owner": {"name": "n", "email": "e"},
        "staff": [{"name": "a", "email": "a@x"}, {"name": "b"}],
        "secret": {"pin": 1},
    }
    before = copy.deepcopy(payload)
    out, removed = redact(payload, small(), f"{BASE}/thing/1")
    assert payload == before
    assert removed == ["/owner/email", "/secret", "/staff/0/email"]
    assert out == {"title": "t", "owner": {"name": "n"}, "staff": [{"name": "a"}, {"name": "b"}]}


def test_json_pointer_escapes() -> None:
    assert json_pointer([]) == ""
    assert json_pointer(["a/b", "c~d", 0]) == "/a~1b/c~0d/0"


def test_schema_id_for_envelope_field() -> None:
    assert schema_id_for("organisation/1") == schemas.record_schema_id("organisation")


# -- the real schemas -----------------------------------------------------------------------------


@pytest.mark.parametrize("record_type", schemas.RECORD_TYPES)
def test_real_examples_validate(record_type: str) -> None:
    example = json.loads((schemas.SCHEMA_DIR / "examples" / f"{record_type}.json").read_text(encoding="utf-8"))
    registry().validate(schemas.record_schema_id(record_type), example)


def test_minimal_organisation_of_design_9_validates() -> None:
    minimal = {
        "legal_name": "Cyber Lab GmbH",
        "country": "DE",
        "org_type": "ctype.industry-sme",
        "fields_of_activity": ["foa.academia-research-innovation"],
        "domains": ["cry"],
        "subdomains": ["cry.10"],
        "description": "Post-quantum cryptography for energy grids.",
    }
    registry().validate(schemas.record_schema_id("organisation"), minimal)


def test_real_organisation_contact_is_restricted_and_redacted() -> None:
    sid = schemas.record_schema_id("organisation")
    assert "/contact" in registry().restricted_pointers(sid)
    example = json.loads((schemas.SCHEMA_DIR / "examples" / "organisation.json").read_text(encoding="utf-8"))
    out, removed = redact(example, registry(), sid)
    assert "contact" not in out and "/contact" in removed
    registry().validate(sid, out)


def test_real_schema_errors_point_into_the_payload() -> None:
    sid = schemas.record_schema_id("organisation")
    bad = {"legal_name": "x", "country": "DE", "org_type": "ctype.nope", "fields_of_activity": [],
           "domains": ["cry"], "subdomains": ["cry.10"], "description": "d", "sme": 1.5}
    pointers = {e["pointer"] for e in errors_of(registry(), sid, bad)}
    assert {"/org_type", "/fields_of_activity", "/sme"} <= pointers


def test_a_mistyped_vocabulary_id_names_the_nearest_ids() -> None:
    """Regression (issue 19): the message listed two ids "or 148 other candidates"."""
    registry = SchemaRegistry(schemas.load_schema_documents())
    payload = {"legal_name": "X", "country": "DE", "org_type": "ctype.industry-sme",
               "fields_of_activity": [], "domains": ["cry"], "subdomains": ["cry.100"],
               "sectors": ["sec.enrgy"], "description": "d"}
    with pytest.raises(SchemaInvalid) as caught:
        registry.validate(schemas.record_schema_id("organisation"), payload)
    messages = {e["pointer"]: e["message"] for e in caught.value.errors}
    assert messages["/subdomains/0"].startswith('"cry.100" is not a known value; nearest: cry.10')
    assert "sec.energy" in messages["/sectors/0"] and "candidates" not in messages["/sectors/0"]
    assert messages["/fields_of_activity"] == "needs at least 1 item"
