"""The running daemon's modules import one another in one direction only: no circle, not even
through imports inside functions (the daemon and the workers used to import each other)."""

from __future__ import annotations

import ast
from pathlib import Path

RUN = Path(__file__).resolve().parent.parent / "notifier" / "run"


def _module(path: Path) -> str:
    parts = path.relative_to(RUN.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every notifier.run module this file imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("notifier.run"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("notifier.run"))
    return found


def test_the_run_modules_import_each_other_without_a_circle() -> None:
    modules = {_module(path): path for path in RUN.rglob("*.py")}
    graph = {
        name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()
    }
    # A package imports the modules it names; that is no circle back through its children.
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(f"{m}.")}

    circles: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        for target in sorted(graph[name]):
            if target in path:
                circles.append([*path[path.index(target) :], target])
            elif len(path) < len(graph):
                visit(target, [*path, target])

    for start in sorted(graph):
        visit(start, [start])
    assert not circles, f"import circle(s): {sorted({' -> '.join(c) for c in circles})}"
    assert "notifier.run.daemon" not in graph["notifier.run.workers"]
