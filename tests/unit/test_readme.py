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
