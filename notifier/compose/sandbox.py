"""The sandbox templates render in, and the plain words for what goes wrong in it.

Jinja's immutable sandbox (a template cannot change the context its caller shares), with a
short way to dict keys and the bounds of compose/budget.py: a counting `range`, `*`, `**`
and `+` that refuse results over the size limit, and the clock looked at in `getattr` and
`finalize` (not in `call`: an override there costs 3% of every render, and what a call
renders passes through finalize anyway).
"""

from __future__ import annotations

import re
from time import monotonic
from typing import Any

import jinja2
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError, safe_range

from notifier.compose import budget
from notifier.compose.budget import BudgetExceeded
from notifier.compose.filters import FilterError
from notifier.compose.inlining import hole

_DICT_ATTRIBUTES = frozenset(dir(dict))
_current = budget.CURRENT.get
_SIZED = (str, bytes, list, tuple)
_MAX_POWER_BITS = 64 * 1024  # `2 ** 10 ** 9` would take minutes and gigabytes


class TemplateError(Exception):
    """A template could not be parsed or rendered; str() is "file:line: reason"."""

    def __init__(self, file: str, line: int | None, reason: str) -> None:
        self.file = file
        self.line = line
        self.reason = reason
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {reason}")


def _counted_range(*args: int) -> range:
    """`range()` that spends the message's iteration budget (safe_range caps one range)."""
    numbers = safe_range(*args)
    current = _current()
    if current is not None:
        current.spend(len(numbers))
    return numbers


class Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with a short way to the data templates mostly read.

    Template data are plain dicts (order, customer, items), and `order.total` is a key, not
    an attribute. Jinja finds that out by trying the attribute first, failing, and only
    then looking up the key; a dict has no attribute by any name outside dir(dict), so
    looking the key up first gives the same answer without the failed lookup. Everything
    else (methods like `items`, other types, missing keys) takes the sandbox's own checks.
    """

    intercepted_binops = frozenset({"*", "**", "+"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _counted_range

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        _look_at_the_clock()
        return super().getattr(obj, attribute)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Refuse, before computing it, a repeated or joined text or list over the size limit,
        and a power with a huge result. (Written out, not through binop_table: `+` runs often.)"""
        if operator == "+":
            if isinstance(left, _SIZED) and isinstance(right, _SIZED):
                _check_size(len(left) + len(right), "the result of +")
            return left + right
        if operator == "*":
            sized, times = (left, right) if isinstance(left, _SIZED) else (right, left)
            if isinstance(sized, _SIZED) and isinstance(times, int):
                _check_size(len(sized) * times, "the result of *")
            return left * right
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            if max(abs(left).bit_length() - 1, 1) * right > _MAX_POWER_BITS:
                raise BudgetExceeded(f"{left} ** {right} is too big a number for a template")
        return super().call_binop(context, operator, left, right)


def _check_size(size: int, what: str) -> None:
    if (current := _current()) is not None:
        current.check_size(size, what)


# Outputs and attribute lookups since the clock was last looked at, for all renders at once:
# a plain global is the cheapest counter there is, and an approximate count is enough.
_ticks = 0


def _look_at_the_clock() -> None:
    """Every 64th call: stop the current render if it is past its deadline."""
    global _ticks
    _ticks += 1
    if not _ticks & 63 and (current := _current()) is not None and monotonic() > current.deadline:
        raise BudgetExceeded(current.too_slow())


@jinja2.pass_eval_context
def finalize(eval_ctx: EvalContext, value: Any) -> Any:
    """Every `{{ ... }}`: None prints as nothing, HTML values may become holes (inlining.py),
    and the render's clock is looked at now and then."""
    global _ticks
    _ticks += 1  # _look_at_the_clock, inlined: this runs for every output
    if not _ticks & 63 and (current := _current()) is not None and monotonic() > current.deadline:
        raise BudgetExceeded(current.too_slow())
    if value is None:
        return ""
    return hole(value) if eval_ctx.autoescape else value


def explain(exc: Exception, source_line: str) -> str:
    """A plain-words reason for a rendering failure."""
    if isinstance(exc, BudgetExceeded):
        return str(exc)
    if isinstance(exc, SecurityError):
        return f"not allowed in a template: {exc}".rstrip(".")
    if isinstance(exc, jinja2.UndefinedError):
        message = str(exc)
        match = re.fullmatch(r"'.+? object' has no (attribute|element) (.+)", message)
        if match:
            key = re.escape(match[2].strip("'\""))
            owner = re.search(rf"([A-Za-z_][\w.]*)\s*(?:\.\s*{key}\b|\[\s*['\"]{key}['\"]\s*\])", source_line)
            if owner:
                return f"'{owner[1]}' has no {match[1]} {match[2]}"
        return message
    if isinstance(exc, jinja2.TemplateNotFound):
        return f"no template named {exc.name!r}"
    if isinstance(exc, FilterError):
        return str(exc)
    if isinstance(exc, OverflowError) and "MAX_RANGE" in str(exc):
        return f"range() over {jinja2.sandbox.MAX_RANGE:,} items (the limit for one range)"
    return f"{type(exc).__name__}: {exc}"
