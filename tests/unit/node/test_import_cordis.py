"""CORDIS open-data mapping (node.services.cordis), on the fixture files and on single values."""

from __future__ import annotations

from pathlib import Path

import pytest

from federation.schemas import SchemaRegistry
from node.context import build_registry
from node.services import cordis
from node.services.tabular import CellError
from schemas import record_schema_id

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "import" / "cordis"


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return build_registry()


def read(name: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    return cordis.read_rows((FIXTURES / name).read_text(encoding="utf-8"))


def test_eu_country_codes_map_to_iso() -> None:
    assert cordis.iso_country("EL") == "GR"
    assert cordis.iso_country("uk") == "GB"
    assert cordis.iso_country("DE") == "DE"


def test_headers_are_detected() -> None:
    assert cordis.detect(read("organization.csv")[0]) == cordis.ORGANISATIONS
    assert cordis.detect(read("project.csv")[0]) == cordis.PROJECTS
    assert cordis.detect(["legal_name", "country"]) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3999875,25", "3999875.25"),
        ("3999875.25", "3999875.25"),
        ("750000,5", "750000.50"),
        ("2000000", "2000000.00"),
        ("0", "0.00"),
        ("1,005", "1.01"),
        ("", None),
    ],
)
def test_amounts_become_decimal_strings(text: str, expected: str | None) -> None:
    assert cordis.money(text, "/total_cost") == expected


@pytest.mark.parametrize("text", ["abc", "-5", "NaN", "1.2.3"])
def test_bad_amounts_are_refused(text: str) -> None:
    with pytest.raises(CellError) as info:
        cordis.money(text, "/total_cost")
    assert info.value.pointer == "/total_cost"


def test_dates() -> None:
    assert cordis.date("2022-10-01", "/start_date") == "2022-10-01"
    assert cordis.date("2022-10-01 00:00:00", "/start_date") == "2022-10-01"
    assert cordis.date("", "/start_date") is None
    with pytest.raises(CellError):
        cordis.date("31/12/2024", "/start_date")


def test_truncate_cuts_at_a_word_with_an_ellipsis() -> None:
    assert cordis.truncate("short", 10) == "short"
    cut = cordis.truncate("word " * 300, 800)
    assert len(cut) <= 800 and cut.endswith("word…")


def test_website_and_vat_normalisation() -> None:
    assert cordis.website("www.example.gr") == "https://www.example.gr"
    assert cordis.website("http://x.example.de") == "http://x.example.de"
    assert cordis.website("not a url") is None
    assert cordis.vat("EL 998 877 665", "GR") == "EL998877665"
    assert cordis.vat("GR998877665", "GR") == "EL998877665"
    assert cordis.vat("998877665", "GR") == "EL998877665"
    assert cordis.vat("DE-811.193.231", "DE") == "DE811193231"
    assert cordis.vat("MISSING", "DE") is None


def test_organisations_of_one_country_deduplicated_and_merged() -> None:
    _, rows = read("organization.csv")
    orgs = cordis.organisations_of(rows, "GR")
    assert [o.organisation_id for o in orgs] == ["999912301", "999912302", "999912307", "999912303"]
    ika = orgs[0]
    assert ika.line == 2
    assert ika.projects == [("ATHENA-SEC", "coordinator"), ("KYBERNETES", "participant")]
    assert [o.organisation_id for o in cordis.organisations_of(rows, "GB")] == ["999912305"]  # UK -> GB


def test_organisation_payload_mapping(registry: SchemaRegistry) -> None:
    _, rows = read("organization.csv")
    orgs = {o.organisation_id: o for o in cordis.organisations_of(rows, "GR")}
    ika = cordis.organisation_payload(orgs["999912301"], "GR")
    assert ika["legal_name"] == "ΙΝΣΤΙΤΟΥΤΟ ΚΥΒΕΡΝΟΑΣΦΑΛΕΙΑΣ ΑΘΗΝΩΝ"
    assert ika["country"] == "GR" and ika["address"]["country"] == "GR"
    assert ika["org_type"] == "ctype.academic-research"
    assert ika["fields_of_activity"] == ["foa.academia-research-innovation"]
    assert ika["identifiers"] == {"pic": "999912301", "vat": "EL094014201"}
    assert ika["website"] == "https://www.ika-cyber.example.gr"
    assert ika["domains"] == [] and ika["subdomains"] == []
    assert "ATHENA-SEC (coordinator)" in ika["description"] and len(ika["description"]) <= 800
    sme = cordis.organisation_payload(orgs["999912302"], "GR")
    assert sme["org_type"] == "ctype.industry-sme" and sme["sme"] is True
    assert "foa.industrial-product-development" in sme["fields_of_activity"]
    for org in (ika, sme, cordis.organisation_payload(orgs["999912307"], "GR")):
        registry.validate(record_schema_id("organisation"), org)
    with pytest.raises(CellError) as info:
        cordis.organisation_payload(orgs["999912303"], "GR")  # empty activityType
    assert info.value.pointer == "/org_type"


@pytest.mark.parametrize(
    ("activity", "sme", "org_type"),
    [
        ("HES", "false", "ctype.academic-research"),
        ("REC", "", "ctype.academic-research"),
        ("PRC", "true", "ctype.industry-sme"),
        ("PRC", "false", "ctype.industry-large"),
        ("PUB", "false", "ctype.public-entity"),
        ("OTH", "", "ctype.civil-society"),
    ],
)
def test_activity_type_table(activity: str, sme: str, org_type: str, registry: SchemaRegistry) -> None:
    org = cordis.CordisOrganisation(
        "999999999", 2, {"name": "Ωmega Ltd", "activityType": activity, "SME": sme}
    )
    payload = cordis.organisation_payload(org, "CY")
    assert payload["org_type"] == org_type
    assert "foa.academia-research-innovation" in payload["fields_of_activity"]
    registry.validate(record_schema_id("organisation"), payload)


def test_description_is_cut_to_800_characters() -> None:
    org = cordis.CordisOrganisation(
        "999999999",
        2,
        {"name": "X", "activityType": "REC"},
        [(f"ACRONYM-{i:03d}", "participant") for i in range(200)],
    )
    assert len(cordis.organisation_payload(org, "DE")["description"]) <= 800


def test_project_payload_and_links(registry: SchemaRegistry) -> None:
    _, org_rows = read("organization.csv")
    _, rows = read("project.csv")
    records = {
        "999912301": "urn:ncc:GR:organisation:00000000-0000-4000-8000-000000000001",
        "999912302": "urn:ncc:GR:organisation:00000000-0000-4000-8000-000000000002",
    }
    links = cordis.Links.build(cordis.participations(org_rows), records)
    athena = cordis.project_payload(rows[0][1], links)
    assert athena["grant_id"] == 101070001
    assert athena["programme"] == "HORIZON"
    assert athena["call"] == "HORIZON-CL3-2021-CS-01" and athena["topic"] == "HORIZON-CL3-2021-CS-01-01"
    assert athena["total_cost"] == "3999875.25" and athena["eu_contribution"] == "3999875.25"
    assert athena["coordinator"] == records["999912301"]
    assert athena["participants"] == [records["999912302"]]  # DE partner unknown here, third party not linked
    assert len(athena["objective"]) <= 4000 and athena["objective"].endswith("…")
    assert athena["doi"] == "10.3030/101070001"
    registry.validate(record_schema_id("project"), athena)
    kyber = cordis.project_payload(rows[1][1], links)
    assert "coordinator" not in kyber and kyber["participants"] == [records["999912301"]]
    assert "doi" not in cordis.project_payload(rows[3][1], links)
    with pytest.raises(CellError) as info:
        cordis.project_payload(rows[4][1], links)
    assert info.value.pointer == "/start_date"


def test_project_scope() -> None:
    _, org_rows = read("organization.csv")
    links = cordis.Links.build(cordis.participations(org_rows), {})
    ids = ["101070001", "101127002", "101119003", "101070004", "101070005"]
    assert [i for i in ids if cordis.in_scope(i, links, "GR", "participating")] == [
        "101070001",
        "101127002",
        "101070004",
        "101070005",
    ]
    assert [i for i in ids if cordis.in_scope(i, links, "GR", "coordinated")] == [
        "101070001",
        "101070004",
        "101070005",
    ]
    assert all(cordis.in_scope(i, None, "GR", "participating") for i in ids)
