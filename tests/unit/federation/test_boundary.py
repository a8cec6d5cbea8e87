"""federation/ stays pure: no service imports, no environment, files or clock (STYLE rule 1)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import federation

PACKAGE = Path(federation.__file__).resolve().parent
FORBIDDEN_MODULES = ("node", "aiohttp", "tortoise", "apscheduler", "asyncpg", "aiosqlite", "requests", "httpx",
                     "socket", "subprocess", "schemas")
FORBIDDEN_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "time_ns"),
    ("time", "monotonic"),
    ("os", "getenv"),
    ("Path", "read_text"),
    ("Path", "read_bytes"),
    ("Path", "open"),
}
FORBIDDEN_NAMES = {"open", "getenv", "environ"}
SOURCES = sorted(PACKAGE.glob("*.py"))


def _imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_forbidden_imports(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = {m for m in _imports(tree) if m.split(".")[0] in FORBIDDEN_MODULES}
    assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_environment_files_or_clock(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            owner = node.value
            owner_name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
            if (owner_name, node.attr) in FORBIDDEN_CALLS or node.attr == "environ":
                problems.append(f"{owner_name}.{node.attr} (line {node.lineno})")
            if node.attr in {"read_text", "read_bytes", "write_text", "write_bytes"}:
                problems.append(f".{node.attr} (line {node.lineno})")
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            problems.append(f"{node.id} (line {node.lineno})")
    assert not problems, f"{path.name}: {problems}"


def test_scanner_catches_violations() -> None:
    tree = ast.parse("import os\nfrom node.config import x\nimport aiohttp.web\nx = datetime.now()\nopen('f')\nos.environ")
    assert {"os", "node.config", "aiohttp.web"} <= _imports(tree)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert "open" in names and "now" in attrs and "environ" in attrs


def test_every_module_is_scanned() -> None:
    names = {p.name for p in SOURCES}
    assert {"canonical.py", "envelope.py", "directory.py", "verify.py", "tokens.py", "schemas.py"} <= names
