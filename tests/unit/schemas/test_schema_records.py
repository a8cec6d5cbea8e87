"""Record payload schemas: the examples validate, and each rule rejects with the right JSON pointer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from schemas import RECORD_TYPES, record_schema_id

Check = Callable[[str, Any], list[tuple[str, str]]]
Example = Callable[[str], dict[str, Any]]

ORG = record_schema_id("organisation")
EXPERT = record_schema_id("expert")
PROJECT = record_schema_id("project")
FACILITY = record_schema_id("facility")

MINIMAL = {
    "legal_name": "Cyber Lab GmbH",
    "country": "DE",
    "org_type": "ctype.industry-sme",
    "fields_of_activity": ["foa.academia-research-innovation"],
    "domains": ["cry"],
    "subdomains": ["cry.10"],
    "description": "Post-quantum cryptography for energy grids.",
}


def pointers(found: list[tuple[str, str]]) -> list[str]:
    """The distinct JSON pointers of the errors (a value may break a pattern and a format at once)."""
    return sorted({where for where, _ in found})


@pytest.mark.parametrize("type_", RECORD_TYPES)
def test_full_example_validates(type_: str, errors: Check, example: Example) -> None:
    assert errors(record_schema_id(type_), example(type_)) == []


def test_design_minimal_organisation_validates(errors: Check, example: Example) -> None:
    assert example("organisation.minimal") == MINIMAL
    assert errors(ORG, MINIMAL) == []


def test_tag_lists_may_be_empty_but_fields_of_activity_may_not(errors: Check) -> None:
    assert errors(ORG, {**MINIMAL, "domains": [], "subdomains": [], "sectors": []}) == []
    assert pointers(errors(ORG, {**MINIMAL, "fields_of_activity": []})) == ["/fields_of_activity"]


@pytest.mark.parametrize("missing", sorted(MINIMAL))
def test_minimal_fields_are_required(missing: str, errors: Check) -> None:
    payload = {k: v for k, v in MINIMAL.items() if k != missing}
    found = errors(ORG, payload)
    assert pointers(found) == [""]
    assert missing in found[0][1]


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("subdomains", ["cry.99"], "/subdomains/0"),
        ("subdomains", ["cry.10", "cry"], "/subdomains/1"),
        ("domains", ["crypto"], "/domains/0"),
        ("sectors", ["sec.unknown"], "/sectors/0"),
        ("technologies", ["tech.ai"], "/technologies/0"),
        ("use_cases", ["uc.none"], "/use_cases/0"),
        ("fields_of_activity", ["foa.everything"], "/fields_of_activity/0"),
        ("org_type", "ctype.spaceship", "/org_type"),
        ("country", "EL", "/country"),
        ("country", "US", "/country"),
    ],
)
def test_unknown_vocabulary_id_rejected_with_pointer(
    field: str, value: Any, where: str, errors: Check
) -> None:
    assert pointers(errors(ORG, {**MINIMAL, field: value})) == [where]


def test_duplicate_tags_rejected(errors: Check) -> None:
    assert pointers(errors(ORG, {**MINIMAL, "domains": ["cry", "cry"]})) == ["/domains"]


def test_description_limit_is_800_characters(errors: Check) -> None:
    assert errors(ORG, {**MINIMAL, "description": "é" * 800}) == []
    assert pointers(errors(ORG, {**MINIMAL, "description": "x" * 801})) == ["/description"]
    assert pointers(
        errors(EXPERT, {"name": "A", "country": "DE", "consent": {"given": False}, "description": "x" * 801})
    ) == ["/description"]


@pytest.mark.parametrize(
    ("identifiers", "where"),
    [
        ({"pic": "12345678"}, "/identifiers/pic"),
        ({"pic": "1234567890"}, "/identifiers/pic"),
        ({"pic": "12345678a"}, "/identifiers/pic"),
        ({"vat": "GR123456789"}, "/identifiers/vat"),
        ({"vat": "DE 123456789"}, "/identifiers/vat"),
        ({"vat": "US123456789"}, "/identifiers/vat"),
        ({"ror": "https://ror.org/05dxps056"}, "/identifiers/ror"),
        ({"ror": "05dxps055"}, "/identifiers/ror"),
        ({"ror": "https://ror.org/05dxpl055"}, "/identifiers/ror"),
        ({"registration_number": ""}, "/identifiers/registration_number"),
        ({"duns": "123"}, "/identifiers"),
    ],
)
def test_bad_identifiers_rejected(identifiers: dict[str, str], where: str, errors: Check) -> None:
    assert where in pointers(errors(ORG, {**MINIMAL, "identifiers": identifiers}))


def test_good_identifiers_accepted(errors: Check) -> None:
    identifiers = {"pic": "999999999", "vat": "EL094019245", "ror": "https://ror.org/02mhbdp94"}
    assert errors(ORG, {**MINIMAL, "identifiers": identifiers}) == []


@pytest.mark.parametrize(
    "url",
    ["ftp://example.eu/", "example.eu", "javascript:alert(1)", "https://exa mple.eu/", "", "https://"],
)
def test_bad_website_rejected(url: str, errors: Check) -> None:
    assert "/website" in pointers(errors(ORG, {**MINIMAL, "website": url}))


@pytest.mark.parametrize("email", ["not-an-email", "Jane <jane@example.eu>", "jane@", "jane@example"])
def test_bad_email_rejected(email: str, errors: Check) -> None:
    assert "/contact/email" in pointers(errors(ORG, {**MINIMAL, "contact": {"email": email}}))


@pytest.mark.parametrize(
    ("membership", "where"),
    [
        ({"status": "revoked", "assessed_at": "2026-01-01T00:00:00Z"}, "/membership"),
        ({"status": "registered"}, "/membership"),
        (
            {"status": "registered", "assessed_at": "2026-01-01T00:00:00Z", "ground": "security-reasons"},
            "/membership",
        ),
        (
            {"status": "revoked", "assessed_at": "2026-01-01T00:00:00Z", "ground": "bad-vibes"},
            "/membership/ground",
        ),
        ({"status": "suspended"}, "/membership/status"),
        ({"status": "registered", "assessed_at": "2026-01-01 00:00:00"}, "/membership/assessed_at"),
        ({"status": "registered", "assessed_at": "2026-13-01T00:00:00Z"}, "/membership/assessed_at"),
        ({"assessed_at": "2026-01-01T00:00:00Z"}, "/membership"),
    ],
)
def test_membership_rules(membership: dict[str, str], where: str, errors: Check) -> None:
    assert where in pointers(errors(ORG, {**MINIMAL, "membership": membership}))


def test_membership_valid_states(errors: Check) -> None:
    for membership in (
        {"status": "applied"},
        {"status": "registered", "assessed_at": "2026-01-01T00:00:00Z", "assessed_by": "NCC-DE"},
        {"status": "revoked", "assessed_at": "2026-01-01T00:00:00Z", "ground": "criteria-no-longer-met"},
        {"status": "rejected", "assessed_at": "2026-01-01T00:00:00Z", "ground": "criteria-not-met"},
    ):
        assert errors(ORG, {**MINIMAL, "membership": membership}) == [], membership


@pytest.mark.parametrize(
    ("type_", "path"),
    [
        ("organisation", ("sme",)),
        ("organisation", ("legal_name",)),
        ("organisation", ("identifiers", "pic")),
        ("organisation", ("membership", "assessed_at")),
        ("project", ("grant_id",)),
        ("project", ("total_cost",)),
        ("project", ("eu_contribution",)),
        ("facility", ("access", "cross_border")),
        ("expert", ("consent", "given")),
    ],
)
def test_floats_rejected(type_: str, path: tuple[str, ...], errors: Check, example: Example) -> None:
    payload = example(type_)
    target = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = 1.5
    assert "/" + "/".join(path) in pointers(errors(record_schema_id(type_), payload))


@pytest.mark.parametrize("amount", ["1.005", "-1", "01", "1e6", "1,00", " 1", "123456789012345"])
def test_bad_money_rejected(amount: str, errors: Check, example: Example) -> None:
    payload = {**example("project"), "total_cost": amount}
    assert pointers(errors(PROJECT, payload)) == ["/total_cost"]


def test_money_accepts_cents_and_whole_euros(errors: Check, example: Example) -> None:
    for amount in ("0", "0.5", "12.34", "99999999999999.99"):
        assert errors(PROJECT, {**example("project"), "eu_contribution": amount}) == [], amount


@pytest.mark.parametrize("type_", RECORD_TYPES)
def test_additional_property_rejected(type_: str, errors: Check, example: Example) -> None:
    payload = {**example(type_), "favourite_colour": "blue"}
    found = errors(record_schema_id(type_), payload)
    assert pointers(found) == [""]
    assert "favourite_colour" in found[0][1]


@pytest.mark.parametrize(
    ("type_", "nested"),
    [
        ("organisation", "address"),
        ("organisation", "contact"),
        ("facility", "access"),
        ("facility", "location"),
        ("expert", "consent"),
        ("organisation", "consent"),
    ],
)
def test_additional_nested_property_rejected(
    type_: str, nested: str, errors: Check, example: Example
) -> None:
    payload = example(type_)
    payload[nested]["extra"] = "x"
    assert pointers(errors(record_schema_id(type_), payload)) == [f"/{nested}"]


@pytest.mark.parametrize(
    ("orcid", "valid"),
    [
        ("0000-0002-1825-0097", True),
        ("0000-0002-1694-233X", True),
        ("0000-0002-1825-0098", False),
        ("0000-0002-1694-2330", False),
        ("0000000218250097", False),
        ("https://orcid.org/0000-0002-1825-0097", False),
    ],
)
def test_orcid_check_digit(orcid: str, valid: bool, errors: Check) -> None:
    payload = {"name": "Josiah Carberry", "country": "DE", "consent": {"given": False}, "orcid": orcid}
    assert (errors(EXPERT, payload) == []) is valid


def test_expert_needs_a_name_and_consent_is_judged_after_the_schema(errors: Check) -> None:
    """Only ``name`` is required: a missing consent is ``consent_missing`` (checked by the protocol
    after the schema, for network/public experts only), not ``schema_invalid``; a consent object,
    when present, must say whether it is given."""
    assert pointers(errors(EXPERT, {"country": "ES"})) == [""]
    base = {"name": "Ana Núñez"}
    assert errors(EXPERT, base) == []
    assert pointers(errors(EXPERT, {**base, "consent": {}})) == ["/consent"]
    assert pointers(errors(EXPERT, {**base, "consent": {"given": True, "scope": ""}})) == ["/consent/scope"]
    assert errors(EXPERT, {**base, "consent": {"given": True, "scope": "world"}}) == []  # read as network
    assert errors(EXPERT, {**base, "consent": {"given": False}}) == []


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("roles", ["ecsf.wizard"], "/roles/0"),
        ("languages", ["deu"], "/languages/0"),
        ("languages", ["DE"], "/languages/0"),
        ("affiliation", "urn:ncc:DE:expert:13c976da-1284-436f-b5cd-c2f5989bac6f", "/affiliation"),
        ("affiliation", "urn:ncc:DE:organisation:13C976DA-1284-436F-B5CD-C2F5989BAC6F", "/affiliation"),
    ],
)
def test_expert_field_rules(field: str, value: Any, where: str, errors: Check, example: Example) -> None:
    assert pointers(errors(EXPERT, {**example("expert"), field: value})) == [where]


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("grant_id", "101070586", "/grant_id"),
        ("grant_id", 0, "/grant_id"),
        ("grant_id", 2**53, "/grant_id"),
        ("start_date", "2022-02-30", "/start_date"),
        ("start_date", "2022-10-01T00:00:00Z", "/start_date"),
        ("participants", ["urn:ncc:FR:project:8bc879f0-ae89-4a1a-a7f9-c3125b682192"], "/participants/0"),
        ("coordinator", "FR-123", "/coordinator"),
        ("doi", "doi:10.3030/101070586", "/doi"),
        ("programme", "horizon europe", "/programme"),
    ],
)
def test_project_field_rules(field: str, value: Any, where: str, errors: Check, example: Example) -> None:
    assert pointers(errors(PROJECT, {**example("project"), field: value})) == [where]


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (("access", "who"), ["aliens"], "/access/who/0"),
        (("access", "cost_model"), "barter", "/access/cost_model"),
        (("operator",), "urn:ncc:CZ:facility:490bdd30-2f3e-43d2-a353-abbdaa70df5d", "/operator"),
        (("location", "country"), "XX", "/location/country"),
    ],
)
def test_facility_field_rules(
    path: tuple[str, ...], value: Any, where: str, errors: Check, example: Example
) -> None:
    payload = example("facility")
    target = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert pointers(errors(FACILITY, payload)) == [where]


def test_non_ascii_digits_do_not_match_digit_patterns(errors: Check) -> None:
    assert "/identifiers/pic" in pointers(
        errors(
            ORG, {**MINIMAL, "identifiers": {"pic": "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669"}}
        )
    )
