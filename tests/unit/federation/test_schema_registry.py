"""Schema registry: local-only $ref, compiled validation with JSON pointers, disclosure annotations
(public fields by default deny; restricted personal data)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fedkit import registry

import schemas
from federation.errors import SchemaInvalid
from federation.schemas import Annotations, SchemaRegistry, disclose, json_pointer, redact, schema_id_for

BASE = "https://schemas.ncc-federation.eu"
COMMON = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": f"{BASE}/t-common/1",
    "$defs": {
        "person": {
            "type": "object",
            "properties": {"name": {"type": "string", "x-ncc-public": True},
                           "email": {"type": "string", "x-ncc-restricted": True}},
            "additionalProperties": False,
        }
    },
}
THING = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": f"{BASE}/thing/1",
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 5, "x-ncc-public": True},
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


def test_public_pointers_follow_refs_and_arrays() -> None:
    assert small().public_pointers(f"{BASE}/thing/1") == ["/owner/name", "/staff/*/name", "/title"]


def test_redact_keeps_only_public_fields_without_touching_the_input() -> None:
    """Default deny: restricted fields go, and so do fields nobody marked (``a/b~c``, ``code``) and
    fields the schema does not know (``zzz``)."""
    payload = {
        "title": "t",
        "owner": {"name": "n", "email": "e"},
        "staff": [{"name": "a", "email": "a@x"}, {"name": "b"}],
        "secret": {"pin": 1},
        "a/b~c": 3,
        "code": "ab",
        "zzz": {"x": 1},
    }
    before = copy.deepcopy(payload)
    out, removed = redact(payload, small(), f"{BASE}/thing/1")
    assert payload == before
    assert removed == ["/a~1b~0c", "/code", "/owner/email", "/secret", "/staff/0/email", "/zzz"]
    assert out == {"title": "t", "owner": {"name": "n"}, "staff": [{"name": "a"}, {"name": "b"}]}


def test_redact_with_an_unknown_schema_shows_nothing() -> None:
    out, removed = redact({"title": "t", "owner": {"name": "n"}}, small(), f"{BASE}/thing/9")
    assert out == {} and removed == ["/owner", "/title"]


def test_a_public_mark_over_restricted_data_is_not_public() -> None:
    """Restricted wins: a schema that marks an object public while it holds personal data discloses
    neither (a mistake in a schema must fail closed)."""
    doc = {"$id": f"{BASE}/odd/1", "type": "object", "properties": {
        "person": {"x-ncc-public": True, "type": "object",
                   "properties": {"email": {"type": "string", "x-ncc-restricted": True}}},
        "inside": {"x-ncc-restricted": True, "type": "object",
                   "properties": {"label": {"type": "string", "x-ncc-public": True}}}}}
    notes = Annotations.of([doc])
    assert notes.public_pointers(f"{BASE}/odd/1") == []
    out, removed = redact({"person": {"email": "e"}, "inside": {"label": "l"}}, notes, f"{BASE}/odd/1")
    assert out == {} and removed == ["/inside", "/person"]


def test_disclose_returns_the_hidden_values_and_drops_emptied_containers() -> None:
    shown, removed, hidden = disclose(
        {"keep": 1, "box": {"secret": "s"}, "list": [{"secret": "a"}, {"name": "b"}], "scalar": "x"},
        ["/keep", "/list/*/name", "/scalar/deeper"],
    )
    assert shown == {"keep": 1, "list": [{"name": "b"}]}
    assert removed == ["/box", "/list/0/secret", "/scalar"]
    assert hidden == [{"secret": "s"}, "a", "x"]


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
    # what is left is what the public may see, not a record: membership keeps its status only (the
    # schema would want assessed_at with it), and that is the point
    assert out["membership"] == {"status": example["membership"]["status"]}
    assert out["legal_name"] == example["legal_name"]


#: DESIGN §11, exactly: what anonymous readers see of each record type.
PUBLIC_FIELDS = {
    "organisation": ["/country", "/description", "/domains", "/fields_of_activity", "/keywords", "/legal_name",
                     "/membership/status", "/national_name", "/org_type", "/sectors", "/sme", "/subdomains",
                     "/technologies", "/use_cases", "/website"],
    "expert": ["/affiliation", "/country", "/description", "/domains", "/keywords", "/languages", "/name",
               "/roles", "/sectors", "/subdomains", "/technologies"],
}


@pytest.mark.parametrize("record_type", schemas.RECORD_TYPES)
def test_real_schemas_mark_exactly_the_public_fields_of_design_11(record_type: str) -> None:
    sid = schemas.record_schema_id(record_type)
    public = registry().public_pointers(sid)
    properties = registry().document(sid)["properties"]
    if record_type in PUBLIC_FIELDS:
        assert public == PUBLIC_FIELDS[record_type]
    elif record_type == "project":  # every field but contacts (CORDIS publishes them)
        assert public == sorted(f"/{name}" for name in properties if "contact" not in name)
    else:  # facility: every field but contacts and the street address
        assert "/contact" not in public and not any("street" in p or "address" in p for p in public)
        assert {"/name", "/operator", "/access", "/location/city", "/location/country"} <= set(public)
    assert not set(public) & set(registry().restricted_pointers(sid))


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


def test_every_record_schema_version_marks_its_public_fields() -> None:
    """Default deny makes an unannotated schema version invisible to the public (no title, no text):
    every record schema shipped, whatever its version (``organisation/2`` too), marks what DESIGN §11
    makes public, and never personal data."""
    reg = registry()
    titles = {"organisation": "/legal_name", "expert": "/name", "project": "/title", "facility": "/name"}
    versions = [sid for sid in reg.schema_ids() for rtype in schemas.RECORD_TYPES
                if sid.startswith(f"{schemas.ID_BASE}/{rtype}/")]
    assert len(versions) >= len(schemas.RECORD_TYPES)
    for sid in versions:
        rtype = sid.split("/")[-2]
        public = reg.public_pointers(sid)
        assert titles[rtype] in public, sid
        if rtype in PUBLIC_FIELDS:
            assert public == PUBLIC_FIELDS[rtype], sid  # exactly DESIGN §11, also in a new version
        assert "/contact" not in public and "/email" not in public, sid
