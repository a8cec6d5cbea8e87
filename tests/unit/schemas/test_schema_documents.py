"""Every packaged schema document: valid Draft 2020-12, right ``$id``, strict, no JSON numbers, titled."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest

from schemas import (
    RECORD_TYPES,
    SCHEMA_DIR,
    load_schema_documents,
    load_vocabularies,
    record_schema_id,
)

BASE = "https://schemas.ncc-federation.eu/"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
VOCABULARIES = (
    "knowledge_domains",
    "subdomains",
    "sectors",
    "technologies",
    "use_cases",
    "fields_of_activity",
    "organisation_types",
    "cordis_activity_types",
    "ecsf_role_profiles",
    "countries",
)


def _documents_by_id() -> dict[str, dict[str, Any]]:
    return {doc["$id"]: doc for doc in load_schema_documents()}


def _subschemas(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield every object schema in a document with its location (skips annotation payloads)."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            if key.startswith("x-") or key in ("enum", "const", "required"):
                continue
            if key in ("properties", "$defs"):
                for name, sub in value.items():
                    yield from _subschemas(sub, f"{path}/{key}/{name}")
            elif isinstance(value, (dict, list)):
                yield from _subschemas(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _subschemas(item, f"{path}/{index}")


def test_every_expected_document_is_packaged() -> None:
    ids = set(_documents_by_id())
    expected = {record_schema_id(t) for t in RECORD_TYPES}
    expected |= {BASE + "envelope/1", BASE + "directory/1", BASE + "common/1"}
    expected |= {record_schema_id("organisation", 2)}  # DESIGN §11: organisation/2 beside organisation/1
    expected |= {f"{BASE}vocab/{name}/1" for name in VOCABULARIES}
    assert ids == expected


@pytest.mark.parametrize("document", load_schema_documents(), ids=lambda d: d["$id"])
def test_document_is_valid_draft_2020_12(document: dict[str, Any]) -> None:
    assert document["$schema"] == DRAFT
    assert document["$id"].startswith(BASE)
    jsonschema_rs.meta.validate(document)


@pytest.mark.parametrize("type_", RECORD_TYPES)
def test_record_schema_file_and_id(type_: str) -> None:
    document = json.loads((SCHEMA_DIR / f"{type_}.v1.json").read_text("utf-8"))
    assert document["$id"] == f"{BASE}{type_}/1" == record_schema_id(type_)
    assert document["additionalProperties"] is False


def test_record_schema_id_rejects_unknown_type_and_bad_version() -> None:
    assert record_schema_id("expert", 2) == BASE + "expert/2"
    with pytest.raises(ValueError):
        record_schema_id("person")
    with pytest.raises(ValueError):
        record_schema_id("expert", 0)


def test_refs_are_absolute_ids_or_local_fragments() -> None:
    ids = set(_documents_by_id())
    for doc in load_schema_documents():
        for where, schema in _subschemas(doc):
            ref = schema.get("$ref")
            if ref is None:
                continue
            assert isinstance(ref, str)
            if ref.startswith("#"):
                continue
            assert ref.split("#", 1)[0] in ids, f"{doc['$id']}{where}: $ref {ref} is not a packaged document"


def test_no_json_number_type_anywhere() -> None:
    for doc in load_schema_documents():
        for where, schema in _subschemas(doc):
            types = schema.get("type")
            types = types if isinstance(types, list) else [types]
            assert "number" not in types, f"{doc['$id']}{where} allows JSON numbers"
            if "integer" in types:
                assert schema.get("maximum", 2**60) <= 2**53 - 1, f"{doc['$id']}{where}: integer unbounded"


def test_every_object_schema_is_closed() -> None:
    for doc in load_schema_documents():
        for where, schema in _subschemas(doc):
            if schema.get("type") == "object" and "properties" in schema:
                closed = (
                    schema.get("additionalProperties") is False
                    or schema.get("unevaluatedProperties") is False
                )
                assert closed, f"{doc['$id']}{where} accepts additional properties"


def test_every_property_and_schema_has_title_and_description() -> None:
    for doc in load_schema_documents():
        assert doc.get("title") and doc.get("description"), doc["$id"]
        for where, schema in _subschemas(doc):
            # Conditional rules (allOf/if/then) only constrain values; they are not form fields.
            if where.split("/")[-2:-1] == ["properties"] and "/allOf/" not in where:
                assert schema.get("title"), f"{doc['$id']}{where} has no title"
                assert schema.get("description"), f"{doc['$id']}{where} has no description"


@pytest.mark.parametrize(
    ("type_", "restricted"),
    [("organisation", {"contact"}), ("facility", {"contact"}), ("expert", {"email"}), ("project", set())],
)
def test_restricted_properties_are_marked(type_: str, restricted: set[str]) -> None:
    document = _documents_by_id()[record_schema_id(type_)]
    marked = {name for name, sub in document["properties"].items() if sub.get("x-ncc-restricted") is True}
    assert marked == restricted


def test_vocabulary_schemas_list_their_terms() -> None:
    documents = _documents_by_id()
    vocabularies = load_vocabularies()
    assert set(vocabularies) == set(VOCABULARIES)
    for name, terms in vocabularies.items():
        document = documents[f"{BASE}vocab/{name}/1"]
        assert document["type"] == "string"
        assert document["enum"] == [term["id"] for term in terms]
        assert all(isinstance(term["label"], str) and term["label"] for term in terms)


def test_vocabulary_sizes_and_shapes() -> None:
    vocabularies = load_vocabularies()
    assert len(vocabularies["knowledge_domains"]) == 15
    assert len(vocabularies["subdomains"]) == 150
    domain_ids = {term["id"] for term in vocabularies["knowledge_domains"]}
    for term in vocabularies["subdomains"]:
        assert term["parent"] in domain_ids
        assert term["id"].startswith(term["parent"] + ".")
        assert "atlas_uuid" in term
    assert all("atlas_uuid" in term for term in vocabularies["knowledge_domains"])
    assert all(term["id"].startswith("ctype.") for term in vocabularies["organisation_types"])
    assert [t["id"] for t in vocabularies["cordis_activity_types"]] == ["HES", "REC", "PRC", "PUB", "OTH"]
    assert len(vocabularies["ecsf_role_profiles"]) == 12
    countries = {term["id"]: term for term in vocabularies["countries"]}
    assert len(countries) == 30
    assert {"IS", "LI", "NO", "GR", "DE"} <= set(countries)
    assert "EL" not in countries
    assert countries["GR"]["eu_code"] == "EL"
    assert countries["NO"]["group"] == "eea-efta"


def test_loads_are_cached_and_return_fresh_containers() -> None:
    assert load_schema_documents()[0] is load_schema_documents()[0]
    assert load_vocabularies() is not load_vocabularies()
