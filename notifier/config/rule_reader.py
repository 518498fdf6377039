"""One rule of rules.yaml -> a `Rule`, every field checked, problems with file and line."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from notifier.compose.contract import condition_problems
from notifier.config.promise_reader import read_after, read_at
from notifier.config.yaml_reader import Reader
from notifier.core.addresses import InvalidAddress, check_address
from notifier.core.conditions import ExpressionError, SendAt, compile_expression, compile_send_at
from notifier.core.locale import LOCALES, normalize_locale
from notifier.core.rules import HOLDS, SCHEDULE_TICK, Audience, Category, Rule, Schedule
from notifier.core.suggest import did_you_mean, is_timezone, timezone_hint
from notifier.core.supply import condition_supply

RULE_KEYS = (
    "name",
    "schedule",
    "superseded_by",
    "hold_while",
    "description",
    "locale",
    "on",
    "when",
    "unless",
    "after",
    "at",
    "delay",
    "send_at",
    "audience",
    "category",
    "enabled",
    "template",
    "to",
    "max_age",
)
AUDIENCE_KEYS = ("ordered_product_within", "ordered_within", "product_tags")


def read_rule(
    reader: Reader,
    node: Any,
    index: int,
    template_exists: Callable[[str], bool],
    check_context: Callable[[str], Mapping[str, Any]] | None,
) -> Rule | None:
    if not isinstance(node, CommentedMap):
        reader.fail(None, f"rule {index + 1} must be a mapping with name, on and template")
        return None
    line = reader.line_of(node) or 0
    count = len(reader.problems)
    reader.check_keys(node, RULE_KEYS, f"rule {node.get('name', index + 1)!r}")
    name = str(node.get("name") or "")
    label = f"rule {name!r}" if name else f"rule {index + 1}"
    scheduled = node.get("schedule") is not None
    if scheduled and node.get("on") is not None:
        reader.fail(line, f"{label}: a rule has either on (an event) or schedule (the calendar), not both")
    for required in ("name", "template") if scheduled else ("name", "on", "template"):
        if not node.get(required):
            reader.fail(line, f"{label} needs '{required}'")
    on = SCHEDULE_TICK if scheduled else str(node.get("on") or "")
    if on and on != SCHEDULE_TICK and on not in reader.events:
        reader.fail(
            reader.key_line(node, "on"),
            f"{label}: unknown event {on!r}{did_you_mean(on, reader.events)} "
            f"(known events: {', '.join(reader.events)}; a shop's own event is declared in the "
            "capture mapping, capture.yaml)",
        )
    template = str(node.get("template") or "")
    if template and not template_exists(template):
        reader.fail(
            reader.key_line(node, "template"),
            f"{label}: template {template!r} not found{did_you_mean(template, reader.templates)} "
            f"(expected templates/{template}/en.html and en.subject.txt)",
        )
    rule_fields = _read_rule_fields(reader, node, label, on, check_context)
    if len(reader.problems) > count:
        return None
    return Rule(name=name, on=on, template=template, line=line, **rule_fields)


def _read_rule_fields(
    reader: Reader,
    node: CommentedMap,
    label: str,
    on: str,
    check_context: Callable[[str], Mapping[str, Any]] | None,
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        **read_after(reader, node, label, on),
        "locale": _read_locale(reader, node, label),
        "delay": reader.wait(node, "delay"),
        "max_age": reader.duration(node, "max_age"),
        "description": str(node.get("description") or ""),
    }
    fields["unless"] = _read_unless(reader, node, label, on)
    fields["superseded_by"] = _read_events(reader, node, "superseded_by", label, on)
    fields["hold_while"] = _read_hold(reader, node, label)
    fields["audience"] = _read_audience(reader, node, label, on)
    if fields["audience"] is not None and check_context is not None:
        check_context = _without_customer(check_context)
    probe = Rule(name=label, on=on, template="", line=0, audience=fields["audience"])
    fields["when"] = _read_expression(reader, node, "when", label, probe, check_context)
    fields["send_at"] = _read_expression(reader, node, "send_at", label, probe, check_context)
    fields["at"] = read_at(reader, node, label, probe, check_context)
    fields["schedule"] = _read_schedule(reader, node, label, fields["audience"])
    fields["category"] = _read_category(reader, node, label)
    fields["enabled"] = _read_enabled(reader, node, label)
    fields["to"] = _read_to(reader, node, label)
    _check_timing_combination(reader, node, label, fields)
    return fields


def _read_unless(reader: Reader, node: CommentedMap, label: str, on: str) -> tuple[str, ...]:
    return _read_events(reader, node, "unless", label, on)


def _read_events(reader: Reader, node: CommentedMap, key: str, label: str, on: str) -> tuple[str, ...]:
    """A list of event types about the same order or case as `on`."""
    value = node.get(key)
    if value is None:
        return ()
    names = list(value) if isinstance(value, CommentedSeq | list) else [value]
    line = reader.key_line(node, key)
    source = on.split(".", 1)[0]
    for name in names:
        if name not in reader.events:
            reader.fail(
                line, f"{label}: {key} names unknown event {name!r}{did_you_mean(name, reader.events)}"
            )
        elif on and name.split(".", 1)[0] != source:
            reader.fail(line, f"{label}: {key} event {name!r} is not about the same {source} as {on!r}")
    return tuple(str(name) for name in names)


def _read_locale(reader: Reader, node: CommentedMap, label: str) -> str | None:
    """A rule's own language, written as a template locale is named ('zh-TW', 'en', 'ja'):
    'zh-TV' would quietly be read as zh-CN, and 'en-GB' never matches a template file."""
    value = node.get("locale")
    if not value:
        return None
    text = str(value)
    if text in LOCALES or normalize_locale(text) == text:
        return text
    hint = did_you_mean(text, LOCALES) or f"; did you mean {normalize_locale(text)!r}?"
    reader.fail(
        reader.key_line(node, "locale"),
        f"{label}: locale {text!r} is not a template locale{hint} (the shipped ones: {', '.join(LOCALES)})",
    )
    return None


def _read_hold(reader: Reader, node: CommentedMap, label: str) -> str | None:
    value = node.get("hold_while")
    if value is None:
        return None
    if value not in HOLDS:
        reader.fail(
            reader.key_line(node, "hold_while"),
            f"{label}: hold_while {value!r} is not known; use one of: {', '.join(HOLDS)}",
        )
        return None
    return str(value)


def _without_customer(
    check_context: Callable[[str], Mapping[str, Any]],
) -> Callable[[str], Mapping[str, Any]]:
    """An audience rule's `when:` and `send_at:` are evaluated once per event, before there
    is a customer (db/fanout.py): try the sample the same way."""

    def context(on: str) -> Mapping[str, Any]:
        return {**check_context(on), "customer": None}

    return context


def _read_expression(
    reader: Reader,
    node: CommentedMap,
    key: str,
    label: str,
    probe: Rule,
    check_context: Callable[[str], Mapping[str, Any]] | None,
) -> Any:
    """Compile a condition, check it statically in every branch against what the rule's
    context supplies (compose/contract.condition_problems), then try it on the sample data
    (which finds what a static check cannot: a text compared with a number)."""
    if node.get(key) is None:
        return None
    line = reader.key_line(node, key)
    source = str(node[key])
    on = probe.on
    try:
        compiled = compile_send_at(source) if key == "send_at" else compile_expression(source)
        if on in reader.events or on == SCHEDULE_TICK:
            base = compiled.base.source if isinstance(compiled, SendAt) else compiled.source
            static = condition_problems(base, condition_supply(probe))
            for problem in static:
                reader.fail(line, f"{label}: {key}: {problem}")
            if static:
                return None
        if check_context is not None and on in reader.events:
            context = check_context(on)
            if isinstance(compiled, SendAt):
                compiled.moment(context)
            else:
                compiled.evaluate(context)
    except (ExpressionError, ValueError) as exc:
        hint = ""
        if node.get("audience") is not None and "customer" in source:
            hint = " (an audience rule's condition is evaluated once per event: there is no customer yet)"
        reader.fail(line, f"{label}: {key}: {exc}{hint}")
        return None
    return compiled


def _read_audience(reader: Reader, node: CommentedMap, label: str, on: str) -> Audience | None:
    value = node.get("audience")
    if value is None:
        return None
    line = reader.key_line(node, "audience")
    if not isinstance(value, CommentedMap):
        reader.fail(line, f"{label}: audience must be a mapping, e.g. {{ ordered_product_within: 365d }}")
        return None
    reader.check_keys(value, AUDIENCE_KEYS, f"{label} audience")
    if on and not on.startswith("product.") and on != SCHEDULE_TICK:
        reader.fail(line, f"{label}: audience only applies to product events and schedules, not {on!r}")
    if node.get("to") is not None:
        reader.fail(line, f"{label}: audience and to cannot be used together (to sends to one address)")
    product_window = reader.duration(value, "ordered_product_within")
    any_window = reader.duration(value, "ordered_within")
    if on == SCHEDULE_TICK and product_window is not None:
        reader.fail(line, f"{label}: a schedule has no product; use ordered_within (and product_tags)")
    if on.startswith("product.") and product_window is None:
        reader.fail(line, f"{label}: a product event's audience needs ordered_product_within")
    tags = value.get("product_tags") or []
    tags = [tags] if isinstance(tags, str) else list(tags)
    return Audience(
        ordered_product_within=product_window,
        ordered_within=any_window,
        product_tags=tuple(str(tag).strip() for tag in tags),
    )


def _read_schedule(
    reader: Reader, node: CommentedMap, label: str, audience: Audience | None
) -> Schedule | None:
    value = node.get("schedule")
    if value is None:
        return None
    line = reader.key_line(node, "schedule")
    if not isinstance(value, CommentedMap) or "cron" not in value:
        reader.fail(line, f'{label}: schedule must be {{ cron: "0 10 20 1 *", timezone: Asia/Taipei }}')
        return None
    reader.check_keys(value, ("cron", "timezone"), f"{label} schedule")
    zone = str(value.get("timezone", "UTC"))
    if not is_timezone(zone):
        reader.fail(line, f"{label}: schedule timezone {zone!r} is not an IANA timezone{timezone_hint(zone)}")
        return None
    try:
        trigger = CronTrigger.from_crontab(str(value["cron"]), timezone=ZoneInfo(zone))
    except (ValueError, KeyError) as exc:
        reader.fail(line, f"{label}: schedule: {exc}")
        return None
    if audience is None or audience.ordered_within is None:
        reader.fail(line, f"{label}: a schedule needs audience: {{ ordered_within: 365d }} (who it goes to)")
    return Schedule(str(value["cron"]), zone, trigger)


def _read_category(reader: Reader, node: CommentedMap, label: str) -> Category:
    value = node.get("category", Category.TRANSACTIONAL.value)
    try:
        return Category(str(value))
    except ValueError:
        reader.fail(
            reader.key_line(node, "category"),
            f"{label}: category {value!r} must be transactional or marketing",
        )
        return Category.TRANSACTIONAL


def _read_enabled(reader: Reader, node: CommentedMap, label: str) -> bool:
    value = node.get("enabled", True)
    if not isinstance(value, bool):
        reader.fail(reader.key_line(node, "enabled"), f"{label}: enabled must be true or false")
        return True
    return value


def _read_to(reader: Reader, node: CommentedMap, label: str) -> str | None:
    value = node.get("to")
    if value is None:
        return None
    try:
        return check_address(str(value))
    except InvalidAddress as exc:
        reader.fail(reader.key_line(node, "to"), f"{label}: to: {exc}")
        return None


def _check_timing_combination(reader: Reader, node: CommentedMap, label: str, fields: dict[str, Any]) -> None:
    line = reader.line_of(node)
    timing = [key for key in ("delay", "after", "send_at", "at") if node.get(key) is not None]
    if len(timing) > 1:
        found = ", ".join(timing)
        reader.fail(line, f"{label}: use only one of delay, after, send_at and at (found {found})")
    if fields["unless"] and node.get("after") is None and node.get("at") is None:
        reader.fail(line, f"{label}: unless needs after or at (how long to wait for those events)")
    if node.get("after") is not None and not fields["unless"]:
        reader.fail(line, f"{label}: after needs unless (the events to wait for); for a plain wait use delay")
