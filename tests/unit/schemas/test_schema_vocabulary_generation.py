"""The committed vocabularies are exactly what ``scripts/gen_vocabularies.py`` produces."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from schemas import SCHEMA_DIR

REPO_ROOT = SCHEMA_DIR.parent
SCRIPT = REPO_ROOT / "scripts" / "gen_vocabularies.py"
SOURCE = REPO_ROOT.parent / "shared" / "reference" / "vocabulary.json"


@pytest.mark.skipif(not SOURCE.is_file(), reason=f"reference vocabulary not present at {SOURCE}")
def test_committed_vocabularies_match_generator_output(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(SOURCE), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    generated = {p.name: p.read_bytes() for p in tmp_path.glob("*.json")}
    committed = {p.name: p.read_bytes() for p in (SCHEMA_DIR / "vocabularies").glob("*.json")}
    assert generated == committed


def test_generator_fails_cleanly_on_missing_source(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("gen_vocabularies", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main([str(tmp_path / "missing.json"), "--out", str(tmp_path / "out")]) == 1
