"""``ncc export``: signed NDJSON envelopes (verifiable offline), CSV of one type, options, errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from federation.envelope import Envelope
from federation.keys import b64url_decode
from node.cli import main
from node.commands.base import run_with_db, settings_for
from node.keystore import load_key
from node.services import exporter
from node.services.publish import Publisher
from tests.conftest import premigrated

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "import"


@pytest.fixture
def node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    data_dir = premigrated(tmp_path / "de")
    assert main(["init", "--role", "node", "--country", "DE", "--data-dir", data_dir]) == 0
    assert (
        main(
            ["import", "--data-dir", data_dir, "--type", "organisation", str(FIXTURES / "organisations.csv")]
        )
        == 1
    )
    assert main(["import", "--data-dir", data_dir, "--type", "expert", str(FIXTURES / "experts.ndjson")]) == 1
    capsys.readouterr()
    return data_dir


def ncc(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def envelopes(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_ndjson_lines_are_signed_envelopes_that_verify_offline(
    node: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = ncc(capsys, "export", "--data-dir", node)
    assert code == 0 and err == "exported 5 records\n"
    settings = settings_for(node)
    public_key = load_key(settings.key_path, "node", "DE").public_key
    docs = envelopes(out)
    assert [d["type"] for d in docs] == ["organisation"] * 3 + ["expert"] * 2  # in sequence order
    assert {d["visibility"] for d in docs if d["type"] == "expert"} == {"national"}  # the operator's copy
    for doc in docs:
        env = Envelope.from_dict(doc)
        public_key.verify(b64url_decode(env.sig.value), env.signing_input())  # raises if tampered


def test_type_filter_and_deleted_records(node: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = ncc(capsys, "export", "--data-dir", node, "--type", "expert")
    experts = envelopes(out)
    assert len(experts) == 2
    settings = settings_for(node)

    async def delete() -> None:
        from node.context import build_registry, utc_now

        key = load_key(settings.key_path, "node", "DE")
        publisher = Publisher("DE", lambda: key, build_registry(), utc_now)
        await publisher.delete(experts[0]["id"], "erased")

    run_with_db(settings, delete)
    _, out, _ = ncc(capsys, "export", "--data-dir", node, "--type", "expert")
    assert [e["id"] for e in envelopes(out)] == [experts[1]["id"]]
    _, out, _ = ncc(capsys, "export", "--data-dir", node, "--type", "expert", "--include-deleted")
    docs = envelopes(out)
    assert [(d["id"], d["deleted"]) for d in docs] == [(experts[1]["id"], False), (experts[0]["id"], True)]


def test_csv_export_has_the_import_columns(node: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = ncc(capsys, "export", "--data-dir", node, "--format", "csv", "--type", "organisation")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0].keys()) == exporter.csv_header("organisation")
    first = rows[0]
    assert first["visibility"] == "public" and first["legal_name"] == "Universität Kyberstadt"
    assert first["domains"] == "cry;nds" and first["keywords"] == "Kryptografie;Netz\\; Sicherheit"
    assert first["sme"] == "false" and first["consent.share_with_eccc_and_nccs"] == "true"
    assert rows[2]["domains"] == "[]"  # an empty list, not an absent one


def test_output_file(node: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "out" / "dump.ndjson"
    target.parent.mkdir()
    code, out, err = ncc(capsys, "export", "--data-dir", node, "--output", str(target))
    assert code == 0 and out == "" and "exported 5 records" in err
    assert len(target.read_text(encoding="utf-8").splitlines()) == 5
    assert [p.name for p in target.parent.iterdir()] == ["dump.ndjson"]  # no partial file left


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "csv", "--type", "expert", "--include-deleted"], "tombstones have no CSV form"),
        (["--output", "/nonexistent-dir/x.ndjson"], "cannot write"),
    ],
)
def test_errors_are_one_line(
    node: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = ncc(capsys, "export", "--data-dir", node, *argv)
    assert code == 1 and out == ""
    assert err.startswith("ncc export: ") and err.count("\n") == 1 and message in err


def test_csv_of_every_type_is_one_sheet_with_a_type_column(node: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Regression (contract review): ``ncc export --format csv`` without ``--type`` — DESIGN §7's form —
    failed ("needs --type"). It is now one sheet of every type, each row filling its own columns."""
    code, out, err = ncc(capsys, "export", "--data-dir", node, "--format", "csv")
    assert code == 0 and err == "exported 5 records\n"
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["type"] for r in rows] == ["organisation"] * 3 + ["expert"] * 2
    header = next(csv.reader(io.StringIO(out)))
    assert header[:2] == ["type", "visibility"] and len(header) == len(set(header))
    for rtype in ("organisation", "expert"):
        _, single, _ = ncc(capsys, "export", "--data-dir", node, "--format", "csv", "--type", rtype)
        for mine, alone in zip((r for r in rows if r["type"] == rtype), csv.DictReader(io.StringIO(single)),
                               strict=True):
            assert {k: v for k, v in mine.items() if k in alone} == alone  # the same cells as --type gives
            assert all(v == "" for k, v in mine.items() if k not in alone and k != "type")


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["export", "--data-dir", "d", "--format", "xml"])
    assert info.value.code == 2
