"""Reading templates for the static contract check: parsed once, and what a piece of syntax binds.

notifier.compose.walker walks these trees against what a rule's trigger supplies; the
helpers here say which names a statement binds, which paths a test guards and how an
expression reads to its author.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from notifier.core.supply import ANY, Shape

# -- reading the templates -----------------------------------------------------------------


def parse_env() -> jinja2.Environment:
    """Parses like the renderer does (the same globals; options that change no names)."""
    return ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


class Sources:
    """Template files by name, parsed once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = parse_env()
        self._trees: dict[str, nodes.Template | None] = {}

    def exists(self, name: str) -> bool:
        return safe_name(name) and (self.root / name).is_file()

    def tree(self, name: str) -> nodes.Template | None:
        """The syntax tree, or None when the file is missing or does not parse (the syntax
        check reports that)."""
        if name not in self._trees:
            tree = None
            if self.exists(name):
                try:
                    source = (self.root / name).read_text(encoding="utf-8")
                    tree = self.env.parse(source, name, str(self.root / name))
                except (OSError, UnicodeDecodeError, jinja2.TemplateSyntaxError):
                    tree = None
            self._trees[name] = tree
        return self._trees[name]


def safe_name(name: str) -> bool:
    return bool(name) and not os.path.isabs(name) and ".." not in Path(name).parts


# -- walking a template --------------------------------------------------------------------


class Scope:
    """Names bound in one template scope (set, for, macro, block, ...)."""

    def __init__(self, parent: Scope | None = None, names: Iterable[str] = ()) -> None:
        self.parent = parent
        self.names: dict[str, Shape] = dict.fromkeys(names, ANY)

    def lookup(self, name: str) -> Shape | None:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        return None


@dataclass(frozen=True, slots=True)
class WalkEnv:
    file: str
    scope: Scope
    context: bool  # whether the file sees the context (not an import without context)
    guards: frozenset[str] = frozenset()  # paths known to hold a value here ("order")
    lenient: bool = False  # under `is defined` / `|default`: a missing value is fine
    skip_blocks: frozenset[str] = frozenset()  # blocks a child template overrides

    def guarded(self, paths: Iterable[str]) -> WalkEnv:
        paths = frozenset(paths)
        return replace(self, guards=self.guards | paths) if paths - self.guards else self

    def inner(self, names: Iterable[str] = ()) -> WalkEnv:
        return replace(self, scope=Scope(self.scope, names))


@dataclass(frozen=True, slots=True)
class MacroRef:
    node: nodes.Macro
    file: str
    scope: Scope
    context: bool


Report = Callable[[str, int | None, str], None]
MAX_MACRO_DEPTH = 8
LENIENT_TESTS = frozenset({"defined", "undefined"})
LENIENT_FILTERS = frozenset({"default", "d"})


def path_of(node: nodes.Node) -> str | None:
    """`order.number` for Getattr(Name(order), number); None for anything computed."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        base = path_of(node.node)
        return f"{base}.{node.attr}" if base else None
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
    ):
        base = path_of(node.node)
        return f"{base}.{node.arg.value}" if base else None
    return None


def source_of(node: nodes.Node) -> str:
    """The expression as a template author would write it, for messages."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{source_of(node.node)}.{node.attr}"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        return f"{source_of(node.node)}[{node.arg.value!r}]"
    return "(...)"


def implied(test: nodes.Node, truth: bool) -> set[str]:
    """Paths that must hold a value when `test` is `truth`."""
    if truth:
        if isinstance(test, nodes.Name | nodes.Getattr | nodes.Getitem):
            path = path_of(test)
            return {path} if path else set()
        if isinstance(test, nodes.And):
            return implied(test.left, True) | implied(test.right, True)
        if isinstance(test, nodes.Not):
            return implied(test.node, False)
        if isinstance(test, nodes.Test) and test.name == "defined":
            path = path_of(test.node)
            return {path} if path else set()
        return set()
    if isinstance(test, nodes.Or):
        return implied(test.left, False) | implied(test.right, False)
    if isinstance(test, nodes.Not):
        return implied(test.node, True)
    if isinstance(test, nodes.Test) and test.name in ("none", "undefined"):
        path = path_of(test.node)
        return {path} if path else set()
    return set()


def target_names(target: nodes.Node) -> list[str]:
    if isinstance(target, nodes.Name):
        return [target.name]
    if isinstance(target, nodes.Tuple | nodes.List):
        return [name for item in target.items for name in target_names(item)]
    return []


def declared(body: Sequence[nodes.Node]) -> list[str]:
    """Names a body binds in its own scope ({% if %} makes no scope; for, macro... do)."""
    found: list[str] = []
    for stmt in body:
        if isinstance(stmt, nodes.Assign | nodes.AssignBlock):
            found.extend(target_names(stmt.target))
        elif isinstance(stmt, nodes.Macro):
            found.append(stmt.name)
        elif isinstance(stmt, nodes.Import):
            found.append(stmt.target)
        elif isinstance(stmt, nodes.FromImport):
            found.extend(name if isinstance(name, str) else name[1] for name in stmt.names)
        elif isinstance(stmt, nodes.If):
            found.extend(declared(stmt.body))
            found.extend(declared(stmt.elif_))
            found.extend(declared(stmt.else_))
        elif isinstance(stmt, nodes.Scope | nodes.ScopedEvalContextModifier | nodes.FilterBlock):
            found.extend(declared(stmt.body))
    return found


def const_names(node: nodes.Expr) -> list[str] | None:
    """Template names of an extends/include/import, when they are written out."""
    if isinstance(node, nodes.Const):
        value = node.value
        if isinstance(value, str):
            return [value]
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return list(value)
        return None
    if isinstance(node, nodes.List | nodes.Tuple) and all(
        isinstance(item, nodes.Const) and isinstance(item.value, str) for item in node.items
    ):
        return [item.value for item in node.items]  # type: ignore[attr-defined]
    return None


def calls_super(block: nodes.Block) -> bool:
    return any(
        isinstance(call.node, nodes.Name) and call.node.name == "super" for call in block.find_all(nodes.Call)
    )
