"""Reading import files (node.services.importer.read_rows): formats, line numbers, row-level problems."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.services.importer import ImportFileError, Options, Rejection, Row, read_rows, sniff

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "import"
DE = Options("DE")
MINIMAL = {
    "legal_name": "Cyber Lab GmbH",
    "country": "DE",
    "org_type": "ctype.industry-sme",
    "fields_of_activity": ["foa.academia-research-innovation"],
    "domains": ["cry"],
    "subdomains": ["cry.10"],
    "description": "Post-quantum cryptography for energy grids.",
}


def rows(data: str | bytes, options: Options = DE, name: str = "f") -> list[Row]:
    raw = data.encode() if isinstance(data, str) else data
    return read_rows(raw, name, options).rows


def test_sniffing() -> None:
    assert sniff("  [", "x") == "json"
    assert sniff('{"a": 1}\n{"a": 2}\n', "x") == "ndjson"
    assert sniff('{\n  "a": 1\n}\n', "x") == "json"  # one pretty-printed object
    assert sniff("legal_name,country\n", "x") == "csv"
    assert sniff("legal_name;country\n", "x") == "csv"
    assert sniff("legal_name\n", "orgs.csv") == "csv"
    with pytest.raises(ImportFileError, match="unknown format"):
        sniff("hello world\n", "notes.txt")


def test_json_array_items_carry_their_line() -> None:
    parsed = rows((FIXTURES / "organisations.json").read_bytes())
    assert [r.line for r in parsed] == [2, 25, 37]
    assert parsed[1].visibility == "public" and parsed[1].rtype == "organisation"
    assert parsed[2].visibility == "network"
    assert all(r.rejection is None for r in parsed)


def test_json_element_breaking_a_strict_rule_rejects_only_that_element() -> None:
    text = (
        '[\n{"type": "organisation", "payload": {"a": 1, "a": 2}},\n{"type": "organisation", "payload": {}},\n'
        '{"type": "organisation", "payload": {"n": 123456789012345678901}}\n]'
    )
    parsed = rows(text)
    assert [(r.line, r.rejection.code if r.rejection else None) for r in parsed] == [
        (2, "malformed_json"),
        (3, None),
        (4, "canonicalization_error"),
    ]


def test_broken_json_array_is_a_file_error() -> None:
    with pytest.raises(ImportFileError, match="malformed JSON at line 4"):
        rows('[\n{"type": "organisation", "payload": {}},\n{"type": \n')
    with pytest.raises(ImportFileError, match="after the JSON array"):
        rows("[]\n[]")


def test_ndjson_bare_payloads_need_type() -> None:
    text = (FIXTURES / "experts.ndjson").read_text(encoding="utf-8")
    parsed = rows(text, Options("DE", rtype="expert"))
    assert [r.line for r in parsed] == [1, 2, 4]  # blank line 3 skipped
    assert {r.visibility for r in parsed} == {"national"}  # experts default to national
    assert rows(text, Options("DE", rtype="expert", visibility="public"))[0].visibility == "public"
    untyped = rows(text)
    assert untyped[0].rejection is not None and untyped[0].rejection.errors[0]["pointer"] == "/type"


def test_ndjson_malformed_line_is_a_row_problem() -> None:
    parsed = rows(
        '{"type": "organisation", "payload": {}}\n{"type": \n{"type": "organisation", "payload": {}}\n'
    )
    assert [r.rejection.code if r.rejection else "ok" for r in parsed] == ["ok", "malformed_json", "ok"]


def test_bare_payload_default_visibility_is_public() -> None:
    parsed = rows(json.dumps([MINIMAL]), Options("DE", rtype="organisation"))
    assert (parsed[0].rtype, parsed[0].visibility, parsed[0].payload) == ("organisation", "public", MINIMAL)


def test_signed_envelopes_are_read_as_their_payload() -> None:
    env = {
        "ncc": 1,
        "id": "urn:ncc:DE:organisation:0b9e2c8e-4f0a-4f57-9d36-1c8f4c1d2a11",
        "type": "organisation",
        "schema": "organisation/1",
        "origin": "DE",
        "version": 3,
        "issued_at": "2026-11-26T22:50:01Z",
        "visibility": "network",
        "deleted": False,
        "payload": MINIMAL,
        "sig": {},
    }
    tomb = {**env, "deleted": True, "payload": {"reason": "withdrawn"}}
    parsed = rows(json.dumps(env) + "\n" + json.dumps(tomb) + "\n")
    assert (parsed[0].rtype, parsed[0].visibility, parsed[0].payload) == ("organisation", "network", MINIMAL)
    assert parsed[1].rejection is not None and parsed[1].rejection.code == "gone"


def test_csv_rows_and_row_problems() -> None:
    parsed = rows((FIXTURES / "organisations.csv").read_bytes(), Options("DE", rtype="organisation"))
    assert [r.line for r in parsed] == [2, 3, 4, 5]
    first = parsed[0].payload
    assert first["legal_name"] == "Universität Kyberstadt"
    assert first["domains"] == ["cry", "nds"] and first["keywords"] == ["Kryptografie", "Netz; Sicherheit"]
    assert first["sme"] is False and first["consent"] == {"share_with_eccc_and_nccs": True}
    assert first["identifiers"] == {"pic": "999990011"}
    assert parsed[1].payload["sme"] is True and "sectors" not in parsed[1].payload
    assert parsed[2].rejection == Rejection.at("/sme", "'yes' is not true or false")
    assert parsed[3].payload["domains"] == [] and parsed[3].payload["subdomains"] == []


def test_csv_semicolon_delimited_with_integers() -> None:
    parsed = rows((FIXTURES / "projects.csv").read_bytes(), Options("DE", rtype="project"))
    assert parsed[0].payload["grant_id"] == 101070586 and parsed[0].payload["acronym"] == "QUANTÉNERGIE"
    assert parsed[1].rejection is not None and parsed[1].rejection.errors[0]["pointer"] == "/grant_id"


def test_csv_visibility_column() -> None:
    parsed = rows("visibility,legal_name\nnetwork,A\n,B\n", Options("DE", rtype="organisation"))
    assert [r.visibility for r in parsed] == ["network", "public"]


def test_csv_row_longer_than_header() -> None:
    parsed = rows("legal_name,country\nA,DE,extra\n", Options("DE", rtype="organisation"))
    assert parsed[0].rejection is not None


@pytest.mark.parametrize(
    ("data", "options", "message"),
    [
        (b"", DE, "empty file"),
        (b" \n\n", DE, "empty file"),
        (b"\xff\xfe\x00", DE, "not UTF-8"),
        (b"legal_name,country\nA,DE\n", DE, "needs --type"),
        (b"legalname,country\nA,DE\n", Options("DE", rtype="organisation"), "unknown column 'legalname'"),
        (b"legal_name,country\n", Options("DE", rtype="organisation"), "no records"),
        (b"[]", DE, "no records"),
    ],
)
def test_file_errors(data: bytes, options: Options, message: str) -> None:
    with pytest.raises(ImportFileError, match=message):
        read_rows(data, "f", options)


def test_bom_is_ignored() -> None:
    parsed = rows("\ufefflegal_name,country\nA,DE\n".encode(), Options("DE", rtype="organisation"))
    assert parsed[0].payload == {"legal_name": "A", "country": "DE"}


def test_cordis_files_are_detected_by_header() -> None:
    parsed = read_rows(
        (FIXTURES / "cordis" / "organization.csv").read_bytes(), "organization.csv", Options("GR")
    )
    assert parsed.fmt == "cordis-organizations"
    assert [r.line for r in parsed.rows] == [2, 4, 5, 11]
    assert parsed.rows[3].rejection is not None
    projects = read_rows((FIXTURES / "cordis" / "project.csv").read_bytes(), "project.csv", Options("GR"))
    assert projects.fmt == "cordis-projects" and len(projects.rows) == 5  # no organisations file: every row


def test_forced_cordis_format_on_another_file() -> None:
    with pytest.raises(ImportFileError, match="not a CORDIS projects file"):
        read_rows(
            (FIXTURES / "organisations.csv").read_bytes(), "o.csv", Options("DE", fmt="cordis-projects")
        )


def test_rejection_report_lines() -> None:
    rejection = Rejection(
        "schema_invalid",
        "x",
        (
            {"pointer": "/subdomains/0", "message": "'cry.99' is unknown"},
            {"pointer": "/org_type", "message": "x" * 400},
        ),
    )
    lines = rejection.report("line 7")
    assert lines[0] == "line 7: schema_invalid /subdomains/0: 'cry.99' is unknown"
    assert lines[1].startswith("line 7: schema_invalid /org_type: xxx") and len(lines[1]) < 340
    assert Rejection("consent_missing", "no consent").report("line 2") == [
        "line 2: consent_missing: no consent"
    ]


def test_cordis_organisations_option_only_with_a_project_file() -> None:
    orgs = (FIXTURES / "cordis" / "organization.csv").read_bytes()
    with pytest.raises(ImportFileError, match="goes with a CORDIS project.csv"):
        read_rows(orgs, "organization.csv", Options("GR"), cordis_organisations=orgs)
