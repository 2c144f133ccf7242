"""No import cycles anywhere in ``checker/``: every module's imports form a DAG.

Imports inside functions count (a lazy import only hides a cycle); imports under
``if TYPE_CHECKING:`` do not, as they never run. ``from package import name`` counts as an
import of ``package.name`` when that is a module, else of ``package``.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "checker"


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking_only(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of the package that ``path`` imports (at run time)."""
    def module_of(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skipped = _type_checking_only(tree)
    found: set[str | None] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(module_of(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(module_of(f"{node.module}.{alias.name}") for alias in node.names)
    return {name for name in found if name is not None}


def graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (itself left out)."""
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Each cycle as the path that closes it (one per strongly connected group)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        order[node] = low[node] = len(order)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in order:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], order[nxt])
        if low[node] == order[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(_path(sorted(group), edges))

    for node in sorted(edges):
        if node not in order:
            visit(node)
    return found


def _path(group: list[str], edges: dict[str, set[str]]) -> list[str]:
    """A cycle through the group's first module: a -> ... -> a."""
    members = set(group)
    start = group[0]
    queue = [[start]]
    seen = {start}
    while queue:
        path = queue.pop(0)
        for nxt in sorted(edges[path[-1]] & members):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                queue.append([*path, nxt])
    return group  # pragma: no cover - a strongly connected group always has a cycle


def test_the_package_has_no_import_cycle() -> None:
    found = cycles(graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_walker_sees_lazy_imports_and_reports_a_cycle(tmp_path: Path) -> None:
    """The check itself: a cycle made only of a function-level import is found."""
    known = {"pkg.a": tmp_path / "a.py", "pkg.b": tmp_path / "b.py", "pkg.c": tmp_path / "c.py"}
    known["pkg.a"].write_text("from pkg.b import thing\n", encoding="utf-8")
    known["pkg.b"].write_text("def f():\n    from pkg import a\n", encoding="utf-8")
    known["pkg.c"].write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from pkg.a import x\n", encoding="utf-8")
    edges = {name: imports(path, known) - {name} for name, path in known.items()}
    assert edges == {"pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}, "pkg.c": set()}
    assert cycles(edges) == [["pkg.a", "pkg.b", "pkg.a"]]
    assert cycles({"x": {"y"}, "y": set()}) == []
