"""The contract between rules and templates, checked statically (without rendering).

Ops edit rules.yaml and marketing edits the templates, each on their own. A rule's trigger
decides what a template can use: an `order.placed` message has no case, a product event has
no order, a case may or may not be about an order. `SUPPLIES` writes down, per event type,
every name the template context holds, which of them are always present, which may be None
and which are None, and the attributes each has (the contract documented in rendering.py;
the event keys come from events.VOCABULARY, so the two cannot drift).

`check_contract` walks the Jinja syntax tree of every file of every template a rule names,
following `{% extends %}`, `{% include %}` and `{% import %}` into the shared files and
values passed into macros, and reports each use the rule's trigger cannot supply, with the
file and line. Rendering with sample data cannot find these: a sample context may hold a
case where the real one has none, and a branch the sample never enters is never rendered.

Understood, so not reported: names made by `{% set %}` (and `namespace()`), `{% for %}`
targets and `loop`, macro parameters and `caller`, `{% with %}` and `{% call(x) %}`
names, import aliases (`m.button`), Jinja's globals, and guards: `{% if order %}`,
`{% if order is not none %}`, `x and x.y`, `x.y if x`, the `else` of `{% if not x %}`,
`x is defined` and `x|default(...)` (which tolerate a missing value on purpose).

`locale_report` warns when a rule's template lacks a locale its customers use (they get
the English version), and fails when it lacks English itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jinja2
import sqlalchemy as sa
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from notifier.compose.rendering import Renderer
from notifier.compose.samples import SAMPLE_TRIGGER_OF_TEMPLATE
from notifier.core.locale import FALLBACK_LOCALE, LOCALES, normalize_locale
from notifier.core.rules import Rule, RuleSet
from notifier.core.supply import ANY, SUPPLIES, Shape, Supply, supply_for
from notifier.errors import NotifierError, Problem

__all__ = [
    "SUPPLIES",
    "Shape",
    "Supply",
    "check_contract",
    "contract_report",
    "customer_locales",
    "locale_report",
    "supply_for",
]


# -- what each trigger supplies ------------------------------------------------------------


# -- reading the templates -----------------------------------------------------------------


def _parse_env() -> jinja2.Environment:
    """Parses like the renderer does (the same globals; options that change no names)."""
    return ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


class _Sources:
    """Template files by name, parsed once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = _parse_env()
        self._trees: dict[str, nodes.Template | None] = {}

    def exists(self, name: str) -> bool:
        return _safe(name) and (self.root / name).is_file()

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


def _safe(name: str) -> bool:
    return bool(name) and not os.path.isabs(name) and ".." not in Path(name).parts


# -- walking a template --------------------------------------------------------------------


class _Scope:
    """Names bound in one template scope (set, for, macro, block, ...)."""

    def __init__(self, parent: _Scope | None = None, names: Iterable[str] = ()) -> None:
        self.parent = parent
        self.names: dict[str, Shape] = dict.fromkeys(names, ANY)

    def lookup(self, name: str) -> Shape | None:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        return None


@dataclass(frozen=True, slots=True)
class _Env:
    file: str
    scope: _Scope
    context: bool  # whether the file sees the context (not an import without context)
    guards: frozenset[str] = frozenset()  # paths known to hold a value here ("order")
    lenient: bool = False  # under `is defined` / `|default`: a missing value is fine
    skip_blocks: frozenset[str] = frozenset()  # blocks a child template overrides

    def guarded(self, paths: Iterable[str]) -> _Env:
        paths = frozenset(paths)
        return replace(self, guards=self.guards | paths) if paths - self.guards else self

    def inner(self, names: Iterable[str] = ()) -> _Env:
        return replace(self, scope=_Scope(self.scope, names))


@dataclass(frozen=True, slots=True)
class _MacroRef:
    node: nodes.Macro
    file: str
    scope: _Scope
    context: bool


Report = Callable[[str, int | None, str], None]
_MAX_MACRO_DEPTH = 8
_LENIENT_TESTS = frozenset({"defined", "undefined"})
_LENIENT_FILTERS = frozenset({"default", "d"})


def _path(node: nodes.Node) -> str | None:
    """`order.number` for Getattr(Name(order), number); None for anything computed."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        base = _path(node.node)
        return f"{base}.{node.attr}" if base else None
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
    ):
        base = _path(node.node)
        return f"{base}.{node.arg.value}" if base else None
    return None


def _source(node: nodes.Node) -> str:
    """The expression as a template author would write it, for messages."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{_source(node.node)}.{node.attr}"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        return f"{_source(node.node)}[{node.arg.value!r}]"
    return "(...)"


def _implied(test: nodes.Node, truth: bool) -> set[str]:
    """Paths that must hold a value when `test` is `truth`."""
    if truth:
        if isinstance(test, nodes.Name | nodes.Getattr | nodes.Getitem):
            path = _path(test)
            return {path} if path else set()
        if isinstance(test, nodes.And):
            return _implied(test.left, True) | _implied(test.right, True)
        if isinstance(test, nodes.Not):
            return _implied(test.node, False)
        if isinstance(test, nodes.Test) and test.name == "defined":
            path = _path(test.node)
            return {path} if path else set()
        return set()
    if isinstance(test, nodes.Or):
        return _implied(test.left, False) | _implied(test.right, False)
    if isinstance(test, nodes.Not):
        return _implied(test.node, True)
    if isinstance(test, nodes.Test) and test.name in ("none", "undefined"):
        path = _path(test.node)
        return {path} if path else set()
    return set()


def _target_names(target: nodes.Node) -> list[str]:
    if isinstance(target, nodes.Name):
        return [target.name]
    if isinstance(target, nodes.Tuple | nodes.List):
        return [name for item in target.items for name in _target_names(item)]
    return []


def _declared(body: Sequence[nodes.Node]) -> list[str]:
    """Names a body binds in its own scope ({% if %} makes no scope; for, macro... do)."""
    found: list[str] = []
    for stmt in body:
        if isinstance(stmt, nodes.Assign | nodes.AssignBlock):
            found.extend(_target_names(stmt.target))
        elif isinstance(stmt, nodes.Macro):
            found.append(stmt.name)
        elif isinstance(stmt, nodes.Import):
            found.append(stmt.target)
        elif isinstance(stmt, nodes.FromImport):
            found.extend(name if isinstance(name, str) else name[1] for name in stmt.names)
        elif isinstance(stmt, nodes.If):
            found.extend(_declared(stmt.body))
            found.extend(_declared(stmt.elif_))
            found.extend(_declared(stmt.else_))
        elif isinstance(stmt, nodes.Scope | nodes.ScopedEvalContextModifier | nodes.FilterBlock):
            found.extend(_declared(stmt.body))
    return found


def _const_names(node: nodes.Expr) -> list[str] | None:
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


def _calls_super(block: nodes.Block) -> bool:
    return any(
        isinstance(call.node, nodes.Name) and call.node.name == "super" for call in block.find_all(nodes.Call)
    )


class _Walker:
    """Walks one message file (and what it extends, includes and imports) for one supply."""

    def __init__(self, sources: _Sources, supply: Supply, report: Report) -> None:
        self.sources = sources
        self.supply = supply
        self.report = report
        self.globals = frozenset(sources.env.globals) | {"self"}
        self.modules: dict[tuple[str, bool], Shape] = {}
        self.active_macros: list[tuple[str, str, int]] = []
        self.active_files: list[str] = []

    # templates

    def walk_template(
        self,
        name: str,
        parent: _Scope | None,
        context: bool,
        *,
        guards: frozenset[str] = frozenset(),
        overridden: frozenset[str] = frozenset(),
    ) -> _Scope | None:
        tree = self.sources.tree(name)
        if tree is None or name in self.active_files:
            return None
        self.active_files.append(name)
        try:
            root = _Scope(parent, _declared(tree.body))
            env = _Env(file=name, scope=root, context=context, guards=guards, skip_blocks=overridden)
            self._body(tree.body, env)
            for extends in tree.find_all(nodes.Extends):
                mine = {block.name for block in tree.find_all(nodes.Block) if not _calls_super(block)}
                for layout in _const_names(extends.template) or ():
                    if self._present(layout, env, extends.lineno, "extends"):
                        self.walk_template(layout, root, context, overridden=overridden | mine)
            return root
        finally:
            self.active_files.pop()

    def _present(self, name: str, env: _Env, line: int, how: str) -> bool:
        if self.sources.exists(name):
            return True
        self._problem(env, line, f"`{{% {how} {name!r} %}}`: there is no {name} in the templates folder")
        return False

    def _problem(self, env: _Env, line: int | None, message: str) -> None:
        if not env.lenient:
            self.report(env.file, line, message)

    # statements

    def _body(self, body: Sequence[nodes.Node], env: _Env) -> None:
        for stmt in body:
            self._stmt(stmt, env)

    def _stmt(self, node: nodes.Node, env: _Env) -> None:
        if isinstance(node, nodes.Output):
            for item in node.nodes:
                self._expr(item, env)
        elif isinstance(node, nodes.If):
            self._if(node, env)
        elif isinstance(node, nodes.For):
            self._for(node, env)
        elif isinstance(node, nodes.Assign):
            shape = self._expr(node.node, env)
            if isinstance(node.target, nodes.Name):
                env.scope.names[node.target.name] = shape
            elif isinstance(node.target, nodes.NSRef):
                self._name_shape(node.target.name, node.target, env)
            else:
                for name in _target_names(node.target):
                    env.scope.names[name] = ANY
        elif isinstance(node, nodes.AssignBlock):
            self._body(node.body, env)
            if node.filter is not None:
                self._expr(node.filter, env)
            for name in _target_names(node.target):
                env.scope.names[name] = ANY
        elif isinstance(node, nodes.Macro):
            ref = _MacroRef(node, env.file, env.scope, env.context)
            env.scope.names[node.name] = Shape(kind="macro", label=node.name, macro=ref)
            for default in node.defaults:
                self._expr(default, replace(env, guards=frozenset()))
            self._macro_body(ref, {})
        elif isinstance(node, nodes.CallBlock):
            self._expr(node.call, env)
            for default in node.defaults:
                self._expr(default, env)
            inner = env.inner([arg.name for arg in node.args] + _declared(node.body))
            self._body(node.body, inner)
        elif isinstance(node, nodes.With):
            inner = env.inner(_declared(node.body))
            for target, value in zip(node.targets, node.values, strict=False):
                shape = self._expr(value, env)
                for name in _target_names(target):
                    inner.scope.names[name] = shape if isinstance(target, nodes.Name) else ANY
            self._body(node.body, inner)
        elif isinstance(node, nodes.Block):
            if node.name not in env.skip_blocks:
                inner = replace(env, guards=frozenset()).inner(["super", *_declared(node.body)])
                self._body(node.body, inner)
        elif isinstance(node, nodes.Include):
            self._include(node, env)
        elif isinstance(node, nodes.Import):
            env.scope.names[node.target] = self._import(node, env)
        elif isinstance(node, nodes.FromImport):
            module = self._import(node, env)
            for entry in node.names:
                name, alias = (entry, entry) if isinstance(entry, str) else entry
                if module.kind == "module" and name not in module.fields:
                    self._problem(
                        env,
                        node.lineno,
                        f"`{{% from {module.label!r} import {name} %}}`: {module.label} has no {name}",
                    )
                env.scope.names[alias] = module.fields.get(name, ANY) if module.kind == "module" else ANY
        elif isinstance(node, nodes.Extends):
            if _const_names(node.template) is None:
                self._expr(node.template, env)
        else:
            self._children(node, env)

    def _children(self, node: nodes.Node, env: _Env) -> None:
        for child in node.iter_child_nodes():
            if isinstance(child, nodes.Stmt):
                self._stmt(child, env)
            elif isinstance(child, nodes.Expr):
                self._expr(child, env)
            else:
                self._children(child, env)

    def _if(self, node: nodes.If, env: _Env) -> None:
        self._expr(node.test, env)
        self._body(node.body, env.guarded(_implied(node.test, True)))
        otherwise = _implied(node.test, False)
        for branch in node.elif_:
            here = env.guarded(otherwise)
            self._expr(branch.test, here)
            self._body(branch.body, here.guarded(_implied(branch.test, True)))
            otherwise |= _implied(branch.test, False)
        self._body(node.else_, env.guarded(otherwise))

    def _for(self, node: nodes.For, env: _Env) -> None:
        iterable = self._expr(node.iter, env)
        if iterable.kind == "none" or iterable.nullable:
            self._null(node.iter, iterable, env, f"{{% for ... in {_source(node.iter)} %}}")
        inner = env.inner(["loop", *_declared(node.body)])
        item = iterable.item if iterable.kind == "list" and iterable.item else ANY
        if isinstance(node.target, nodes.Name):
            inner.scope.names[node.target.name] = item
        else:
            for name in _target_names(node.target):
                inner.scope.names[name] = ANY
        if node.test is not None:
            self._expr(node.test, inner)
        self._body(node.body, inner)
        self._body(node.else_, env)

    def _include(self, node: nodes.Include, env: _Env) -> None:
        names = _const_names(node.template)
        if names is None:
            self._expr(node.template, env)
            return
        for name in names:
            if self.sources.exists(name):
                scope = env.scope if node.with_context else None
                self.walk_template(name, scope, env.context and node.with_context, guards=env.guards)
                return  # Jinja includes the first of a list that exists
        if not node.ignore_missing:
            self._present(names[0], env, node.lineno, "include")

    def _import(self, node: nodes.Import | nodes.FromImport, env: _Env) -> Shape:
        names = _const_names(node.template)
        if names is None or len(names) != 1:
            self._expr(node.template, env)
            return ANY
        name = names[0]
        context = env.context and node.with_context
        key = (name, context)
        if key not in self.modules:
            if not self._present(name, env, node.lineno, "import"):
                return ANY
            self.modules[key] = ANY  # an import cycle sees nothing
            root = self.walk_template(name, None, context)
            fields = dict(root.names) if root else {}
            self.modules[key] = Shape(kind="module", label=name, fields=fields)
        return self.modules[key]

    def _macro_body(self, ref: _MacroRef, bound: Mapping[str, Shape]) -> None:
        params = [arg.name for arg in ref.node.args]
        env = _Env(
            file=ref.file,
            scope=_Scope(ref.scope, [*params, "caller", "varargs", "kwargs", *_declared(ref.node.body)]),
            context=ref.context,
        )
        for name, shape in bound.items():
            env.scope.names[name] = shape
        self._body(ref.node.body, env)

    # expressions

    def _expr(self, node: nodes.Node, env: _Env) -> Shape:
        shape = self._expr_raw(node, env)
        path = _path(node)
        if path is not None and path in env.guards:
            if shape.kind == "none":
                return ANY  # dead code under a guard: harmless
            if shape.nullable:
                return replace(shape, nullable=False)
        return shape

    def _expr_raw(self, node: nodes.Node, env: _Env) -> Shape:
        if isinstance(node, nodes.Name):
            if node.ctx != "load":
                return ANY
            return self._name_shape(node.name, node, env)
        if isinstance(node, nodes.Getattr):
            return self._attribute(node, node.node, node.attr, env)
        if isinstance(node, nodes.Getitem):
            if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                return self._attribute(node, node.node, node.arg.value, env)
            base = self._expr(node.node, env)
            self._expr(node.arg, env)
            if base.kind == "none" or base.nullable:
                self._null(node.node, base, env, _source(node))
            if base.kind == "list" and base.item and isinstance(node.arg, nodes.Const):
                return base.item
            return ANY
        if isinstance(node, nodes.And):
            self._expr(node.left, env)
            self._expr(node.right, env.guarded(_implied(node.left, True)))
            return ANY
        if isinstance(node, nodes.Or):
            self._expr(node.left, env)
            self._expr(node.right, env.guarded(_implied(node.left, False)))
            return ANY
        if isinstance(node, nodes.CondExpr):
            self._expr(node.test, env)
            self._expr(node.expr1, env.guarded(_implied(node.test, True)))
            if node.expr2 is not None:
                self._expr(node.expr2, env.guarded(_implied(node.test, False)))
            return ANY
        if isinstance(node, nodes.Test):
            operand = replace(env, lenient=True) if node.name in _LENIENT_TESTS else env
            self._expr(node.node, operand)
            self._arguments(node, env)
            return ANY
        if isinstance(node, nodes.Filter):
            if node.node is not None:
                operand = replace(env, lenient=True) if node.name in _LENIENT_FILTERS else env
                self._expr(node.node, operand)
            self._arguments(node, env)
            return ANY
        if isinstance(node, nodes.Call):
            return self._call(node, env)
        self._children(node, env)
        return ANY

    def _arguments(
        self, node: nodes.Filter | nodes.Test | nodes.Call, env: _Env
    ) -> tuple[list[Shape], dict[str, Shape]]:
        args = [self._expr(arg, env) for arg in node.args]
        kwargs = {str(keyword.key): self._expr(keyword.value, env) for keyword in node.kwargs}
        for extra in (node.dyn_args, node.dyn_kwargs):
            if extra is not None:
                self._expr(extra, env)
        return args, kwargs

    def _call(self, node: nodes.Call, env: _Env) -> Shape:
        callee = self._expr(node.node, env)
        args, kwargs = self._arguments(node, env)
        if callee.kind != "macro" or all(s.kind == "any" for s in [*args, *kwargs.values()]):
            return ANY
        ref: _MacroRef = callee.macro
        key = (ref.file, ref.node.name, ref.node.lineno)
        if key in self.active_macros or len(self.active_macros) >= _MAX_MACRO_DEPTH:
            return ANY
        params = [arg.name for arg in ref.node.args]
        bound = dict(zip(params, args, strict=False))
        bound.update((name, shape) for name, shape in kwargs.items() if name in params)
        self.active_macros.append(key)
        try:
            self._macro_body(ref, bound)
        finally:
            self.active_macros.pop()
        return ANY

    def _name_shape(self, name: str, node: nodes.Node, env: _Env) -> Shape:
        local = env.scope.lookup(name)
        if local is not None:
            return local
        if env.context and name in self.supply.names:
            return self.supply.names[name]
        if name in self.globals:
            return ANY
        if env.context:
            known = ", ".join(sorted(self.supply.names))
            reason = f"no such variable ({self.supply.event_type} messages get {known})"
        else:
            reason = "not visible here: this file is imported without context, so it sees only its own names"
        self._problem(env, node.lineno, f"`{name}`: {reason}")
        return ANY

    def _null(self, base_node: nodes.Node, base: Shape, env: _Env, ref: str) -> None:
        """Report taking something from a value that is (or may be) None."""
        path = _path(base_node) or base.label
        trigger = self.supply.event_type
        if base.kind == "none":
            message = f"`{ref}`: {path} is None for {trigger} events ({base.why})"
        else:
            message = (
                f"`{ref}`: {path} may be None for {trigger} events ({base.why}); guard with {{% if {path} %}}"
            )
        self._problem(env, base_node.lineno, message)

    def _attribute(self, node: nodes.Node, base_node: nodes.Node, attr: str, env: _Env) -> Shape:
        base = self._expr(base_node, env)
        if base.kind == "any":
            return ANY
        ref = _source(node)
        if base.kind == "none":
            self._null(base_node, base, env, ref)
            return ANY
        if base.nullable:
            self._null(base_node, base, env, ref)
        own = _path(node)
        if own is not None and own in env.guards:
            return ANY  # `{% if x.y %}` / `is defined` already decided; the test is checked itself
        trigger = self.supply.event_type
        if base.kind == "record":
            if attr in base.fields:
                return base.fields[attr]
            if not base.open:
                has = ", ".join(base.fields)
                self._problem(
                    env,
                    node.lineno,
                    f"`{ref}`: {trigger} events supply no {base.label}.{attr} ({base.label} has {has})",
                )
            return ANY
        if base.kind == "module":
            if attr not in base.fields:
                self._problem(env, node.lineno, f"`{ref}`: {base.label} has no macro or variable {attr!r}")
                return ANY
            return base.fields[attr]
        if base.py is not None and not (not attr.startswith("_") and hasattr(base.py, attr)):
            path = _path(base_node) or "the value"
            self._problem(
                env, node.lineno, f"`{ref}`: {path} is {base.label}, which has no attribute {attr!r}"
            )
        return ANY


# -- the checks ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Found:
    lines: set[int] = field(default_factory=set)
    rules: dict[str, None] = field(default_factory=dict)  # ordered sets
    notes: dict[str, None] = field(default_factory=dict)
    via: dict[str, None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Use:
    supply: Supply
    rules: tuple[str, ...]  # "'order-confirmation'", "'thanks' (disabled)"
    note: str = ""  # for a template no rule names


def _message_files(folder: Path) -> list[str]:
    try:
        names = sorted(entry.name for entry in os.scandir(folder) if entry.is_file())
    except OSError:
        return []
    return [name for name in names if name.endswith((".html", ".htm", ".txt"))]


def _listed(values: Iterable[str], limit: int = 4) -> str:
    values = list(values)
    shown = ", ".join(values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _rules_named(names: Iterable[str]) -> str:
    names = list(names)
    return ("rule " if len(names) == 1 else "rules ") + _listed(names)


def _uses(rules: RuleSet, templates: Path) -> dict[tuple[str, str, str], _Use]:
    """(template, trigger, variant) -> what it is checked against, and for whom."""
    grouped: dict[tuple[str, str, str], tuple[Supply, list[str]]] = {}
    for rule in rules.rules:
        supply = supply_for(rule)
        label = repr(rule.name) + ("" if rule.enabled else " (disabled)")
        grouped.setdefault((rule.template, supply.event_type, supply.variant), (supply, []))[1].append(label)
    uses = {key: _Use(supply, tuple(names)) for key, (supply, names) in grouped.items()}
    named = {rule.template for rule in rules.rules}
    for template in Renderer(templates).template_names():
        trigger = SAMPLE_TRIGGER_OF_TEMPLATE.get(template)
        if template not in named and trigger in SUPPLIES:
            note = f"no rule uses {template}; checked as for {trigger}"
            uses[(template, trigger, "")] = _Use(SUPPLIES[trigger], (), note)
    return uses


def check_contract(rules: RuleSet, templates: Path) -> list[Problem]:
    """Every use, in a template a rule names, of something the rule's trigger cannot supply:
    one problem per file and reason, at its first line (later lines are listed)."""
    templates = Path(templates)
    sources = _Sources(templates)
    found: dict[tuple[str, str], _Found] = {}
    for (template, _, _), use in _uses(rules, templates).items():
        for filename in _message_files(templates / template):
            top = f"{template}/{filename}"

            def report(
                file: str, line: int | None, message: str, *, _top: str = top, _use: _Use = use
            ) -> None:
                entry = found.setdefault((file, message), _Found())
                if line is not None:
                    entry.lines.add(line)
                entry.rules.update(dict.fromkeys(_use.rules))
                if _use.note:
                    entry.notes[_use.note] = None
                if file != _top:
                    entry.via[_top] = None

            _Walker(sources, supply=use.supply, report=report).walk_template(top, None, True)
    problems = []
    for (file, message), entry in found.items():
        lines = sorted(entry.lines)
        text = message
        if len(lines) > 1:
            text += f" (also on line{'s' if len(lines) > 2 else ''} {', '.join(map(str, lines[1:]))})"
        who = [_rules_named(entry.rules)] if entry.rules else []
        who.extend(entry.notes)
        if entry.via:
            who.append(f"used by {_listed(entry.via)}")
        problems.append(
            Problem((templates / file).as_posix(), lines[0] if lines else None, f"{text} [{'; '.join(who)}]")
        )
    return sorted(problems, key=lambda p: (p.path, p.line or 0, p.message))


def locale_report(
    rules: RuleSet, renderer: Renderer, templates: Path, locales: Iterable[str | None] | None = None
) -> tuple[list[Problem], list[str]]:
    """Problems (a rule's template has no "en") and warning lines (a locale its customers
    use, or the rule's own `locale:`, is missing, so they get English).

    `locales` are the customers' locales as stored (None: the shipped LOCALES)."""
    spelled: dict[str, set[str]] = {}
    for raw in LOCALES if locales is None else locales:
        spelled.setdefault(normalize_locale(raw), set()).add(raw or FALLBACK_LOCALE)
    by_template: dict[str, list[Rule]] = {}
    for rule in rules.rules:
        by_template.setdefault(rule.template, []).append(rule)
    problems: list[Problem] = []
    warnings: list[str] = []
    for template, group in sorted(by_template.items()):
        shown = (Path(templates) / template).as_posix()
        names = ", ".join(rule.name for rule in group)
        if FALLBACK_LOCALE not in renderer.locales_of(template):
            problems.append(
                Problem(shown, None, f"no 'en' version, which every customer falls back to (rules: {names})")
            )
            continue
        missing: dict[str, dict[str, list[str]]] = {}  # locale -> why -> rule names
        for rule in group:
            wanted = {normalize_locale(rule.locale): {rule.locale}} if rule.locale else spelled
            for code, spellings in wanted.items():
                if renderer.choose_locale(template, code) != code:
                    why = (
                        "the rule's own locale"
                        if rule.locale
                        else f"customers use {', '.join(sorted(spellings))}"
                    )
                    missing.setdefault(code, {}).setdefault(why, []).append(repr(rule.name))
        for code, whys in sorted(missing.items()):
            reasons = "; ".join(f"{why}: {_rules_named(names)}" for why, names in whys.items())
            warnings.append(f"  warning: {shown}: no {code} version, so en is sent instead [{reasons}]")
    return problems, warnings


def contract_report(
    rules: RuleSet, renderer: Renderer, templates: Path, locales: Iterable[str | None] | None = None
) -> tuple[list[Problem], list[str]]:
    """For `notifier check`: the contract's problems and its summary (and warning) lines."""
    problems = check_contract(rules, templates)
    locale_problems, warnings = locale_report(rules, renderer, templates, locales)
    source = "the shipped locales" if locales is None else "the customers' locales"
    found = len(problems) + len(locale_problems)
    summary = [
        f"  contract: {len(rules.rules)} rules checked against what their events supply "
        f"and against {source}: {found} problem(s), {len(warnings)} warning(s)",
        *warnings,
    ]
    return problems + locale_problems, summary


def customer_locales(database_url: str) -> set[str] | None:
    """The locales customers have (SELECT DISTINCT locale FROM customers), or None when the
    database cannot be read. Never creates a SQLite file; waits at most 5 s for PostgreSQL."""
    from notifier.db.engine import make_engine, normalize_url

    try:
        url = sa.engine.make_url(normalize_url(database_url))
    except sa.exc.ArgumentError:
        return None
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:" or not Path(url.database).is_file():
            return None
        options: dict[str, Any] = {}
    else:
        options = {"connect_args": {"connect_timeout": 5}}
    try:
        engine = make_engine(database_url, **options)
    except (NotifierError, ImportError, sa.exc.SQLAlchemyError):
        return None
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT DISTINCT locale FROM customers")).scalars().all()
    except sa.exc.SQLAlchemyError:
        return None
    finally:
        engine.dispose()
    return {row or FALLBACK_LOCALE for row in rows}
