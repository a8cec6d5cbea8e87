"""Which schema version a node writes (DESIGN §11): the newest it has that the hub accepts."""

from __future__ import annotations

from typing import Any

import pytest

from federation.errors import SchemaInvalid
from federation.formats import CUSTOM_FORMATS
from federation.schemas import SchemaRegistry
from node.services.schema_versions import SchemaVersions, accepts_version_1
from schemas import load_schema_documents, record_schemas

REGISTRY = SchemaRegistry(load_schema_documents(), CUSTOM_FORMATS)
MINIMAL = {"legal_name": "Cyber Lab GmbH", "country": "DE", "org_type": "ctype.industry-sme",
           "fields_of_activity": ["foa.academia-research-innovation"], "domains": ["cry"], "subdomains": ["cry.10"],
           "description": "Post-quantum cryptography for energy grids."}
FORM = {"general_email": "info@cyberlab.example", "phone": "+49 30 1234567",
        "headquarters": {"is_headquarters": False, "parent": "Cyber Holding AG (AT)"},
        "subsidiaries": {"in_other_member_states": True, "list": ["Cyber Lab SARL (FR)"]},
        "majority_owned_outside_eu": {"value": False}, "exclusion_declaration": True}


def chooser(accepted: set[str] | None) -> SchemaVersions:
    async def load() -> Any:
        return accepts_version_1 if accepted is None else accepted.__contains__

    return SchemaVersions(REGISTRY, load)


def test_the_packaged_record_schemas() -> None:
    assert record_schemas() == ["expert/1", "facility/1", "organisation/1", "organisation/2", "project/1"]


async def test_version_1_until_the_hub_lists_version_2() -> None:
    without = chooser(None)
    await without.refresh()
    assert without.versions("organisation") == [1, 2]
    assert without.current("organisation") == "organisation/1"
    assert without.validate("organisation", MINIMAL) == "organisation/1"
    listed = chooser({"organisation/1", "organisation/2", "expert/1"})
    await listed.refresh()
    assert listed.current("organisation") == "organisation/2"
    assert listed.validate("organisation", {**MINIMAL, **FORM}) == "organisation/2"
    assert listed.validate("organisation", MINIMAL) == "organisation/2"  # /2 only adds optional fields
    assert listed.current("expert") == "expert/1"
    # a version the node does not have is never chosen, listed or not
    future = chooser({"organisation/1", "organisation/2", "organisation/3"})
    await future.refresh()
    assert future.current("organisation") == "organisation/2"


async def test_fields_of_a_version_the_hub_does_not_accept_are_refused_with_the_reason() -> None:
    versions = chooser({"organisation/1"})
    await versions.refresh()
    with pytest.raises(SchemaInvalid) as caught:
        versions.validate("organisation", {**MINIMAL, "general_email": "info@cyberlab.example", "phone": "+49 30 1"})
    assert "organisation/2" in caught.value.detail and "general_email" in caught.value.detail
    assert {e["pointer"] for e in caught.value.errors} == {"/general_email", "/phone"}
    # an ordinary schema error stays an ordinary schema error
    with pytest.raises(SchemaInvalid) as plain:
        versions.validate("organisation", {**MINIMAL, "subdomains": ["nope"]})
    assert "organisation/2" not in plain.value.detail


async def test_v2_validates_the_new_sections() -> None:
    versions = chooser({"organisation/2"})
    await versions.refresh()
    for bad in ({"headquarters": {"is_headquarters": True, "parent": "x"}},  # a headquarters has no parent
                {"headquarters": {"parent": "x"}}, {"general_email": "not an address"},
                {"majority_owned_outside_eu": {"value": "no"}}, {"exclusion_declaration": "yes"},
                {"subsidiaries": {"in_other_member_states": True, "list": ["a", "a"]}}, {"unknown": 1}):
        with pytest.raises(SchemaInvalid):
            versions.validate("organisation", {**MINIMAL, **bad})


async def test_the_held_directory_is_read_again_only_after_the_refresh_interval() -> None:
    calls: list[int] = []
    now = [0.0]

    async def load() -> Any:
        calls.append(1)
        return {"organisation/2"}.__contains__ if len(calls) > 1 else accepts_version_1

    versions = SchemaVersions(REGISTRY, load, refresh_s=5, monotonic=lambda: now[0])
    await versions.refresh()
    await versions.refresh()
    assert len(calls) == 1 and versions.current("organisation") == "organisation/1"
    now[0] = 5.0
    await versions.refresh()
    assert len(calls) == 2 and versions.current("organisation") == "organisation/2"


def test_v2_marks_exactly_the_public_fields_of_design_11() -> None:
    doc = REGISTRY.document("https://schemas.ncc-federation.eu/organisation/2")
    public = {name for name, prop in doc["properties"].items() if prop.get("x-ncc-public")}
    assert public == {"legal_name", "national_name", "country", "website", "org_type", "fields_of_activity", "sme",
                      "domains", "subdomains", "sectors", "technologies", "use_cases", "description", "keywords"}
    assert doc["properties"]["membership"]["properties"]["status"].get("x-ncc-public") is True
    for name in ("general_email", "phone", "contact"):
        assert doc["properties"][name].get("x-ncc-restricted") is True
    v1 = REGISTRY.document("https://schemas.ncc-federation.eu/organisation/1")
    assert set(doc["properties"]) - set(v1["properties"]) == set(FORM)
