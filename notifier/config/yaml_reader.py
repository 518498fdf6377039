"""Reading rules.yaml's YAML: problems with file and line, the defaults and the calendar.

ruamel.yaml keeps line numbers for every key and value; a `Reader` collects the problems of
one document so they are all reported at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time, timedelta
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from notifier.core.addresses import InvalidAddress, parse_from
from notifier.core.business import Calendar, calendar_from, parse_business
from notifier.core.rules import DEFAULT_MAX_AGE, DEFAULT_RESPONSE_TIMES, Category, Defaults, QuietHours, Wait
from notifier.core.suggest import did_you_mean
from notifier.core.timing import parse_duration
from notifier.core.vocabulary import known_events
from notifier.errors import Problem, RulesError

DEFAULT_KEYS = ("from", "quiet_hours", "max_age", "response_times")


class Reader:
    """Collects problems while converting one YAML document."""

    def __init__(
        self, path: str, templates: tuple[str, ...] = (), events: tuple[str, ...] | None = None
    ) -> None:
        self.path = path
        self.problems: list[Problem] = []
        self.templates = templates  # the template names there are, for "did you mean"
        # The event types rules may name (core.vocabulary.known_events): the vocabulary's, and
        # those the capture mapping declares.
        self.events = known_events() if events is None else events

    def fail(self, line: int | None, message: str) -> None:
        self.problems.append(Problem(self.path, line, message))

    @staticmethod
    def key_line(node: Any, key: Any) -> int | None:
        try:
            return int(node.lc.key(key)[0]) + 1
        except (AttributeError, KeyError, TypeError):
            return Reader.line_of(node)

    @staticmethod
    def line_of(node: Any) -> int | None:
        lc = getattr(node, "lc", None)
        return None if lc is None else int(lc.line) + 1

    def check_keys(self, node: CommentedMap, allowed: tuple[str, ...], where: str) -> None:
        for key in node:
            if key not in allowed:
                self.fail(
                    self.key_line(node, key),
                    f"unknown key {key!r} in {where}{did_you_mean(key, allowed)} "
                    f"(allowed: {', '.join(allowed)})",
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


def read_defaults(reader: Reader, node: Any, top: CommentedMap) -> Defaults:
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


def _read_quiet_hours(reader: Reader, node: CommentedMap) -> QuietHours | None:
    value = node.get("quiet_hours")
    if value is None:
        return None
    line = reader.key_line(node, "quiet_hours")
    if not isinstance(value, CommentedMap) or set(value) != {"start", "end"}:
        reader.fail(line, 'quiet_hours must be { start: "21:00", end: "08:00" }')
        return None
    clocks: dict[str, time] = {}
    for end in ("start", "end"):  # every bad value reported, not only the first
        try:
            clocks[end] = _clock(value[end])
        except ValueError as exc:
            reader.fail(reader.key_line(value, end) or line, f"quiet_hours.{end}: {exc}")
    if len(clocks) < 2:
        return None
    return QuietHours(clocks["start"], clocks["end"])


def _read_durations(
    reader: Reader, node: CommentedMap, key: str, default: Mapping[Any, Any], allowed: tuple[str, ...]
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


def parse_yaml(path: Path, text: str) -> Any:
    try:
        return YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        line, reason = yaml_words(exc)
        raise RulesError([Problem(str(path), line, f"YAML: {reason}")]) from exc
    except YAMLError as exc:
        raise RulesError([Problem(str(path), None, f"YAML: {exc}")]) from exc


_DUPLICATE = re.compile(
    r'duplicate key "(?P<key>.*?)" with value "(?P<new>.*?)" \(original value: "(?P<old>.*?)"\)'
)
_CLOSERS = {"flow sequence": ("[", "]"), "flow mapping": ("{", "}")}


def yaml_words(exc: MarkedYAMLError) -> tuple[int | None, str]:
    """ruamel's error as the line to look at and plain words: a tab, an indentation that does
    not line up, a quote or bracket left open, a key written twice. Others keep ruamel's words."""
    problem, context = str(exc.problem or ""), str(exc.context or "")
    at = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
    opened = exc.context_mark.line + 1 if exc.context_mark is not None else at
    if "'\\t'" in problem or "\t" in problem:
        return at, "tabs are not allowed; indent with spaces"
    if "quoted scalar" in context:
        return opened, "a quote opened on this line is never closed; end the text with the same quote"
    for what, (opening, closing) in _CLOSERS.items():
        if what in context:
            return opened, f"the {opening} opened on this line is not closed with {closing} (by line {at})"
    if (duplicate := _DUPLICATE.search(problem)) is not None:
        return at, (
            f"{duplicate['key']!r} is written twice in the same mapping ({duplicate['old']!r}, then "
            f"{duplicate['new']!r}); keep one"
        )
    if "mapping values are not allowed" in problem:
        return at, (
            "a ':' where none can be: check this line's indentation (the keys of one mapping line "
            "up exactly), or put a value that contains ': ' in quotes"
        )
    if "expected <block end>" in problem:
        return at, (
            "this line's indentation does not match the lines above: the keys of one mapping line "
            "up exactly, and each list item starts with '- '"
        )
    # Otherwise ruamel's words; the context mark points at what was left open, better than EOF.
    return opened, " ".join(filter(None, [context, problem])) or "not valid YAML"


def read_calendar(reader: Reader, document: CommentedMap) -> Calendar:
    value = document.get("calendar")
    if value is None:
        return Calendar()
    line = reader.key_line(document, "calendar")
    if not isinstance(value, CommentedMap):
        reader.fail(line, "calendar must be a mapping (timezone, working_days, opening_hours, ...)")
        return Calendar()
    try:
        return calendar_from(plain(value))
    except ValueError as exc:
        # The line of the key the reason names ('calendar timezone ...'), else the calendar's.
        named = next((key for key in value if str(key) in str(exc)), None)
        reader.fail(reader.key_line(value, named) if named is not None else line, str(exc))
        return Calendar()


def plain(value: Any) -> Any:
    """ruamel's commented containers -> plain dicts and lists."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
