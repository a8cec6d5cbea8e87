"""The package layering (STYLE rules 1 and 5), read from the source with ``ast``, nothing imported:

- ``federation/`` imports nothing of ``node/`` (it is the protocol, usable without the node);
- ``node/services`` and ``federation/`` know no transport: never ``node.http`` nor ``node.web``;
- no import cycle among ``node/`` modules, counting imports made inside functions (a deferred import
  hides a cycle, it does not remove it); imports under ``if TYPE_CHECKING:`` are for the type checker
  only and do not count;
- no module binds one top-level name twice (a merge once left two ``_purge_forever`` in wiring.py:
  the second silently replaced the first, and expired service-token jtis were never purged).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(*packages: str) -> dict[str, Path]:
    return {module_name(p): p for package in packages for p in sorted((REPO / package).rglob("*.py"))}


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported(path: Path, known: dict[str, Path] | None = None) -> Iterator[tuple[int, str]]:
    """Every module a file imports at run time (line, dotted name), relative imports resolved. With
    ``known``, ``from pkg import name`` counts as importing ``pkg.name`` when that is a module."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    skip: set[int] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _type_checking(node):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            submodules = [f"{base}.{a.name}" for a in node.names if known and f"{base}.{a.name}" in known]
            if submodules:
                for sub in submodules:
                    yield node.lineno, sub
            else:
                yield node.lineno, base


def violations(packages: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for name, path in modules(*packages).items():
        for line, target in imported(path):
            if any(target == f or target.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(REPO)}:{line}: {name} imports {target}")
    return found


def test_federation_imports_nothing_of_the_node() -> None:
    assert violations(("federation",), ("node",)) == []


def test_services_know_no_transport() -> None:
    assert violations(("node/services", "federation"), ("node.http", "node.web")) == []


def import_graph() -> dict[str, set[str]]:
    known = modules("node")
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        deps = set()
        for _, target in imported(path, known):
            # the nearest known module: `from node.services.sync import Puller` depends on node.services.sync
            while target and target not in known:
                target = target.rpartition(".")[0]
            # a module's own packages are imported before it anyway: not an edge of a cycle
            if target and target != name and not name.startswith(target + "."):
                deps.add(target)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_node_modules() -> None:
    graph = import_graph()
    assert "node.http.routes" in graph["node.http.openapi"]  # the graph is read right
    assert cycles(graph) == []


def test_no_module_binds_a_top_level_name_twice() -> None:
    twice = []
    for path in modules("node", "federation").values():
        seen: dict[str, int] = {}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                if node.name in seen:
                    twice.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.name} (first at {seen[node.name]})")
                seen[node.name] = node.lineno
    assert twice == []
