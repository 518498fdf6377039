"""The keys that time a rule from a promise: `after: response_time - 30m` and `at:`.

    after: response_time            the case's promised reply time (its priority's response time)
    after: "response_time - 30m"    30 minutes before it (the team hears before the breach)
    at: "order.promised_date 14:00"        that day at 14:00, the customer's time
    at: "order.promised_date 14:00 shop"   ... on the shop calendar's clock
    at: "order.promised_date - 1d 17:00"   the day before, at 17:00

Each problem is reported with the file and line of its key, like every other key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from ruamel.yaml.comments import CommentedMap

from notifier.compose.contract import condition_problems
from notifier.config.yaml_reader import Reader
from notifier.core.conditions import At, ExpressionError, compile_at
from notifier.core.rules import RESPONSE_TIME, Rule
from notifier.core.supply import condition_supply
from notifier.core.timing import parse_duration

_RESPONSE = re.compile(rf"^\s*{RESPONSE_TIME}\b\s*(?:(?P<sign>[+-])\s*(?P<offset>.*?))?\s*$")


def read_after(reader: Reader, node: CommentedMap, label: str, on: str) -> dict[str, Any]:
    """`after:` as the rule's fields: a wait, or the case's promised reply time and an offset."""
    value = node.get("after")
    match = _RESPONSE.match(str(value)) if isinstance(value, str) else None
    if match is None:
        return {"after": reader.wait(node, "after"), "after_response_time": False}
    line = reader.key_line(node, "after")
    if not on.startswith("case."):
        reader.fail(line, f"{label}: after: response_time only applies to case events")
    offset = timedelta(0)
    if match["sign"]:
        try:
            offset = parse_duration(match["offset"])
        except ValueError as exc:
            reader.fail(
                line,
                f"{label}: after: {value!r}: the offset {exc}; write e.g. response_time - 30m "
                "(a plain duration: s, m, h, d)",
            )
        offset = -offset if match["sign"] == "-" else offset
    return {"after": None, "after_response_time": True, "response_offset": offset}


def read_at(
    reader: Reader,
    node: CommentedMap,
    label: str,
    probe: Rule,
    check_context: Callable[[str], Mapping[str, Any]] | None,
) -> At | None:
    """`at:` compiled, its date expression checked statically against what the trigger
    supplies, then tried on the sample data (it must give a date, or nothing)."""
    value = node.get("at")
    if value is None:
        return None
    line = reader.key_line(node, "at")
    if probe.on and not probe.on.startswith(("order.", "case.")):
        reader.fail(line, f"{label}: at: times a message from a date of an order or case, not {probe.on!r}")
        return None
    try:
        at = compile_at(str(value))
        if probe.on in reader.events:
            static = condition_problems(at.base.source, condition_supply(probe))
            for problem in static:
                reader.fail(line, f"{label}: at: {problem}")
            if static:
                return None
        if check_context is not None and probe.on in reader.events:
            at.day(check_context(probe.on))
    except (ExpressionError, ValueError) as exc:
        reader.fail(line, f"{label}: at: {exc}")
        return None
    return at
