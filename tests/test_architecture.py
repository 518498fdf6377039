"""The tree shows the architecture, and these tests keep it so (issue 15, items 1 and 6).

Read statically with `ast`, over every module of notifier/: module-level and function-level
imports count alike; imports under `if TYPE_CHECKING:` do not (they never run).

What each layer may import, besides itself (a folder is a layer; errors, links, logs and the
package's `__init__` are the only modules outside one):

    core      errors                         pure by import: the decisions
    compose   core, errors                   pure rendering
    config    core, compose, errors          a reload builds and checks the templates
    db        core, config, errors           `connect(settings)`
    smtp      core, errors
    run       core, compose, config, db, smtp, errors, links, logs, notifier
    tools     all of the above; of run only its public face
    cli       all of the above and tools; of run only its public face
    __main__  cli
    errors, links, logs, notifier (the package `__init__`): no notifier module

Run's public face is `RUN_PUBLIC`: the daemon (`run_once`, `run_forever`), the worker
processes and the metrics server; intake, dispatch, schedules and whatever else run/ holds
are its internals. Nothing imports notifier.cli but `__main__` (and cli's own modules).

Beside the layers: no import circle between modules; no module over `MAX_LINES` lines
(migrations excepted); outside the store (`notifier/db/store/`, `notifier/db/tables.py`, the
migrations) no module spells the outbox's columns; and `notifier.core` imports, in a fresh
interpreter, with every database, SMTP, web, scheduler and metrics library blocked.
"""

from __future__ import annotations

import ast
import functools
import itertools
import json
import os
import re
import subprocess
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

import notifier

PACKAGE = Path(notifier.__file__).parent
MAX_LINES = 400
LIBRARIES = ("errors", "links", "logs", "notifier")
MAY_IMPORT: dict[str, frozenset[str]] = {
    "core": frozenset({"errors"}),
    "compose": frozenset({"core", "errors"}),
    "config": frozenset({"core", "compose", "errors"}),
    "db": frozenset({"core", "config", "errors"}),
    "smtp": frozenset({"core", "errors"}),
    "run": frozenset({"core", "compose", "config", "db", "smtp", *LIBRARIES}),
    "tools": frozenset({"core", "compose", "config", "db", "smtp", "run", *LIBRARIES}),
    "cli": frozenset({"core", "compose", "config", "db", "smtp", "run", "tools", *LIBRARIES}),
    "__main__": frozenset({"cli"}),
    **{name: frozenset() for name in LIBRARIES},
}
# What the ops tools and the command line may use of the running daemon.
RUN_PUBLIC = frozenset({
    "notifier.run", "notifier.run.daemon", "notifier.run.workers", "notifier.run.metrics"
})  # fmt: skip
BLOCKED = (
    "sqlalchemy", "sqlmodel", "aiosmtplib", "psycopg", "starlette", "uvicorn", "apscheduler",
    "aiosmtpd", "prometheus_client", "alembic", "pymysql", "MySQLdb",
)  # fmt: skip
STORE_OWNED = ("notifier.db.store", "notifier.db.tables", "notifier.db.migrations")
OUTBOX = {"notifier.db.store": "NOTIFICATIONS", "notifier.db.store.base": "NOTIFICATIONS",
          "notifier.db.tables": "Notification"}  # fmt: skip
# The outbox's bookkeeping: columns that only the store's life cycle of a row has reason to
# name (a planner, a sender or a report speaks of values and outcomes, not of these).
BOOKKEEPING = frozenset({
    "lease_owner", "lease_until", "next_attempt_at", "first_failure_at", "smtp_code", "smtp_reply",
    "resend_of",
})  # fmt: skip
# The modules that spell the event vocabulary's data keys (SPEC §2), one of which shares a
# bookkeeping column's name: `order.delivery_failed` carries the carrier's `next_attempt_at`.
EVENT_DATA_MODULES = frozenset(
    {"notifier.core.vocabulary", "notifier.compose.samples", "notifier.tools.demo_data"}
)

Import = tuple[str, int]  # the module imported, and the line


# --- reading the tree -------------------------------------------------------------------


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def tree_modules(root: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(path, root): path for path in sorted(root.rglob("*.py"))}


def layer(module: str) -> str:
    """'notifier.db.store.claims' -> 'db'; 'notifier.errors' -> 'errors'; 'notifier' -> 'notifier'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk_running(node: ast.AST) -> Iterator[ast.AST]:
    """Every node that can run: what sits under `if TYPE_CHECKING:` is left out."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _type_checking(child.test):
            for other in child.orelse:
                yield other
                yield from _walk_running(other)
            continue
        yield child
        yield from _walk_running(child)


def targets(node: ast.Import | ast.ImportFrom, package: str, known: set[str]) -> list[str]:
    """The module each name of one import statement comes from, relative ones resolved:
    `from a import b` is a.b if that is a module, else a."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = package.split(".")
        base = ".".join([*parts[: len(parts) - node.level + 1], *([node.module] if node.module else [])])
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]


def imports_of(
    source: str, module: str, *, is_package: bool, known: Iterable[str], anything: bool = False
) -> list[Import]:
    """The notifier modules (with `anything`, all modules) `module` imports, at any depth."""
    names, package = set(known), module if is_package else module.rpartition(".")[0]
    found = [
        (target, node.lineno)
        for node in _walk_running(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for target in targets(node, package, names)
    ]
    return [(target, line) for target, line in found if anything or target.split(".")[0] == PACKAGE.name]


@functools.cache
def import_graph() -> dict[str, list[Import]]:
    modules = tree_modules()
    return {
        name: imports_of(path.read_text(), name, is_package=path.name == "__init__.py", known=modules)
        for name, path in modules.items()
    }


@functools.cache
def _paths() -> dict[str, Path]:
    return tree_modules()


def where(module: str, line: int) -> str:
    return f"{_paths()[module].relative_to(PACKAGE.parent)}:{line}"


# --- a: notifier.core, pure by import ----------------------------------------------------

PROBE = """
import importlib, json, pkgutil, sys
for name in sys.argv[2:]:
    sys.modules[name] = None  # `import name` now raises ImportError
failed = []
try:
    package = importlib.import_module(sys.argv[1])
    found = pkgutil.walk_packages(package.__path__, package.__name__ + ".", onerror=failed.append)
    for info in list(found):
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            failed.append(f"{info.name}: {type(exc).__name__}: {exc}")
except Exception as exc:
    failed.append(f"{sys.argv[1]}: {type(exc).__name__}: {exc}")
root = sys.argv[1].split(".")[0]
loaded = sorted(n for n, m in sys.modules.items() if m is not None and n.split(".")[0] == root)
print(json.dumps({"failed": failed, "loaded": loaded}))
"""


def probe(package: str, path: Path) -> dict[str, list[str]]:
    """Import `package` and every module under it in a fresh interpreter, BLOCKED blocked."""
    env = {**os.environ, "PYTHONPATH": str(path)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, package, *BLOCKED], capture_output=True, text=True, env=env,
        timeout=120, check=True,
    )  # fmt: skip
    result: dict[str, list[str]] = json.loads(done.stdout)
    return result


def test_core_imports_with_no_database_smtp_web_scheduler_or_metrics_library() -> None:
    result = probe("notifier.core", PACKAGE.parent)
    assert result["failed"] == [], "notifier.core needs a blocked library:\n" + "\n".join(result["failed"])
    assert "notifier.core.values" in result["loaded"]  # the probe did import core's modules
    others = [name for name in result["loaded"] if layer(name) not in ("notifier", "core", "errors")]
    assert others == [], f"importing notifier.core loads other layers: {others}"


def test_no_core_module_imports_a_blocked_library_even_inside_a_function() -> None:
    """The probe above runs module level only; an import inside a function waits for a call."""
    found = [
        f"{where(name, line)}: {target}"
        for name, path in tree_modules().items()
        if layer(name) == "core"
        for target, line in imports_of(
            path.read_text(), name, is_package=path.name == "__init__.py", known=(), anything=True
        )
        if target.split(".")[0] in BLOCKED
    ]
    assert found == [], "notifier.core imports a blocked library:\n" + "\n".join(found)


def test_the_core_probe_catches_a_blocked_import_even_inside_a_package(tmp_path: Path) -> None:
    core = tmp_path / "probed" / "core"
    core.mkdir(parents=True)
    for folder in (core.parent, core):
        (folder / "__init__.py").write_text("")
    (core / "fine.py").write_text("import json\n")
    (core / "slips.py").write_text("from notifier.core import values\nimport sqlalchemy.orm\n")
    result = probe("probed.core", tmp_path)
    assert [line.split(":")[0] for line in result["failed"]] == ["probed.core.slips"]
    assert "probed.core.fine" in result["loaded"]


# --- b: layers ----------------------------------------------------------------------------


def layer_breaches(graph: dict[str, list[Import]]) -> list[str]:
    breaches = []
    for module, found in sorted(graph.items()):
        mine = layer(module)
        if mine not in MAY_IMPORT:
            breaches.append(f"{module}: {mine!r} is no layer (a new folder goes into MAY_IMPORT first)")
            continue
        for target, line in found:
            theirs = layer(target)
            if theirs == mine or (theirs == "cli" and mine == "__main__"):
                continue
            if theirs not in MAY_IMPORT[mine]:
                breaches.append(f"{where(module, line)}: {mine} imports {target}")
            elif theirs == "run" and target not in RUN_PUBLIC:
                breaches.append(f"{where(module, line)}: {target} is run's own, not in RUN_PUBLIC")
    return list(dict.fromkeys(breaches))


def test_each_layer_imports_only_the_layers_below_it() -> None:
    breaches = layer_breaches(import_graph())
    assert breaches == [], "imports against the layers (see this file's docstring):\n" + "\n".join(breaches)


def test_the_import_reader_sees_function_level_imports_but_not_type_checking_ones() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from notifier.db import store, nothing\n"
        "from . import values\n"
        "if TYPE_CHECKING:\n    import notifier.run.dispatch\nelse:\n    import notifier.logs\n"
        "def later():\n    from ..smtp.pool import Sender\n"
    )
    known = {"notifier.db.store", "notifier.core.values"}
    found = imports_of(source, "notifier.core.planning", is_package=False, known=known)
    assert found == [
        ("notifier.db.store", 2), ("notifier.db", 2), ("notifier.core.values", 3), ("notifier.logs", 7),
        ("notifier.smtp.pool", 9),
    ]  # fmt: skip


# --- c: no import circle --------------------------------------------------------------------


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One shortest circle through each strongly connected component of more than one module
    (Tarjan), written a -> b -> ... -> a."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while (top := stack.pop()) != node:
                component.append(top)
            components.append(sorted([*component, node]))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return [_shortest_circle(edges, group) for group in components if len(group) > 1]


def _shortest_circle(edges: dict[str, set[str]], group: list[str]) -> list[str]:
    start, members = group[0], set(group)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for other in sorted(edges.get(node, set()) & members):
            if other == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if other not in came_from:
                came_from[other] = node
                queue.append(other)
    raise AssertionError(f"{group} is not strongly connected")


def test_no_import_circle() -> None:
    graph = import_graph()
    edges = {module: {to for to, _ in found if to in graph} - {module} for module, found in graph.items()}
    found = circles(edges)
    lines = []
    for circle in found:
        steps = [
            f"{where(a, min(line for target, line in graph[a] if target == b))} imports {b}"
            for a, b in itertools.pairwise(circle)
        ]
        lines.append(" -> ".join(circle) + "\n    " + "\n    ".join(steps))
    assert found == [], "import circles:\n" + "\n".join(lines)


def test_the_circle_finder_names_each_circle_once() -> None:
    edges = {"a": {"b"}, "b": {"c", "a"}, "c": {"a"}, "d": {"e"}, "e": set(), "f": {"f"}}
    assert circles(edges) == [["a", "b", "a"]]


# --- d: small modules ------------------------------------------------------------------------


def test_no_module_over_the_limit() -> None:
    long = {
        str(path.relative_to(PACKAGE.parent)): count
        for name, path in tree_modules().items()
        if not name.startswith("notifier.db.migrations")
        and (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    listing = "\n".join(f"{path}: {count} lines" for path, count in sorted(long.items()))
    assert long == {}, f"modules over {MAX_LINES} lines:\n{listing}"


def test_the_readme_design_section_names_every_module() -> None:
    """A reader finds every module, folder by folder, in README's Design section."""
    design = (PACKAGE.parent / "README.md").read_text().split("\n## Design", 1)[1]
    unnamed = sorted(
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py"
        and "versions" not in path.parts
        and not re.search(rf"(?<!\w){re.escape(path.name)}", design)
    )
    assert unnamed == [], f"modules README's Design section does not name: {unnamed}"


# --- e: only the store spells the outbox ------------------------------------------------------


def outbox_spellings(source: str, module: str, *, is_package: bool, known: Iterable[str]) -> list[str]:
    """Where `source` touches the outbox's columns: a use of a name bound to the outbox table
    or model (`n = NOTIFICATIONS`, `OUTBOX.c.rule`, `store.NOTIFICATIONS`, `Notification.x`),
    or one of its bookkeeping columns named in a string (`row["smtp_reply"]`,
    `{"lease_owner": None}`, `OUTBOX.c["smtp_code"]`). A keyword argument is not flagged: a
    frozen core value may have a field of such a name (`Verdict(next_attempt_at=...)`), and a
    call's keywords on the table itself are caught by the table's name."""
    tree, names = ast.parse(source), set(known)
    bookkeeping = BOOKKEEPING - {"next_attempt_at"} if module in EVENT_DATA_MODULES else BOOKKEEPING
    package = module if is_package else module.rpartition(".")[0]
    tables: set[str] = set()  # names bound to the table or the model
    modules: dict[str, str] = {}  # names bound to the store's modules or the model's
    for node in _walk_running(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias, target in zip(node.names, targets(node, package, names), strict=True):
                bound = alias.asname or alias.name
                if isinstance(node, ast.ImportFrom) and OUTBOX.get(target) == alias.name:
                    tables.add(bound)
                elif target in OUTBOX and (alias.asname or isinstance(node, ast.ImportFrom)):
                    modules[bound] = target
    found = []
    for node in _walk_running(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in tables:
            found.append(f"{node.lineno}: {node.id}")
        elif isinstance(node, ast.Attribute):
            owner = ast.unparse(node.value)
            if OUTBOX.get(modules.get(owner, owner)) == node.attr:
                found.append(f"{node.lineno}: {owner}.{node.attr}")
        elif isinstance(node, ast.Constant) and node.value in bookkeeping:
            found.append(f"{node.lineno}: {node.value!r}")
    return found


def test_only_the_store_spells_the_outbox_columns() -> None:
    modules = tree_modules()
    spelled = {}
    for name, path in modules.items():
        if name.startswith(STORE_OWNED):
            continue
        found = outbox_spellings(path.read_text(), name, is_package=path.name == "__init__.py", known=modules)
        if found:
            spelled[str(path.relative_to(PACKAGE.parent))] = list(dict.fromkeys(found))
    listing = "\n".join(f"{path}: lines {', '.join(found)}" for path, found in sorted(spelled.items()))
    assert spelled == {}, f"outbox columns spelled outside notifier/db/store/:\n{listing}"


def test_the_outbox_reader_follows_aliases_and_bookkeeping_names() -> None:
    source = (
        "from notifier.db.store import NOTIFICATIONS as OUTBOX, claim_due\n"
        "from notifier.db import store, tables\n"
        "NOTIFICATIONS = 'a counter of the same name'\n"
        "def count(conn):\n"
        "    n = OUTBOX\n"
        "    conn.execute(store.NOTIFICATIONS.select(), tables.Notification, NOTIFICATIONS)\n"
        "    return {'state': 'sent', 'lease_owner': None}, dict(smtp_reply='250'), claim_due\n"
        "def later(row):\n"
        "    return Verdict(next_attempt_at=row['next_attempt_at'])\n"
    )
    known = {"notifier.db.store", "notifier.db.tables"}
    found = outbox_spellings(source, "notifier.run.metrics", is_package=False, known=known)
    assert found == [
        "5: OUTBOX", "6: store.NOTIFICATIONS", "6: tables.Notification", "7: 'lease_owner'",
        "9: 'next_attempt_at'",
    ]  # fmt: skip  (smtp_reply= and next_attempt_at= are keywords: a value's fields, not flagged)


@pytest.mark.parametrize("column", sorted(BOOKKEEPING))
def test_the_bookkeeping_names_are_outbox_columns(column: str) -> None:
    from notifier.db.store import NOTIFICATIONS

    assert column in NOTIFICATIONS.c


def test_the_console_script_is_still_notifier_cli_main() -> None:
    """pyproject's `notifier = "notifier.cli:main"` must keep working after cli became a package."""
    from importlib.metadata import entry_points

    from notifier.cli import main

    (script,) = entry_points(group="console_scripts", name="notifier")
    assert script.value == "notifier.cli:main"
    assert script.load() is main
