"""federation.atlas: an organisation payload as the Atlas's node--cluster resource (pure)."""

from __future__ import annotations

from typing import Any

import pytest

import schemas
from federation import atlas

VOCAB = atlas.Vocabularies(schemas.load_vocabularies())
FULL: dict[str, Any] = {
    "legal_name": "Cyber Lab GmbH", "national_name": "Cyber Labor GmbH", "country": "DE",
    "website": "https://cyberlab.example.de", "org_type": "ctype.industry-sme",
    "fields_of_activity": ["foa.academia-research-innovation"], "domains": ["cry"], "subdomains": ["cry.10"],
    "sectors": ["sec.energy"], "description": "x" * 900,
    "identifiers": {"registration_number": "HRB 1", "vat": "DE123456789"},
    "address": {"street": "Hauptstr. 1", "city": "Berlin", "country": "DE"},
    "contact": {"first_name": "Erika", "family_name": "Muster", "email": "e@x.de", "position": "CISO"},
    "consent": {"share_with_eccc_and_nccs": True},
    # organisation/2 (FORM-ECCC-001)
    "general_email": "info@cyberlab.example.de", "phone": "+49 30 1",
    "headquarters": {"is_headquarters": False, "parent": "Cyber Holding SE, Paris"},
    "subsidiaries": {"in_other_member_states": True, "list": ["Cyber Lab SARL (FR)", "Cyber Lab BV (NL)"]},
    "majority_owned_outside_eu": {"value": False, "details": "ignored when false"},
    "exclusion_declaration": True,
}


def test_every_form_field_is_mapped_and_nothing_else() -> None:
    a = atlas.attributes(FULL)
    assert a == {
        "title": "Cyber Lab GmbH", "field_institution_name_in_nation": "Cyber Labor GmbH",
        "field_url": {"uri": "https://cyberlab.example.de"},
        "field_address": {"country_code": "DE", "locality": "Berlin", "address_line1": "Hauptstr. 1"},
        "field_field_of_activity_descr": "x" * 800, "field_data_sharing_consent": True,
        "field_registration_number": "HRB 1", "field_general_contact_e_mail": "info@cyberlab.example.de",
        "field_phone_number": "+49 30 1", "field_question_headquarter": False,
        "field_headquarter": "Cyber Holding SE, Paris", "field_question_subsidiaries": True,
        "field_subsidiaries_eu": "Cyber Lab SARL (FR)\nCyber Lab BV (NL)", "field_question_majority": False,
        "field_article_136_compliance": True, "field_first_name": "Erika", "field_family_name": "Muster",
        "field_e_mail": "e@x.de", "field_position": "CISO", "moderation_state": "ready_for_publication",
    }
    assert "DE123456789" not in str(a)  # the VAT number has no Atlas field: it is not sent


def test_minimal_payload_leaves_absent_fields_out() -> None:
    a = atlas.attributes({"legal_name": "X", "country": "DE"})
    assert a == {"title": "X", "moderation_state": "ready_for_publication"}


def test_representative_only_with_consent() -> None:
    without = {**FULL, "consent": {"share_with_eccc_and_nccs": False}}
    assert not {"field_first_name", "field_e_mail"} & set(atlas.attributes(without))
    assert atlas.attributes(without)["field_data_sharing_consent"] is False


def test_thematic_areas_by_vocabulary_uuid_and_resolved_terms() -> None:
    doc = atlas.export_resource(FULL, VOCAB)
    thematic = doc["relationships"]["field_cluster_thematic_area"]["data"]
    assert [t["id"] for t in thematic] == [VOCAB.uuids["cry"], VOCAB.uuids["cry.10"]]
    assert {t["type"] for t in thematic} == {"taxonomy_term--cluster_thematic_area"}
    terms = atlas.TermIndex({
        "country": [{"id": "c-de", "attributes": {"name": "Germany", "field_iso_code": "DE"}},
                    {"id": "c-gr", "attributes": {"name": "Greece", "field_iso_code": "EL"}}],
        "cluster_type": [{"id": "t-sme", "attributes": {"name": VOCAB.label("organisation_types", "ctype.industry-sme")}}],
        "fields_of_activity": [{"id": "f-1", "attributes": {
            "name": "  " + VOCAB.label("fields_of_activity", "foa.academia-research-innovation").upper()}}],
        "sectors": [{"id": "s-en", "attributes": {"name": "Energy"}}],
        "technologies": [], "use_cases": [],
    })
    rels = atlas.push_resource(FULL, VOCAB, terms)["relationships"]
    assert rels["field_country"] == {"data": {"type": "taxonomy_term--country", "id": "c-de"}}
    assert rels["field_cluster_type"]["data"]["id"] == "t-sme"
    assert atlas.relationship_ids(rels["field_field_of_activity"]) == ["f-1"]  # case and spaces folded
    assert rels["field_technologies"] == {"data": []}
    greek = {**FULL, "country": "GR"}
    assert atlas.push_resource(greek, VOCAB, terms)["relationships"]["field_country"]["data"]["id"] == "c-gr"
    with pytest.raises(atlas.AtlasMappingError, match="no sectors term 'Health'"):
        atlas.push_resource({**FULL, "sectors": ["sec.health"]}, VOCAB, terms)


def test_changes_send_only_what_differs_and_respect_the_workflow() -> None:
    local = {"attributes": {"title": "A", "field_phone_number": "1", "moderation_state": "ready_for_publication"},
             "relationships": {"field_sectors": {"data": [{"type": "t", "id": "b"}, {"type": "t", "id": "a"}]}}}
    remote = {"attributes": {"title": "A", "field_phone_number": "2", "field_e_mail": "old@x",
                             "moderation_state": "published", "changed": "t1"},
              "relationships": {"field_sectors": {"data": [{"type": "t", "id": "a"}, {"type": "t", "id": "b"}]}}}
    assert atlas.changes(local, remote) == {"attributes": {"field_phone_number": "1", "field_e_mail": None}}
    remote["attributes"]["moderation_state"] = "revision_requested"  # the Centre asked for changes
    assert atlas.changes(local, remote)["attributes"]["moderation_state"] == "ready_for_publication"
    assert atlas.changes(local, {**local}) == {}
