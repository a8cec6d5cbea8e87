"""The README documents every setting and every command (Datasette-style: undocumented = failing)."""

from __future__ import annotations

import argparse
from pathlib import Path

from node.cli import build_parser
from node.config import SETTINGS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_in_readme() -> None:
    missing = [s.key for s in SETTINGS if f"| `{s.key}` |" not in README]
    assert missing == []


def _commands(parser: argparse.ArgumentParser, prefix: str = "ncc") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                deeper = _commands(sub, f"{prefix} {name}")
                found.extend(deeper or [f"{prefix} {name}"])
    return found


def test_every_command_in_readme() -> None:
    commands = _commands(build_parser())
    assert "ncc init" in commands and "ncc token create" in commands
    section = README.split("## Commands", 1)[1].split("## ", 1)[0]
    missing = []
    for cmd in commands:
        words = cmd.split()
        # "ncc hub suspend|activate" documents both alternatives on one line
        if not any(all(w in line.replace("|", " ").split() for w in words) for line in section.splitlines()):
            missing.append(cmd)
    assert missing == []


def test_ci_runs_the_readme_test_command() -> None:
    """``.ci/run`` installs the ``test`` extra and runs exactly the README's test command (no other flags)."""
    quick = README.split("## Quick start", 1)[1].split("```", 2)[1]
    command = next(line for line in quick.splitlines() if "pytest" in line)
    install, tests = command.split(" && ")[-2:]
    assert (install, tests) == ('pip install -e ".[test]"', "python -m pytest -q")
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text().splitlines()
    assert 'python -m pip install -q -e ".[test]"' in [line.strip() for line in ci]
    runs = [line.strip() for line in ci if "pytest" in line and not line.lstrip().startswith(("#", "echo"))]
    assert runs == [f"{tests} || rc=$?"], runs


def settings_table() -> dict[str, tuple[str, str]]:
    """The README's settings table: key → (role, default cell)."""
    section = README.split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[str, str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 4:
            key = cells[0].strip("`")
            assert key not in rows, f"{key} is in the settings table twice"
            rows[key] = (cells[1], cells[2])
    return rows


def test_the_readme_settings_table_lists_exactly_the_settings() -> None:
    """Every row a setting, every setting a row, with its roles; a default written as a literal is the
    setting's default (``SETTINGS`` is the only source: README, examples and ``Settings`` follow it)."""
    from node.config import ROLES

    rows = settings_table()
    assert sorted(rows) == sorted(s.key for s in SETTINGS)
    for s in SETTINGS:
        role, default = rows[s.key]
        assert role == ("both" if tuple(s.roles) == ROLES else s.roles[0]), s.key
        literal = default.split("`")[1] if default.startswith("`") else None
        if literal is not None and s.default not in ("", None) and not isinstance(s.default, list):
            shown = str(s.default).lower() if isinstance(s.default, bool) else str(s.default)
            assert literal == shown, f"{s.key}: README says {literal}, SETTINGS {shown}"
