"""CSV column mapping (node.services.tabular): columns from the schemas, cells <-> payload values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.services import tabular
from node.services.tabular import CellError, columns_for, payload_to_row, row_to_payload, split_list

EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "examples"


def names(rtype: str) -> list[str]:
    return [c.name for c in columns_for(rtype)]


def test_columns_flatten_nested_objects_with_dots() -> None:
    org = names("organisation")
    assert org[:3] == ["legal_name", "national_name", "country"]
    for dotted in (
        "identifiers.pic",
        "identifiers.vat",
        "contact.email",
        "membership.status",
        "membership.assessed_at",
        "consent.share_with_eccc_and_nccs",
        "address.city",
    ):
        assert dotted in org
    assert "identifiers" not in org and "contact" not in org
    assert "consent.given" in names("expert")
    assert {"access.who", "access.cross_border", "location.country"} <= set(names("facility"))


def test_column_kinds_follow_the_schema() -> None:
    kinds = {c.name: c for c in columns_for("project")}
    assert kinds["grant_id"].kind == "integer"
    assert kinds["participants"].kind == "list"
    assert kinds["total_cost"].kind == "string"  # money is a decimal string, never a number
    org = {c.name: c for c in columns_for("organisation")}
    assert org["sme"].kind == "boolean"
    assert org["consent.share_with_eccc_and_nccs"].kind == "boolean"
    assert org["domains"].kind == "list" and org["domains"].required
    assert org["sectors"].kind == "list" and not org["sectors"].required
    assert {c.name: c for c in columns_for("facility")}["access.who"].kind == "list"


@pytest.mark.parametrize("example", ["organisation", "organisation.minimal", "expert", "project", "facility"])
def test_schema_examples_round_trip_through_cells(example: str) -> None:
    payload = json.loads((EXAMPLES / f"{example}.json").read_text(encoding="utf-8"))
    rtype = example.split(".")[0]
    columns = list(columns_for(rtype))
    assert row_to_payload(columns, payload_to_row(columns, payload)) == payload


def test_cells_are_converted_by_kind() -> None:
    columns = tabular.check_header("project", ["grant_id", "title", "participants", "domains", "total_cost"])
    payload = row_to_payload(columns, ["101070586", "Titel", " urn:a ; urn:b;", "", "12.50"])
    assert payload == {
        "grant_id": 101070586,
        "title": "Titel",
        "participants": ["urn:a", "urn:b"],
        "total_cost": "12.50",
    }


def test_booleans_are_true_or_false_in_any_case() -> None:
    columns = tabular.check_header("organisation", ["sme", "consent.share_with_eccc_and_nccs"])
    assert row_to_payload(columns, ["TRUE", "False"]) == {
        "sme": True,
        "consent": {"share_with_eccc_and_nccs": False},
    }
    with pytest.raises(CellError) as info:
        row_to_payload(columns, ["yes", ""])
    assert info.value.pointer == "/sme"


def test_bad_integer_names_its_pointer() -> None:
    with pytest.raises(CellError) as info:
        row_to_payload(tabular.check_header("project", ["grant_id"]), ["10107x"])
    assert info.value.pointer == "/grant_id" and "10107x" in info.value.message


def test_empty_cells_are_absent_except_required_lists() -> None:
    columns = tabular.check_header(
        "organisation", ["legal_name", "domains", "subdomains", "sectors", "contact.email"]
    )
    assert row_to_payload(columns, ["X", "", "[]", "", ""]) == {
        "legal_name": "X",
        "domains": [],
        "subdomains": [],
    }
    assert row_to_payload(columns, ["X", "", "", "[]"]) == {
        "legal_name": "X",
        "domains": [],
        "subdomains": [],
        "sectors": [],
    }


def test_unknown_or_repeated_columns_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown column 'legalname'"):
        tabular.check_header("organisation", ["legalname"])
    with pytest.raises(ValueError, match="twice"):
        tabular.check_header("organisation", ["legal_name", "legal_name"])


def test_list_escapes() -> None:
    assert split_list(r"a\;b;c\\;\ d") == ["a;b", "c\\", " d"]
    assert split_list(" ; ;") == []


@given(st.lists(st.text(min_size=1, max_size=12), max_size=6))
def test_list_cells_round_trip(items: list[str]) -> None:
    column = tabular.Column("keywords", ("keywords",), "list")
    cell = payload_to_row([column], {"keywords": items})[0]
    assert row_to_payload([column], [cell]) == {"keywords": items}
