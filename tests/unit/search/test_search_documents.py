"""document_from_envelope: title, text (with vocabulary labels), tags, tombstones."""

from __future__ import annotations

from typing import Any

import pytest

from node.search import document_from_envelope

from .conftest import VOCABULARIES


def envelope(payload: dict[str, Any], **fields: Any) -> dict[str, Any]:
    base = {
        "ncc": 1,
        "id": "urn:ncc:DE:organisation:0b9e2c8e-4f0a-4f57-9d36-1c8f4c1d2a11",
        "type": "organisation",
        "schema": "organisation/1",
        "origin": "DE",
        "version": 3,
        "issued_at": "2026-11-26T22:50:01Z",
        "visibility": "public",
        "deleted": False,
        "payload": payload,
        "sig": {"alg": "Ed25519", "kid": "DE:x", "value": "y"},
    }
    base.update(fields)
    return base


MINIMAL = {
    "legal_name": "Cyber Lab GmbH",
    "national_name": "Cyber-Labor für Sicherheit",
    "country": "DE",
    "org_type": "ctype.industry-sme",
    "fields_of_activity": ["foa.academia-research-innovation"],
    "domains": [],
    "subdomains": ["cry.10"],
    "sectors": ["sec.energy"],
    "keywords": ["Gitter"],
    "description": "Quantum-safe schemes for energy grids.",
}


def test_organisation_document() -> None:
    doc = document_from_envelope(envelope(MINIMAL), VOCABULARIES)
    assert doc is not None
    assert (doc.id, doc.type, doc.origin, doc.version, doc.visibility) == (
        "urn:ncc:DE:organisation:0b9e2c8e-4f0a-4f57-9d36-1c8f4c1d2a11",
        "organisation",
        "DE",
        3,
        "public",
    )
    assert doc.issued_at == "2026-11-26T22:50:01Z"
    assert doc.title == "Cyber Lab GmbH"
    assert doc.text.startswith("Quantum-safe schemes for energy grids.")
    for expected in (
        "Cyber-Labor für Sicherheit",
        "Gitter",
        "Post-quantum cryptography",
        "Energy",
        "Industry – SME",
        "Academia, research or innovation",
        "Germany",
    ):
        assert expected in doc.text
    assert doc.tags["type"] == ("organisation",)
    assert doc.tags["country"] == ("DE",)
    assert doc.tags["subdomain"] == ("cry.10",)
    assert doc.tags["domain"] == ("cry",)  # the parent of its sub-domain
    assert doc.tags["sector"] == ("sec.energy",)
    assert doc.tags["org_type"] == ("ctype.industry-sme",)


def test_tombstone_has_no_document() -> None:
    assert (
        document_from_envelope(envelope({"reason": "withdrawn"}, deleted=True, version=4), VOCABULARIES)
        is None
    )


def test_expert_roles_found_by_vocabulary_and_country_defaults_to_origin() -> None:
    payload = {
        "name": {"given_name": "Zoë", "family_name": "Łukasiewicz"},
        "roles": ["ecsf.penetration-tester"],
        "domains": ["net"],
        "languages": ["de"],
    }
    doc = document_from_envelope(
        envelope(payload, id="urn:ncc:AT:expert:1", type="expert", origin="AT", schema="expert/1"),
        VOCABULARIES,
    )
    assert doc is not None
    assert doc.title == "Zoë Łukasiewicz"
    assert doc.tags["role"] == ("ecsf.penetration-tester",)
    assert doc.tags["country"] == ("AT",)
    assert "Penetration Tester" in doc.text and "Austria" in doc.text


def test_unrecognised_field_is_restricted_not_tagged() -> None:
    """Default deny (DESIGN §11): a field the schema does not mark public — here one it does not
    know at all — neither tags nor feeds the public text; it is in the restricted part only."""
    doc = document_from_envelope(envelope({"legal_name": "X", "focus_sectors": ["sec.health"]}), VOCABULARIES)
    assert doc is not None and "sector" not in doc.tags
    assert "sec.health" in doc.restricted and "Health" not in doc.text


def test_restricted_fields_feed_only_the_restricted_part() -> None:
    payload = {
        "legal_name": "Cyber Lab GmbH", "country": "DE", "description": "Post-quantum cryptography.",
        "identifiers": {"vat": "DE811907980", "registration_number": "HRB 4711"},
        "address": {"street": "Quellenweg 9", "city": "Zwickau", "country": "AT"},
        "contact": {"first_name": "Xaveria", "family_name": "Quenzel", "email": "xq@lab.example"},
        "membership": {"status": "revoked", "assessed_at": "2026-01-01T00:00:00Z", "assessed_by": "Officer Brandl",
                       "ground": "security-reasons"},
    }
    doc = document_from_envelope(envelope(payload), VOCABULARIES)
    assert doc is not None
    public = doc.title + "\n" + doc.text + repr(doc.tags)
    for secret in ("DE811907980", "HRB 4711", "Quellenweg", "Zwickau", "Xaveria", "Quenzel", "xq@lab.example",
                   "Brandl", "security-reasons"):
        assert secret not in public and secret in doc.restricted
    assert doc.tags["country"] == ("DE",)  # never the restricted address's country


def test_project_title_combines_acronym_and_title() -> None:
    payload = {
        "acronym": "QSAFE",
        "title": "Quantum-safe grids",
        "objective": "Objective text.",
        "subdomains": ["cry.01"],
    }
    doc = document_from_envelope(envelope(payload, id="urn:ncc:DE:project:1", type="project", schema="project/1"), VOCABULARIES)
    assert doc is not None
    assert doc.title == "QSAFE – Quantum-safe grids"
    assert doc.text.startswith("Objective text.")
    assert doc.tags["domain"] == ("cry",)


def test_with_the_packaged_vocabularies() -> None:
    schemas = pytest.importorskip("schemas")
    vocabularies = schemas.load_vocabularies()
    doc = document_from_envelope(envelope(MINIMAL), vocabularies)
    assert doc is not None
    assert "Post-quantum cryptography" in doc.text
    assert doc.tags["domain"] == ("cry",)


def test_leaves_fast_path_equals_the_general_walk() -> None:
    """The restricted text's walk handles parsed JSON inline; any other value (a Mapping that is not a
    dict, a str subclass) goes the general way, with the same result and order."""
    from collections import UserDict

    from node.search.documents import _leaf, _leaves

    class Name(str):
        pass

    value = {
        "a": " x ",
        "b": [1, 2.5, True, None, "", {"c": "y", "d": [False, "z"]}],
        "e": UserDict({"f": "w", "g": 7}),
        "h": Name(" v "),
        "i": 0,
    }
    fast: list[str] = []
    general: list[str] = []
    _leaves(value, fast)
    _leaf(value, general)
    assert fast == general == ["x", "1", "2.5", "y", "z", "w", "7", "v", "0"]


def test_tags_and_labels_from_one_pass() -> None:
    """Field dimensions, recognised vocabulary ids in other fields and their labels, in payload order."""
    payload = {
        "legal_name": "Acme",
        "country": "DE",
        "domains": ["cry"],
        "subdomains": ["cry.10"],
        "other": "sec.health",
        "keywords": "sec.energy",
    }
    doc = document_from_envelope(envelope(payload), VOCABULARIES)
    assert doc is not None
    assert doc.tags["domain"] == ("cry",)
    assert doc.tags["subdomain"] == ("cry.10",)
    assert "sec.energy" not in doc.tags.get("sector", ())  # a free-text field is never scanned for ids
