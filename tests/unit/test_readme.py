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
