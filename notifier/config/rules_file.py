"""rules.yaml -> a frozen, validated RuleSet.

Every problem is reported with its file, line and a plain-words reason, and all of them at
once, so ops fix a file in one pass. The YAML is read with ruamel.yaml because it keeps
line numbers for every key and value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from notifier.core.addresses import InvalidAddress, check_address, parse_from
from notifier.core.business import Calendar, calendar_from, parse_business
from notifier.core.conditions import (
    ExpressionError,
    SendAt,
    compile_expression,
    compile_send_at,
)
from notifier.core.rules import (
    DEFAULT_MAX_AGE,
    DEFAULT_RESPONSE_TIMES,
    HOLDS,
    RESPONSE_TIME,
    SCHEDULE_TICK,
    Audience,
    Category,
    Defaults,
    QuietHours,
    Rule,
    RuleSet,
    Schedule,
    Wait,
)
from notifier.core.timing import parse_duration
from notifier.core.vocabulary import VOCABULARY
from notifier.errors import Problem, RulesError

TOP_KEYS = ("version", "defaults", "calendar", "rules")
DEFAULT_KEYS = ("from", "quiet_hours", "max_age", "response_times")
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


class _Reader:
    """Collects problems while converting one YAML document."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []

    def fail(self, line: int | None, message: str) -> None:
        self.problems.append(Problem(self.path, line, message))

    @staticmethod
    def key_line(node: Any, key: Any) -> int | None:
        try:
            return int(node.lc.key(key)[0]) + 1
        except (AttributeError, KeyError, TypeError):
            return _Reader.line_of(node)

    @staticmethod
    def line_of(node: Any) -> int | None:
        lc = getattr(node, "lc", None)
        return None if lc is None else int(lc.line) + 1

    def check_keys(self, node: CommentedMap, allowed: tuple[str, ...], where: str) -> None:
        for key in node:
            if key not in allowed:
                self.fail(
                    self.key_line(node, key), f"unknown key {key!r} in {where}; allowed: {', '.join(allowed)}"
                )

    def duration(self, node: Any, key: str) -> timedelta | None:
        if key not in node or node[key] is None:
            return None
        try:
            return parse_duration(node[key])
        except ValueError as exc:
            self.fail(self.key_line(node, key), f"{key}: {exc}")
            return None

    def wait(self, node: Any, key: str) -> Wait | None:
        """A duration, or working time against the calendar ('2 business days')."""
        if key in node and (business := parse_business(node[key])) is not None:
            return business
        return self.duration(node, key)


def _clock(text: Any) -> time:
    try:
        hours, minutes = str(text).split(":")
        return time(int(hours), int(minutes))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a time of day like 21:00") from exc


def _read_defaults(reader: _Reader, node: Any, top: CommentedMap) -> Defaults:
    if not isinstance(node, CommentedMap):
        reader.fail(
            reader.key_line(top, "defaults") if "defaults" in top else 1,
            "'defaults' must be a mapping with at least 'from'",
        )
        return Defaults(from_header="notifier <notifier@localhost>")
    reader.check_keys(node, DEFAULT_KEYS, "defaults")
    from_header = str(node.get("from") or "")
    if not from_header:
        reader.fail(reader.line_of(node), "defaults.from is required, e.g. 'Shop <care@shop.example>'")
    else:
        try:
            parse_from(from_header)
        except InvalidAddress as exc:
            reader.fail(reader.key_line(node, "from"), f"defaults.from: {exc}")
    return Defaults(
        from_header=from_header or "notifier <notifier@localhost>",
        quiet_hours=_read_quiet_hours(reader, node),
        max_age=_read_durations(reader, node, "max_age", DEFAULT_MAX_AGE, tuple(Category)),
        response_times=_read_durations(
            reader, node, "response_times", DEFAULT_RESPONSE_TIMES, tuple(DEFAULT_RESPONSE_TIMES)
        ),
    )


def _read_quiet_hours(reader: _Reader, node: CommentedMap) -> QuietHours | None:
    value = node.get("quiet_hours")
    if value is None:
        return None
    line = reader.key_line(node, "quiet_hours")
    if not isinstance(value, CommentedMap) or set(value) != {"start", "end"}:
        reader.fail(line, 'quiet_hours must be { start: "21:00", end: "08:00" }')
        return None
    try:
        return QuietHours(_clock(value["start"]), _clock(value["end"]))
    except ValueError as exc:
        reader.fail(line, f"quiet_hours: {exc}")
        return None


def _read_durations(
    reader: _Reader, node: CommentedMap, key: str, default: Mapping[Any, Any], allowed: tuple[str, ...]
) -> dict[Any, Any]:
    result = dict(default)
    value = node.get(key)
    if value is None:
        return result
    if not isinstance(value, CommentedMap):
        reader.fail(reader.key_line(node, key), f"{key} must be a mapping of {', '.join(allowed)}")
        return result
    reader.check_keys(value, allowed, f"defaults.{key}")
    for name in value:
        if name in allowed:
            parsed = reader.wait(value, name) if key == "response_times" else reader.duration(value, name)
            if parsed is not None:
                result[type(next(iter(default)))(name)] = parsed
    return result


def _read_rule(
    reader: _Reader,
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
    if on and on != SCHEDULE_TICK and on not in VOCABULARY:
        reader.fail(
            reader.key_line(node, "on"),
            f"{label}: unknown event {on!r}; known events: {', '.join(VOCABULARY)}",
        )
    template = str(node.get("template") or "")
    if template and not template_exists(template):
        reader.fail(
            reader.key_line(node, "template"),
            f"{label}: template {template!r} not found (expected templates/{template}/en.html "
            f"and en.subject.txt)",
        )
    rule_fields = _read_rule_fields(reader, node, label, on, check_context)
    if len(reader.problems) > count:
        return None
    return Rule(name=name, on=on, template=template, line=line, **rule_fields)


def _read_rule_fields(
    reader: _Reader,
    node: CommentedMap,
    label: str,
    on: str,
    check_context: Callable[[str], Mapping[str, Any]] | None,
) -> dict[str, Any]:
    by_priority = node.get("after") == RESPONSE_TIME
    if by_priority and not on.startswith("case."):
        reader.fail(
            reader.key_line(node, "after"), f"{label}: after: response_time only applies to case events"
        )
    fields: dict[str, Any] = {
        "after": None if by_priority else reader.wait(node, "after"),
        "after_response_time": by_priority,
        "locale": str(node["locale"]) if node.get("locale") else None,
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
    fields["when"] = _read_expression(reader, node, "when", label, on, check_context)
    fields["send_at"] = _read_expression(reader, node, "send_at", label, on, check_context)
    fields["schedule"] = _read_schedule(reader, node, label, fields["audience"])
    fields["category"] = _read_category(reader, node, label)
    fields["enabled"] = _read_enabled(reader, node, label)
    fields["to"] = _read_to(reader, node, label)
    _check_timing_combination(reader, node, label, fields)
    return fields


def _read_unless(reader: _Reader, node: CommentedMap, label: str, on: str) -> tuple[str, ...]:
    return _read_events(reader, node, "unless", label, on)


def _read_events(reader: _Reader, node: CommentedMap, key: str, label: str, on: str) -> tuple[str, ...]:
    """A list of event types about the same order or case as `on`."""
    value = node.get(key)
    if value is None:
        return ()
    names = list(value) if isinstance(value, CommentedSeq | list) else [value]
    line = reader.key_line(node, key)
    source = on.split(".", 1)[0]
    for name in names:
        if name not in VOCABULARY:
            reader.fail(line, f"{label}: {key} names unknown event {name!r}")
        elif on and name.split(".", 1)[0] != source:
            reader.fail(line, f"{label}: {key} event {name!r} is not about the same {source} as {on!r}")
    return tuple(str(name) for name in names)


def _read_hold(reader: _Reader, node: CommentedMap, label: str) -> str | None:
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
    is a customer (audience.py): check them the same way, so `customer.*` fails here, with
    the file and line, and not at run time."""

    def context(on: str) -> Mapping[str, Any]:
        return {**check_context(on), "customer": None}

    return context


def _read_expression(
    reader: _Reader,
    node: CommentedMap,
    key: str,
    label: str,
    on: str,
    check_context: Callable[[str], Mapping[str, Any]] | None,
) -> Any:
    if node.get(key) is None:
        return None
    line = reader.key_line(node, key)
    source = str(node[key])
    try:
        compiled = compile_send_at(source) if key == "send_at" else compile_expression(source)
        if check_context is not None and on in VOCABULARY:
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


def _read_audience(reader: _Reader, node: CommentedMap, label: str, on: str) -> Audience | None:
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
    reader: _Reader, node: CommentedMap, label: str, audience: Audience | None
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
    try:
        trigger = CronTrigger.from_crontab(str(value["cron"]), timezone=ZoneInfo(zone))
    except (ValueError, KeyError) as exc:
        reader.fail(line, f"{label}: schedule: {exc}")
        return None
    if audience is None or audience.ordered_within is None:
        reader.fail(line, f"{label}: a schedule needs audience: {{ ordered_within: 365d }} (who it goes to)")
    return Schedule(str(value["cron"]), zone, trigger)


def _read_category(reader: _Reader, node: CommentedMap, label: str) -> Category:
    value = node.get("category", Category.TRANSACTIONAL.value)
    try:
        return Category(str(value))
    except ValueError:
        reader.fail(
            reader.key_line(node, "category"),
            f"{label}: category {value!r} must be transactional or marketing",
        )
        return Category.TRANSACTIONAL


def _read_enabled(reader: _Reader, node: CommentedMap, label: str) -> bool:
    value = node.get("enabled", True)
    if not isinstance(value, bool):
        reader.fail(reader.key_line(node, "enabled"), f"{label}: enabled must be true or false")
        return True
    return value


def _read_to(reader: _Reader, node: CommentedMap, label: str) -> str | None:
    value = node.get("to")
    if value is None:
        return None
    try:
        return check_address(str(value))
    except InvalidAddress as exc:
        reader.fail(reader.key_line(node, "to"), f"{label}: to: {exc}")
        return None


def _check_timing_combination(
    reader: _Reader, node: CommentedMap, label: str, fields: dict[str, Any]
) -> None:
    line = reader.line_of(node)
    timing = [key for key in ("delay", "after", "send_at") if node.get(key) is not None]
    if len(timing) > 1:
        reader.fail(line, f"{label}: use only one of delay, after and send_at (found {', '.join(timing)})")
    if fields["unless"] and node.get("after") is None:
        reader.fail(line, f"{label}: unless needs after (how long to wait for those events)")
    if node.get("after") is not None and not fields["unless"]:
        reader.fail(line, f"{label}: after needs unless (the events to wait for); for a plain wait use delay")


def _parse_yaml(path: Path, text: str) -> Any:
    try:
        return YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        # The context mark points at what was left open (a bracket, a quote); better than EOF.
        mark = exc.context_mark or exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        reason = " ".join(filter(None, [exc.context, exc.problem])) or "not valid YAML"
        raise RulesError([Problem(str(path), line, f"YAML: {reason}")]) from exc
    except YAMLError as exc:
        raise RulesError([Problem(str(path), None, f"YAML: {exc}")]) from exc


def load_rules(
    path: Path,
    *,
    template_exists: Callable[[str], bool],
    check_context: Callable[[str], Mapping[str, Any]] | None = None,
    text: str | None = None,
) -> RuleSet:
    """Read and validate a rules file; raise RulesError listing every problem.

    `template_exists` says whether a template name is present; `check_context(event_type)`
    gives sample data to try `when:`/`send_at:` against, so a misspelt name fails here.
    """
    try:
        text = path.read_text(encoding="utf-8") if text is None else text
    except OSError as exc:
        raise RulesError([Problem(str(path), None, f"cannot read the rules file: {exc.strerror}")]) from exc
    document = _parse_yaml(path, text)
    reader = _Reader(str(path))
    if not isinstance(document, CommentedMap):
        raise RulesError(
            [Problem(str(path), 1, "the file must be a mapping with version, defaults and rules")]
        )
    reader.check_keys(document, TOP_KEYS, "the top level")
    if document.get("version") != 1:
        reader.fail(
            reader.key_line(document, "version") if "version" in document else 1,
            f"version must be 1 (found {document.get('version')!r})",
        )
    defaults = _read_defaults(reader, document.get("defaults"), document)
    calendar = _read_calendar(reader, document)
    rules = _read_rules(reader, document, template_exists, check_context)
    if reader.problems:
        raise RulesError(reader.problems)
    return RuleSet(
        version=1,
        defaults=defaults,
        rules=tuple(rules),
        path=str(path),
        digest=hashlib.sha256(text.encode()).hexdigest()[:12],
        calendar=calendar,
    )


def _read_calendar(reader: _Reader, document: CommentedMap) -> Calendar:
    value = document.get("calendar")
    if value is None:
        return Calendar()
    line = reader.key_line(document, "calendar")
    if not isinstance(value, CommentedMap):
        reader.fail(line, "calendar must be a mapping (timezone, working_days, opening_hours, ...)")
        return Calendar()
    try:
        return calendar_from(_plain(value))
    except ValueError as exc:
        reader.fail(line, str(exc))
        return Calendar()


def _plain(value: Any) -> Any:
    """ruamel's commented containers -> plain dicts and lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _read_rules(
    reader: _Reader,
    document: CommentedMap,
    template_exists: Callable[[str], bool],
    check_context: Callable[[str], Mapping[str, Any]] | None,
) -> list[Rule]:
    nodes = document.get("rules")
    if not isinstance(nodes, CommentedSeq):
        reader.fail(
            reader.key_line(document, "rules") if "rules" in document else 1,
            "'rules' must be a list of rules",
        )
        return []
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for index, node in enumerate(nodes):
        rule = _read_rule(reader, node, index, template_exists, check_context)
        if rule is None:
            continue
        if rule.name in seen:
            reader.fail(rule.line, f"rule name {rule.name!r} is used twice (first on line {seen[rule.name]})")
        seen[rule.name] = rule.line
        rules.append(rule)
    return rules
