"""The contract walker: a template's (or a condition's) Jinja syntax tree against a Supply.

Reports each use the rule's trigger cannot supply, with the file and line; see
notifier.compose.contract for what is understood and what is reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from jinja2 import nodes

from notifier.compose.tree import (
    LENIENT_FILTERS,
    LENIENT_TESTS,
    MAX_MACRO_DEPTH,
    MacroRef,
    Report,
    Scope,
    Sources,
    WalkEnv,
    calls_super,
    const_names,
    declared,
    implied,
    path_of,
    source_of,
    target_names,
)
from notifier.core.supply import ANY, Shape, Supply


class Walker:
    """Walks one message file (and what it extends, includes and imports) for one supply."""

    def __init__(self, sources: Sources, supply: Supply, report: Report) -> None:
        self.sources = sources
        self.supply = supply
        self.report = report
        self.globals = frozenset(sources.env.globals) | {"self"}
        self.modules: dict[tuple[str, bool], Shape] = {}
        self.active_macros: list[tuple[str, str, int]] = []
        self.active_files: list[str] = []

    def walk_expression(self, expression: nodes.Expr) -> None:
        """A condition (`when:`, `send_at:`): one expression over the context, every branch."""
        self._expr(expression, WalkEnv(file="", scope=Scope(), context=True))

    # templates

    def walk_template(
        self,
        name: str,
        parent: Scope | None,
        context: bool,
        *,
        guards: frozenset[str] = frozenset(),
        overridden: frozenset[str] = frozenset(),
    ) -> Scope | None:
        tree = self.sources.tree(name)
        if tree is None or name in self.active_files:
            return None
        self.active_files.append(name)
        try:
            root = Scope(parent, declared(tree.body))
            env = WalkEnv(file=name, scope=root, context=context, guards=guards, skip_blocks=overridden)
            self._body(tree.body, env)
            for extends in tree.find_all(nodes.Extends):
                mine = {block.name for block in tree.find_all(nodes.Block) if not calls_super(block)}
                for layout in const_names(extends.template) or ():
                    if self._present(layout, env, extends.lineno, "extends"):
                        self.walk_template(layout, root, context, overridden=overridden | mine)
            return root
        finally:
            self.active_files.pop()

    def _present(self, name: str, env: WalkEnv, line: int, how: str) -> bool:
        if self.sources.exists(name):
            return True
        self._problem(env, line, f"`{{% {how} {name!r} %}}`: there is no {name} in the templates folder")
        return False

    def _problem(self, env: WalkEnv, line: int | None, message: str) -> None:
        if not env.lenient:
            self.report(env.file, line, message)

    # statements

    def _body(self, body: Sequence[nodes.Node], env: WalkEnv) -> None:
        for stmt in body:
            self._stmt(stmt, env)

    def _stmt(self, node: nodes.Node, env: WalkEnv) -> None:
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
                for name in target_names(node.target):
                    env.scope.names[name] = ANY
        elif isinstance(node, nodes.AssignBlock):
            self._body(node.body, env)
            if node.filter is not None:
                self._expr(node.filter, env)
            for name in target_names(node.target):
                env.scope.names[name] = ANY
        elif isinstance(node, nodes.Macro):
            ref = MacroRef(node, env.file, env.scope, env.context)
            env.scope.names[node.name] = Shape(kind="macro", label=node.name, macro=ref)
            for default in node.defaults:
                self._expr(default, replace(env, guards=frozenset()))
            self._macro_body(ref, {})
        elif isinstance(node, nodes.CallBlock):
            self._expr(node.call, env)
            for default in node.defaults:
                self._expr(default, env)
            inner = env.inner([arg.name for arg in node.args] + declared(node.body))
            self._body(node.body, inner)
        elif isinstance(node, nodes.With):
            inner = env.inner(declared(node.body))
            for target, value in zip(node.targets, node.values, strict=False):
                shape = self._expr(value, env)
                for name in target_names(target):
                    inner.scope.names[name] = shape if isinstance(target, nodes.Name) else ANY
            self._body(node.body, inner)
        elif isinstance(node, nodes.Block):
            if node.name not in env.skip_blocks:
                inner = replace(env, guards=frozenset()).inner(["super", *declared(node.body)])
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
            if const_names(node.template) is None:
                self._expr(node.template, env)
        else:
            self._children(node, env)

    def _children(self, node: nodes.Node, env: WalkEnv) -> None:
        for child in node.iter_child_nodes():
            if isinstance(child, nodes.Stmt):
                self._stmt(child, env)
            elif isinstance(child, nodes.Expr):
                self._expr(child, env)
            else:
                self._children(child, env)

    def _if(self, node: nodes.If, env: WalkEnv) -> None:
        self._expr(node.test, env)
        self._body(node.body, env.guarded(implied(node.test, True)))
        otherwise = implied(node.test, False)
        for branch in node.elif_:
            here = env.guarded(otherwise)
            self._expr(branch.test, here)
            self._body(branch.body, here.guarded(implied(branch.test, True)))
            otherwise |= implied(branch.test, False)
        self._body(node.else_, env.guarded(otherwise))

    def _for(self, node: nodes.For, env: WalkEnv) -> None:
        iterable = self._expr(node.iter, env)
        if iterable.kind == "none" or iterable.nullable:
            self._null(node.iter, iterable, env, f"{{% for ... in {source_of(node.iter)} %}}")
        inner = env.inner(["loop", *declared(node.body)])
        item = iterable.item if iterable.kind == "list" and iterable.item else ANY
        if isinstance(node.target, nodes.Name):
            inner.scope.names[node.target.name] = item
        else:
            for name in target_names(node.target):
                inner.scope.names[name] = ANY
        if node.test is not None:
            self._expr(node.test, inner)
        self._body(node.body, inner)
        self._body(node.else_, env)

    def _include(self, node: nodes.Include, env: WalkEnv) -> None:
        names = const_names(node.template)
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

    def _import(self, node: nodes.Import | nodes.FromImport, env: WalkEnv) -> Shape:
        names = const_names(node.template)
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

    def _macro_body(self, ref: MacroRef, bound: Mapping[str, Shape]) -> None:
        params = [arg.name for arg in ref.node.args]
        env = WalkEnv(
            file=ref.file,
            scope=Scope(ref.scope, [*params, "caller", "varargs", "kwargs", *declared(ref.node.body)]),
            context=ref.context,
        )
        for name, shape in bound.items():
            env.scope.names[name] = shape
        self._body(ref.node.body, env)

    # expressions

    def _expr(self, node: nodes.Node, env: WalkEnv) -> Shape:
        shape = self._expr_raw(node, env)
        path = path_of(node)
        if path is not None and path in env.guards:
            if shape.kind == "none":
                return ANY  # dead code under a guard: harmless
            if shape.nullable:
                return replace(shape, nullable=False)
        return shape

    def _expr_raw(self, node: nodes.Node, env: WalkEnv) -> Shape:
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
                self._null(node.node, base, env, source_of(node))
            if base.kind == "list" and base.item and isinstance(node.arg, nodes.Const):
                return base.item
            return ANY
        if isinstance(node, nodes.And):
            self._expr(node.left, env)
            self._expr(node.right, env.guarded(implied(node.left, True)))
            return ANY
        if isinstance(node, nodes.Or):
            self._expr(node.left, env)
            self._expr(node.right, env.guarded(implied(node.left, False)))
            return ANY
        if isinstance(node, nodes.CondExpr):
            self._expr(node.test, env)
            self._expr(node.expr1, env.guarded(implied(node.test, True)))
            if node.expr2 is not None:
                self._expr(node.expr2, env.guarded(implied(node.test, False)))
            return ANY
        if isinstance(node, nodes.Test):
            operand = replace(env, lenient=True) if node.name in LENIENT_TESTS else env
            self._expr(node.node, operand)
            self._arguments(node, env)
            return ANY
        if isinstance(node, nodes.Filter):
            if node.node is not None:
                operand = replace(env, lenient=True) if node.name in LENIENT_FILTERS else env
                self._expr(node.node, operand)
            self._arguments(node, env)
            return ANY
        if isinstance(node, nodes.Call):
            return self._call(node, env)
        self._children(node, env)
        return ANY

    def _arguments(
        self, node: nodes.Filter | nodes.Test | nodes.Call, env: WalkEnv
    ) -> tuple[list[Shape], dict[str, Shape]]:
        args = [self._expr(arg, env) for arg in node.args]
        kwargs = {str(keyword.key): self._expr(keyword.value, env) for keyword in node.kwargs}
        for extra in (node.dyn_args, node.dyn_kwargs):
            if extra is not None:
                self._expr(extra, env)
        return args, kwargs

    def _call(self, node: nodes.Call, env: WalkEnv) -> Shape:
        callee = self._expr(node.node, env)
        args, kwargs = self._arguments(node, env)
        if callee.kind != "macro" or all(s.kind == "any" for s in [*args, *kwargs.values()]):
            return ANY
        ref: MacroRef = callee.macro
        key = (ref.file, ref.node.name, ref.node.lineno)
        if key in self.active_macros or len(self.active_macros) >= MAX_MACRO_DEPTH:
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

    def _name_shape(self, name: str, node: nodes.Node, env: WalkEnv) -> Shape:
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

    def _null(self, base_node: nodes.Node, base: Shape, env: WalkEnv, ref: str) -> None:
        """Report taking something from a value that is (or may be) None."""
        path = path_of(base_node) or base.label
        trigger = self.supply.event_type
        if base.kind == "none":
            message = f"`{ref}`: {path} is None for {trigger} events ({base.why})"
        else:
            message = (
                f"`{ref}`: {path} may be None for {trigger} events ({base.why}); guard with {{% if {path} %}}"
            )
        self._problem(env, base_node.lineno, message)

    def _attribute(self, node: nodes.Node, base_node: nodes.Node, attr: str, env: WalkEnv) -> Shape:
        base = self._expr(base_node, env)
        if base.kind == "any":
            return ANY
        ref = source_of(node)
        if base.kind == "none":
            self._null(base_node, base, env, ref)
            return ANY
        if base.nullable:
            self._null(base_node, base, env, ref)
        own = path_of(node)
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
            path = path_of(base_node) or "the value"
            self._problem(
                env, node.lineno, f"`{ref}`: {path} is {base.label}, which has no attribute {attr!r}"
            )
        return ANY
