"""Generate ``config/node.example.toml`` and ``config/hub.example.toml`` from ``node.config.SETTINGS``.

Every setting of a role is written with its documentation and default; required keys are active
(with an example value), optional ones commented out so that the code's defaults stay in force.
``tests/unit/node/test_config_docs.py`` fails when the committed files differ from this output.

    python scripts/gen_example_config.py          # write the files
    python scripts/gen_example_config.py --check  # exit 1 if they are out of date
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from node.config import ENV_PREFIX, ROLES, SETTINGS, Setting, _toml_value

CONFIG_DIR = REPO / "config"
#: Values written for the required keys (the defaults of optional keys come from SETTINGS).
EXAMPLE_VALUES = {"node": {"role": "node", "country": "DE"}, "hub": {"role": "hub"}}

HEADER = """\
# NCC federation — every setting of a {role} instance, with its default.
#
# `ncc init --role {role} --data-dir D …` writes D/config.toml with the values given on its command
# line; add any key below to that file to change it. Unknown keys are an error, and every value is
# checked when the instance starts (the message names the key).
#
# Each key can also be set in the environment as {prefix}<KEY> — the key in capitals, e.g.
# {prefix}PORT=9000, {prefix}LOG_LEVEL=DEBUG, {prefix}ALLOWED_COUNTRIES="DE,FR" (lists comma-separated).
# Precedence: config.toml < environment < command-line options (`ncc serve --host/--port`).
#
# Generated from node/config.py by scripts/gen_example_config.py; do not edit by hand.
"""


def settings_for(role: str) -> list[Setting]:
    """The settings that apply to ``role``, in table order."""
    return [s for s in SETTINGS if role in s.roles]


def _entry(setting: Setting, role: str) -> list[str]:
    lines = [f"# {line}" for line in textwrap.wrap(setting.doc, 100)]
    lines.append(f"# Environment: {ENV_PREFIX}{setting.key.upper()}. Type: {setting.kind}.")
    example = EXAMPLE_VALUES[role]
    if setting.key in example:
        lines.append("# Required.")
        lines.append(f"{setting.key} = {_toml_value(example[setting.key])}")
    else:
        lines.append(f"# {setting.key} = {_toml_value(setting.default)}")
    return lines


def render(role: str) -> str:
    """The example config of ``role``."""
    parts = [HEADER.format(role=role, prefix=ENV_PREFIX)]
    for setting in settings_for(role):
        parts.append("\n".join(_entry(setting, role)) + "\n")
    return "\n".join(parts)


def example_path(role: str) -> Path:
    return CONFIG_DIR / f"{role}.example.toml"


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for role in ROLES:
        text = render(role)
        path = example_path(role)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {_shown(path)}")
    for path in stale:
        print(f"{_shown(path)} is out of date: run python scripts/gen_example_config.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
