"""The ``ncc`` command: one entry point, one module per subcommand under ``node/commands``.

Exit codes: 0 ok, 1 failure (one-line reason on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from node.commands.base import CommandError

COMMANDS = ("init", "serve", "token", "hub", "enroll", "sync", "keys", "verify", "imports", "export", "demo")


#: Commands that configure logging themselves (``serve`` writes JSON lines, ``demo`` its processes').
LOGGING_COMMANDS = frozenset({"serve", "demo"})


def _quiet_logging() -> None:
    """A one-shot command reports on stdout and fails with one line on stderr (DESIGN §7): the
    services' log records (``pull failed``, …) must not reach stderr through logging's last-resort
    handler (what they say is in the command's own output: a failed pull's reason, …)."""
    root = logging.getLogger()
    if not root.handlers:  # else configured by the embedding program (or a test)
        root.addHandler(logging.NullHandler())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ncc",
        description="NCC federation node and hub: signed, federated registry of the EU Cybersecurity "
                    "Competence Community.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"node.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command not in LOGGING_COMMANDS:
        _quiet_logging()
    try:
        code = args.run(args)
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
