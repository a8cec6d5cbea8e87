"""The portal's form and listing helpers (issue 19): plain one-per-field errors, sections, the country
pre-filled, visibility badges, snippets from the record's own visible text."""

from __future__ import annotations

import re
from typing import Any

import jinja2
import pytest

from federation.errors import SchemaInvalid
from federation.formats import CUSTOM_FORMATS
from federation.schemas import SchemaRegistry
from node.access import Access
from node.search.documents import document_from_envelope, packaged_annotations
from node.search.text import match_spans, parse_query, snippet
from node.web import TEMPLATES
from node.web.admin import new_record_values
from node.web.form_errors import field_errors, lower_label, plain_message
from node.web.form_sections import SECTIONS, sections
from node.web.render import visibility_badge
from node.web.schema_forms import fields_by_pointer, form_fields
from node.web.snippets import record_snippet
from schemas import RECORD_TYPES, load_schema_documents, load_vocabularies, record_schema_id

#: What the validator says and people should never read.
VALIDATOR_TALK = re.compile(
    r'is a required property|has less than|does not match|is not one of|is not a "|\[\]|\^'
)


def registry_errors(rtype: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    registry = SchemaRegistry(load_schema_documents(), formats=CUSTOM_FORMATS)
    with pytest.raises(SchemaInvalid) as info:
        registry.validate(record_schema_id(rtype), payload)
    return [dict(e) for e in info.value.errors]


# -- errors -------------------------------------------------------------------------------------


def test_the_registry_names_the_failed_keyword() -> None:
    errors = registry_errors("organisation", {"legal_name": "X", "country": "DE", "fields_of_activity": []})
    by_pointer = {e["pointer"]: e for e in errors}
    assert by_pointer["/fields_of_activity"]["keyword"] == "minItems"
    assert by_pointer["/description"]["keyword"] == "required"


def test_every_schema_failure_is_one_plain_message_per_field() -> None:
    payload = {
        "legal_name": "",
        "country": "XX",
        "org_type": "ctype.nope",
        "fields_of_activity": [],
        "domains": [],
        "subdomains": [],
        "description": "d" * 900,
        "website": "not a url",
        "identifiers": {"pic": "12"},
        "contact": {"email": "nobody"},
    }
    errors = registry_errors("organisation", payload)
    fields = form_fields("organisation")
    shown, rest = field_errors(errors, fields)
    assert rest == []
    # the PIC fails its pattern and its format: one message, not two
    assert sum(1 for e in errors if e["pointer"] == "/identifiers/pic") == 2
    assert shown["/identifiers/pic"].message == "PIC is not in the expected form (see the hint)"
    assert shown["/identifiers/pic"].summary == "Identifiers: PIC is not in the expected form (see the hint)"
    assert shown["/legal_name"].message == "Enter the legal name"
    assert shown["/fields_of_activity"].message == "Choose at least 1 of the fields of activity"
    assert shown["/country"].message == "Choose one of the listed values for the country of establishment"
    assert shown["/website"].message == "Enter the website as a web address starting with https://"
    assert shown["/description"].message == "Description of expertise must be 800 characters or fewer"
    assert shown["/contact/email"].message == "Enter the e-mail as an e-mail address, like name@example.org"
    for e in shown.values():
        assert not VALIDATOR_TALK.search(e.message), e
    # in the order of the form, not of the validator
    order = list(fields_by_pointer(fields))
    assert list(shown) == sorted(shown, key=order.index)


@pytest.mark.parametrize(
    ("keyword", "pointer", "message", "expected"),
    [
        ("minItems", "/domains", "[] has less than 1 item", "Choose at least 1 of the knowledge domains"),
        (
            "required",
            "/subdomains",
            '"subdomains" is a required property',
            "Choose at least one of the knowledge sub-domains",
        ),
        ("required", "/org_type", '"org_type" is a required property', "Choose the organisation type"),
        ("required", "/sme", '"sme" is a required property', "Answer yes or no to “SME”"),
        (
            "required",
            "/keywords",
            '"keywords" is a required property',
            "Enter at least one of the keywords, one per line",
        ),
        (
            "maxLength",
            "/legal_name",
            '"x 12" is longer than 300 characters',
            "Legal name must be 300 characters or fewer",
        ),
        (
            "pattern",
            "/identifiers/vat",
            '"x" does not match "^(AT|BE)"',
            "VAT number is not in the expected form (see the hint)",
        ),
        (
            "enum",
            "/subdomains/0",
            '"cry.100" is not a known value; nearest: cry.10, cry.1',
            "Choose one of the listed values for the knowledge sub-domains (did you mean cry.10, cry.1?)",
        ),
        (
            "format",
            "/website",
            '"x" is not a "uri"',
            "Enter the website as a web address starting with https://",
        ),
        (
            "type",
            "/identifiers",
            '"x" is not of type "object"',
            "The identifiers is not the kind of value expected here",
        ),
        ("", "/country", "must be DE", "Country of establishment: must be DE"),
    ],
)
def test_keywords_in_plain_words(keyword: str, pointer: str, message: str, expected: str) -> None:
    shown, _ = field_errors(
        [{"pointer": pointer, "message": message, "keyword": keyword}], form_fields("organisation")
    )
    (only,) = shown.values()
    assert only.message == expected


def test_required_errors_land_on_the_field_with_any_pointer_style() -> None:
    fields = form_fields("organisation")
    for pointer in ("", "/legal_name", "/payload", "/payload/legal_name"):
        shown, _ = field_errors(
            [{"pointer": pointer, "message": '"legal_name" is a required property'}], fields
        )
        assert list(shown) == ["/legal_name"], pointer
    shown, rest = field_errors([{"pointer": "/accept_terms", "message": "tick the declaration"}], fields)
    assert shown == {} and rest == ["tick the declaration"]


def test_the_first_failure_to_fix_is_the_one_shown() -> None:
    errors = [
        {"pointer": "/identifiers/pic", "message": '"12" is not a "pic"', "keyword": "format"},
        {
            "pointer": "/identifiers/pic",
            "message": '"12" is longer than 9 characters',
            "keyword": "maxLength",
        },
        {"pointer": "/identifiers/pic", "message": '"12" does not match "^[0-9]{9}$"', "keyword": "pattern"},
    ]
    shown, _ = field_errors(errors, form_fields("organisation"))
    assert shown["/identifiers/pic"].message == "PIC is not in the expected form (see the hint)"


def test_labels_inside_sentences() -> None:
    assert lower_label("Legal name") == "legal name"
    assert lower_label("PIC") == "PIC" and lower_label("ORCID iD") == "ORCID iD"
    assert lower_label("E-mail") == "e-mail" and lower_label("EU contribution") == "EU contribution"
    f = fields_by_pointer(form_fields("project"))["/grant_id"]
    assert (
        plain_message(f, "type", "'abc' is not a whole number")
        == "Enter the grant agreement id as a whole number"
    )


# -- sections -----------------------------------------------------------------------------------


@pytest.mark.parametrize("rtype", RECORD_TYPES)
def test_every_field_is_in_exactly_one_section(rtype: str) -> None:
    fields = form_fields(rtype)
    shown = [f.pointer for s in sections(rtype, fields, {}, {}) for f in s.fields]
    assert sorted(shown) == sorted(f.pointer for f in fields)
    assert len(shown) == len(set(shown))
    # every required field is in a section that is shown open
    for s in sections(rtype, fields, {}, {}):
        if any(f.required for f in s.fields):
            assert s.core and s.open, (rtype, s.key)


def test_optional_sections_are_folded_unless_they_hold_an_error() -> None:
    fields = form_fields("organisation")
    plain = {s.key: s for s in sections("organisation", fields, {}, {})}
    assert [k for k, s in plain.items() if s.core] == ["about", "expertise"]
    assert not plain["identifiers"].open and not plain["contact"].open and not plain["membership"].open
    shown, _ = field_errors([{"pointer": "/contact/email", "message": "x", "keyword": "format"}], fields)
    failed = {s.key: s for s in sections("organisation", fields, {"/contact/email": "x"}, shown)}
    assert failed["contact"].open and failed["contact"].errors == 1 and failed["contact"].filled == 1
    assert not failed["identifiers"].open


def test_a_field_no_section_names_is_still_on_the_form() -> None:
    fields = form_fields("organisation")
    trimmed = dict(SECTIONS)
    try:
        SECTIONS["organisation"] = tuple(s for s in SECTIONS["organisation"] if s.key != "identifiers")
        other = [s for s in sections("organisation", fields, {}, {}) if s.key == "other"]
        assert [f.pointer for f in other[0].fields] == ["/identifiers"]
    finally:
        SECTIONS.clear()
        SECTIONS.update(trimmed)


def test_a_new_record_starts_with_the_node_country() -> None:
    assert new_record_values("organisation", "DE") == {"/country": "DE"}
    assert new_record_values("facility", "FR") == {"/country": "FR"}
    assert new_record_values("project", "DE") == {}  # no country field
    assert new_record_values("organisation", "ZZ") == {}  # not an allowed value: nothing pre-filled


# -- badges -------------------------------------------------------------------------------------


def test_visibility_badges() -> None:
    assert (
        visibility_badge("national").label == "national"
        and visibility_badge("national").css == "vis-national"
    )
    assert visibility_badge("public").css == "vis-public" and visibility_badge("network").css == "vis-network"
    group = visibility_badge("group:energy-ncc")
    assert group.label == "group: energy-ncc" and group.css == "vis-group"
    odd = visibility_badge("group:")
    assert odd.label == "group:" and odd.css == "vis-other"


def test_badge_markup_is_escaped() -> None:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.globals["visibility_badge_of"] = visibility_badge
    macro = env.get_template("_badges.html").module.visibility_badge  # type: ignore[attr-defined]
    html = str(macro("group:<b>x</b>"))
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>" not in html
    assert '<span class="visually-hidden">Visibility: </span>' in html


# -- snippets -----------------------------------------------------------------------------------

PROJECT = {
    "grant_id": 101077777,
    "acronym": "HORIZON-SEC",
    "title": "Securing grids",
    "programme": "HORIZON",
    "call": "HORIZON-CL3-2021-CS-01",
    "topic": "HORIZON-CL3-2021-CS-01-01",
    "domains": ["cry"],
}
ORG = {
    "legal_name": "Kryptografie Werk GmbH",
    "country": "DE",
    "org_type": "ctype.industry-sme",
    "fields_of_activity": ["foa.academia-research-innovation"],
    "domains": ["cry"],
    "subdomains": [],
    "description": "We build <post-quantum> cryptography for energy grids & smart meters.",
    "keywords": ["PQC", "smart grid"],
    "contact": {"first_name": "Erika", "family_name": "Mustermann", "email": "erika@example.de"},
}


def envelope(rtype: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"urn:ncc:DE:{rtype}:00000000-0000-0000-0000-000000000001",
        "type": rtype,
        "origin": "DE",
        "visibility": "public",
        "version": 1,
        "issued_at": "2025-01-01T00:00:00Z",
        "schema": f"{rtype}/1",
        "payload": payload,
    }


def test_the_index_text_is_what_snippets_used_to_show() -> None:
    """The regression: without a description the index's snippet is programme codes run together."""
    doc = document_from_envelope(envelope("project", PROJECT), load_vocabularies())
    assert doc is not None
    assert snippet(doc.text, parse_query("")).startswith("HORIZON")
    assert record_snippet("project", PROJECT, "") is None  # nothing to say: no description, no match


def test_a_snippet_is_the_matching_field_with_its_label() -> None:
    s = record_snippet("project", PROJECT, "cl3")
    assert s is not None and s.label == "Call"
    assert s.parts == (("HORIZON-", False), ("CL3", True), ("-2021-CS-01", False))
    s = record_snippet("organisation", ORG, "smart")
    assert s is not None and s.label == ""  # the description matches first: no label
    assert ("smart", True) in s.parts
    s = record_snippet("organisation", ORG, "pqc")
    assert s is not None and s.label == "Keywords" and s.text == "PQC, smart grid"


def test_without_a_match_the_description_starts_the_snippet() -> None:
    s = record_snippet("organisation", ORG, "kryptografie")  # only the title matches
    assert s is not None and s.label == "" and s.text.startswith("We build <post-quantum>")
    assert all(not matched for _, matched in s.parts)


def test_snippets_never_show_what_the_reader_may_not_see() -> None:
    access = Access("node", packaged_annotations())
    shown, removed = access.redact(envelope("organisation", ORG))
    assert "/payload/contact" in removed
    assert record_snippet("organisation", shown["payload"], "mustermann") is not None  # the description
    s = record_snippet("organisation", shown["payload"], "mustermann")
    assert s is not None and "Mustermann" not in s.text and s.label == ""
    # a reader who may see the contact gets the field that matched
    whole = record_snippet("organisation", ORG, "mustermann")
    assert whole is not None and whole.label == "Contact person › Family name" and whole.text == "Mustermann"


def test_snippet_parts_are_escaped_in_the_search_page() -> None:
    env = jinja2.Environment(autoescape=True)
    template = env.from_string(
        "{% for text, matched in parts %}{% if matched %}<mark>{{ text }}</mark>"
        "{% else %}{{ text }}{% endif %}{% endfor %}"
    )
    s = record_snippet("organisation", ORG, "post")
    assert s is not None
    html = template.render(parts=s.parts)
    assert "&lt;<mark>post</mark>-quantum&gt;" in html.replace(
        "<mark>post-quantum</mark>", "<mark>post</mark>-quantum"
    )
    assert "<post" not in html and "&amp;" in html


def test_match_spans_follow_the_index_folding() -> None:
    text = "Straße der Sicherheit: post-quantum Kryptografie, POST quantum!"
    spans = match_spans(text, parse_query("strasse post-quantum krypto"))
    assert [text[a:b] for a, b in spans] == ["Straße", "post-quantum", "Kryptografie", "POST quantum"]
    assert match_spans(text, ()) == [] and match_spans("", parse_query("x")) == []
