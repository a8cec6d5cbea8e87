"""Every command, sub-command and argument of ``ncc`` says what it is for in ``--help`` (issue 19)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from node.cli import build_parser


def walk(parser: argparse.ArgumentParser, prefix: str = "ncc") -> Iterator[tuple[str, argparse.Action, str | None]]:
    """(command, action, help) for every argument of every (sub)command, and for every sub-command
    its entry in its parent's list (``choices_actions`` carry the ``help=`` of ``add_parser``)."""
    for action in parser._actions:  # argparse keeps its tree here; there is no public accessor
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{prefix} {name}", action, helps.get(name)
                yield from walk(sub, f"{prefix} {name}")
        else:
            yield prefix, action, action.help


def test_every_command_and_argument_has_help() -> None:
    missing = []
    for command, action, text in walk(build_parser()):
        if isinstance(action, argparse._SubParsersAction):
            if not text or not text.strip():
                missing.append(command)
        elif text is not argparse.SUPPRESS and (not text or not text.strip()):
            missing.append(f"{command} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_the_walk_sees_nested_commands_and_their_arguments() -> None:
    seen = {(command, tuple(a.option_strings) or a.dest) for command, a, _ in walk(build_parser())
            if not isinstance(a, argparse._SubParsersAction)}
    assert ("ncc hub nodes", ("--json",)) in seen and ("ncc token list", ("--data-dir",)) in seen
    assert ("ncc hub invite", "country") in seen
