"""``ncc verify FILE --directory DIRECTORY_FILE``: offline verification, exit codes, output lines.

The vectors are evaluated at a fixed time; the command uses the real clock, so these tests sign a
directory and records valid around the current time with the vectors' fixed keys.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from federation.directory import sign_directory
from node.commands import verify as verify_command
from tests.unit.federation.fedkit import load_generator

gen = load_generator()
NOW = datetime.now(UTC).replace(microsecond=0)
ORG_2 = "1b9e2c8e-4f0a-4f57-9d36-1c8f4c1d2a12"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ncc")
    verify_command.register(p.add_subparsers(dest="command"))
    return p


def call(*argv: str) -> int:
    args = parser().parse_args(["verify", *argv])
    return int(args.run(args))


@pytest.fixture
def directory_file(tmp_path: Path) -> Path:
    doc = sign_directory(gen.directory_unsigned(issued_at=NOW - timedelta(hours=1)), gen.PRIV["hub"], gen.KID["hub"])
    path = tmp_path / "directory.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def good(uuid: str = gen.ORG_UUID) -> dict[str, Any]:
    return gen.signed(uuid=uuid, issued_at=NOW - timedelta(minutes=1))


def test_single_good_envelope_exits_0(tmp_path: Path, directory_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "one.json"
    f.write_text(json.dumps(good()), encoding="utf-8")
    assert call(str(f), "--directory", str(directory_file)) == 0
    # Success is said, on one line (regression: nothing was printed, which reads as "did nothing").
    out = capsys.readouterr().out
    assert out.startswith("verified 1 record:") and out.count("\n") == 1


def test_ndjson_with_failures_prints_id_and_code(
    tmp_path: Path, directory_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tampered = good(ORG_2)
    tampered["payload"] = {**tampered["payload"], "legal_name": "Evil"}
    future = gen.signed(uuid=ORG_2, issued_at=NOW + timedelta(hours=1))
    lines = [json.dumps(good()), json.dumps(tampered), "", "{not json", json.dumps(future), json.dumps({"ncc": 1})]
    f = tmp_path / "feed.ndjson"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert call(str(f), "--directory", str(directory_file)) == 1
    captured = capsys.readouterr()
    rid = f"urn:ncc:DE:organisation:{ORG_2}"
    assert captured.out.splitlines() == [
        f"{rid}: signature_invalid",
        "line 4: malformed_json",
        f"{rid}: issued_in_future",
        "line 6: envelope_invalid",
    ]
    assert len(captured.err.strip().splitlines()) == 1


def test_json_array(tmp_path: Path, directory_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "many.json"
    f.write_text(json.dumps([good(), good(ORG_2), "nope"]), encoding="utf-8")
    assert call(str(f), "--directory", str(directory_file)) == 1
    assert capsys.readouterr().out.splitlines() == ["item 3: envelope_invalid"]


def test_unreadable_file_exits_1_with_one_line(
    tmp_path: Path, directory_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert call(str(tmp_path / "missing.json"), "--directory", str(directory_file)) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "missing.json" in err


def test_invalid_directory_exits_1(tmp_path: Path, directory_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(directory_file.read_text(encoding="utf-8"))
    doc["serial"] += 1
    bad = tmp_path / "bad-directory.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    f = tmp_path / "one.json"
    f.write_text(json.dumps(good()), encoding="utf-8")
    assert call(str(f), "--directory", str(bad)) == 1
    assert "directory_invalid" in capsys.readouterr().err


def test_empty_file_exits_1(tmp_path: Path, directory_file: Path) -> None:
    f = tmp_path / "empty.ndjson"
    f.write_text("\n", encoding="utf-8")
    assert call(str(f), "--directory", str(directory_file)) == 1


def test_missing_directory_option_is_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        parser().parse_args(["verify", "file.json"])
    assert info.value.code == 2


def test_pretty_printed_unrepresentable_document_is_one_failure(
    tmp_path: Path, directory_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("federation.strictjson")
    env = good()
    env["payload"] = {**env["payload"], "n": 2**60}
    f = tmp_path / "big.json"
    f.write_text(json.dumps(env, indent=2), encoding="utf-8")
    assert call(str(f), "--directory", str(directory_file)) == 1
    assert capsys.readouterr().out.splitlines() == ["line 1: canonicalization_error"]
