"""The ``ncc`` command: one entry point, one module per subcommand under ``node/commands``.

Exit codes: 0 ok, 1 failure (one-line reason on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import functools
import importlib
import io
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from node.commands.base import CommandError, UsageError

COMMANDS = ("init", "serve", "token", "hub", "enroll", "sync", "recover", "keys", "verify", "imports", "export",
            "atlas", "audit", "erasure", "demo")
#: The command each module of :data:`COMMANDS` registers (``ncc import`` lives in ``imports``).
COMMAND_NAMES = {module: module for module in COMMANDS} | {"imports": "import"}


#: Commands that configure logging themselves (``serve`` writes JSON lines, ``demo`` its processes').
LOGGING_COMMANDS = frozenset({"serve", "demo"})


def _quiet_logging() -> None:
    """A one-shot command reports on stdout and fails with one line on stderr (DESIGN §7): the
    services' log records (``pull failed``, …) must not reach stderr through logging's last-resort
    handler (what they say is in the command's own output: a failed pull's reason, …)."""
    root = logging.getLogger()
    if not root.handlers:  # else configured by the embedding program (or a test)
        root.addHandler(logging.NullHandler())


def version() -> str:
    """The installed distribution's version (a source checkout that was never installed says so)."""
    from importlib import metadata

    try:
        return metadata.version("ncc-federation")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from an uninstalled tree
        return "0+unknown"


class _Version(argparse.Action):
    """``--version``: the distribution's metadata is read only when asked (it costs every command ~40 ms)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show the program's version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        print(f"ncc {version()}")
        parser.exit()


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or (``only``: a module of :data:`COMMANDS`) just that command: a command
    run imports its own module and what it needs, not the code of every other command (a CLI call
    started in ~0.6 s, most of it importing the web server, the ORM and the search index it never used)."""
    parser = argparse.ArgumentParser(
        prog="ncc",
        description="NCC federation node and hub: signed, federated registry of the EU Cybersecurity "
                    "Competence Community.",
    )
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS if only is None else (only,):
        module = importlib.import_module(f"node.commands.{name}")
        module.register(sub)
    return parser


def _command_module(word: str) -> str | None:
    """The module of the command named ``word`` (None: an option, or no command's name)."""
    return next((m for m, name in COMMAND_NAMES.items() if name == word), None)


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parser and every sub-parser below it."""
    yield parser
    for action in parser._actions:  # argparse keeps its tree here; there is no public accessor
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield from _parsers(child)


def _deepest(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.ArgumentParser:
    """The sub-parser the command line selects (``ncc hub invite …`` -> the ``invite`` parser)."""
    for token in argv:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction) and token in action.choices:
                return _deepest(action.choices[token], argv[argv.index(token) + 1:])
    return parser


def _unknown_options_first(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> None:
    """Name a mistyped option before complaining about a missing required one.

    argparse checks required options before unknown ones, so ``ncc serve --datadir D`` used to say
    "required: --data-dir", hiding the typo. A first pass with nothing required finds unknown
    options; the (sub)command's parser then reports them with the nearest known spelling (exit 2).
    """
    required = [a for p in _parsers(parser) for a in p._actions if a.required and a.option_strings]
    for action in required:
        action.required = False
    try:
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                _, unknown = parser.parse_known_args(argv)
        except SystemExit:
            return  # --help, --version or another usage error: the real pass below prints it
    finally:
        for action in required:
            action.required = True
    if not unknown:
        return
    target = _deepest(parser, list(argv if argv is not None else sys.argv[1:]))
    known = [s for a in target._actions for s in a.option_strings]
    first = unknown[0]
    near = difflib.get_close_matches(first.split("=", 1)[0], known, n=1)
    hint = f" (did you mean {near[0]}?)" if near else ""
    target.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")


def main(argv: Sequence[str] | None = None) -> int:
    # Everything the program writes (database, its WAL and SHM, exports, outbox, keys, config) is
    # private whatever the caller's umask: SQLite creates its WAL itself, with the process umask.
    umask = os.umask(0o077)
    try:
        return _run(argv)
    finally:
        os.umask(umask)  # for a program (or a test) that calls main() in-process


@functools.cache
def _parser(only: str | None) -> argparse.ArgumentParser:
    """A parser, built once per process (parsing leaves it as it was; building all of it costs ~20 ms)."""
    return build_parser(only)


def _run(argv: Sequence[str] | None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    # options before the command (``ncc --version``, ``ncc --help``) and unknown commands get the whole parser
    parser = _parser(_command_module(words[0]) if words else None)
    _unknown_options_first(parser, argv)
    args = parser.parse_args(argv)
    if args.command not in LOGGING_COMMANDS:
        _quiet_logging()
    try:
        code = args.run(args)
    except UsageError as exc:
        print(f"ncc {args.command}: {exc}", file=sys.stderr)
        return 2
    except CommandError as exc:
        print(f"ncc {args.command}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the file system or the network refused (a data dir that cannot be made, …)
        where = f": {exc.filename}" if exc.filename else ""
        print(f"ncc {args.command}: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
