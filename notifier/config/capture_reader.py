"""capture.yaml -> a frozen `CaptureMap`, every problem at once with file and line.

The file says which change in the shop's own tables is which notifier event (README: Capture:
events from the shop's own tables). It is read the way rules.yaml is (config/yaml_reader.py:
ruamel keeps every line, a `Reader` collects the problems, "did you mean" for a near miss).
What only the database can tell (the table and its columns exist) is checked at install and
check time (notifier/db/capture/columns.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from notifier.config.yaml_reader import Reader, parse_yaml
from notifier.core.capture import (
    EVENT_TABLES,
    Capture,
    CaptureMap,
    Change,
    Column,
    Comparison,
    Condition,
    Literal,
    Now,
    Scalar,
    Value,
)
from notifier.core.suggest import closest, did_you_mean
from notifier.core.vocabulary import VOCABULARY
from notifier.errors import Problem, RulesError

TOP_KEYS = ("events",)
ENTRY_KEYS = ("event", "table", "on", "when", "changed", "subject", "occurred_at", "data")
TEST_KEYS = ("in", "not", "is")
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")
_EXAMPLE = "e.g. - { event: order.placed, table: order_order, on: insert, subject: new.id }"


class CaptureError(RulesError):
    """The capture mapping is not valid."""


def load_capture(path: Path, text: str | None = None) -> CaptureMap | None:
    """Read and validate a capture mapping; None when there is no such file (no capture);
    CaptureError listing every problem when it is not valid."""
    if text is None:
        if not path.exists():
            return None
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CaptureError(
                [Problem(str(path), None, f"cannot read the capture mapping: {exc.strerror}")]
            ) from exc
    try:
        document = parse_yaml(path, text)
    except RulesError as exc:
        raise CaptureError(list(exc.problems)) from exc
    reader = Reader(str(path))
    if not isinstance(document, CommentedMap) or not isinstance(document.get("events"), CommentedSeq):
        line = reader.key_line(document, "events") if isinstance(document, CommentedMap) else 1
        raise CaptureError(
            [Problem(str(path), line or 1, f"the file must be a mapping with a list 'events:' ({_EXAMPLE})")]
        )
    reader.check_keys(document, TOP_KEYS, "the top level")
    captures = [_entry(reader, node, index) for index, node in enumerate(document["events"])]
    if reader.problems:
        raise CaptureError(sorted(reader.problems, key=lambda problem: problem.line or 0))
    return CaptureMap(str(path), tuple(c for c in captures if c is not None))


def declared_events(path: Path | None) -> frozenset[str]:
    """The event types a capture mapping declares, for rules to name; none without a file.
    A mapping with problems still declares the events it names well (its problems are
    `check`'s and `capture`'s to report), so one mistake there does not refuse the rules."""
    if path is None or not path.exists():
        return frozenset()
    try:
        found = load_capture(path)
    except CaptureError:
        return _events_named(path)
    return found.declared if found is not None else frozenset()


def _events_named(path: Path) -> frozenset[str]:
    try:
        document = parse_yaml(path, path.read_text(encoding="utf-8"))
    except (RulesError, OSError, UnicodeDecodeError):
        return frozenset()
    entries = document.get("events") if isinstance(document, CommentedMap) else None
    names = [entry.get("event") for entry in entries or () if isinstance(entry, CommentedMap)]
    return frozenset(str(name) for name in names if _event_problem(name) is None)


def _event_problem(name: Any) -> str | None:
    if not isinstance(name, str) or "." not in name:
        return f"event {name!r} must be a source and a type, e.g. order.dispatched"
    source, kind = name.split(".", 1)
    if source not in EVENT_TABLES:
        return f"event {name!r}: notifier's events are about an order, product or case, not {source!r}" + (
            did_you_mean(source, EVENT_TABLES)
        )
    if not _NAME.match(kind):
        return (
            f"event {name!r}: the type after '{source}.' is lower-case letters, digits and _ "
            "(e.g. gift_wrapped)"
        )
    near = closest(name, VOCABULARY, cutoff=0.9)
    if name not in VOCABULARY and near is not None:
        return (
            f"event {name!r} is not in the vocabulary; did you mean {near!r}? (a shop's own event "
            "needs a name of its own)"
        )
    return None


def _entry(reader: Reader, node: Any, index: int) -> Capture | None:
    if not isinstance(node, CommentedMap):
        reader.fail(reader.line_of(node), f"entry {index + 1} must be a mapping ({_EXAMPLE})")
        return None
    count = len(reader.problems)
    line = reader.line_of(node) or 0
    event = node.get("event")
    label = f"entry {index + 1} ({event})" if isinstance(event, str) else f"entry {index + 1}"
    reader.check_keys(node, ENTRY_KEYS, label)
    for required in ("event", "table", "on", "subject"):
        if node.get(required) in (None, ""):
            reader.fail(line, f"{label} needs '{required}'")
    if event is not None and (problem := _event_problem(event)) is not None:
        reader.fail(reader.key_line(node, "event"), problem)
    table = node.get("table")
    if table is not None and not (isinstance(table, str) and _IDENTIFIER.match(table)):
        reader.fail(reader.key_line(node, "table"), f"{label}: table {table!r} is not a table name")
    on = _change(reader, node, label)
    rows = on.rows if on is not None else ("new", "old")
    subject = _column(reader, node, "subject", label, rows) if node.get("subject") is not None else None
    occurred_at = _occurred_at(reader, node, label, rows)
    when = _when(reader, node, label, rows)
    changed = _changed(reader, node, label, on)
    data = _data(reader, node, label, rows)
    if len(reader.problems) > count or on is None or subject is None:
        return None
    return Capture(
        number=index + 1,
        event=str(event),
        table=str(table),
        on=on,
        subject=subject,
        occurred_at=occurred_at,
        when=when,
        changed=changed,
        data=data,
        line=line,
        table_line=reader.key_line(node, "table") or line,
    )


def _change(reader: Reader, node: CommentedMap, label: str) -> Change | None:
    value = node.get("on")
    if value is None:
        return None
    try:
        return Change(str(value).lower())
    except ValueError:
        reader.fail(
            reader.key_line(node, "on"),
            f"{label}: on {value!r} must be insert, update or delete"
            + did_you_mean(value, [change.value for change in Change]),
        )
        return None


def _reference(text: Any, rows: tuple[str, ...]) -> tuple[Column | None, str | None]:
    """'new.col' -> (Column, None); a string that is no column reference -> (None, None);
    a reference to a row this change has not -> (None, why)."""
    if not isinstance(text, str) or not text.startswith(("new.", "old.")):
        return None, None
    row, name = text.split(".", 1)
    if not _IDENTIFIER.match(name):
        return None, f"{text!r}: {name!r} is not a column name"
    if row not in rows:
        change = "an insert has no old row" if row == "old" else "a delete has no new row"
        return None, f"{text!r}: {change} (use {rows[0]}.{name})"
    return Column(row, name), None


def _column(reader: Reader, node: CommentedMap, key: str, label: str, rows: tuple[str, ...]) -> Column | None:
    line = reader.key_line(node, key)
    column, problem = _reference(node[key], rows)
    if problem is not None:
        reader.fail(line, f"{label}: {key}: {problem}")
    elif column is None:
        reader.fail(
            line,
            f"{label}: {key} must be a column of the changed row, e.g. {rows[0]}.id (found {node[key]!r})",
        )
    return None if column is None else Column(column.row, column.name, line)


def _occurred_at(reader: Reader, node: CommentedMap, label: str, rows: tuple[str, ...]) -> Column | Now:
    value = node.get("occurred_at")
    if value is None or value == "now":
        return Now()
    found = _column(reader, node, "occurred_at", label, rows)
    return Now() if found is None else found


def _when(reader: Reader, node: CommentedMap, label: str, rows: tuple[str, ...]) -> tuple[Condition, ...]:
    value = node.get("when")
    if value is None:
        return ()
    if not isinstance(value, CommentedMap):
        reader.fail(
            reader.key_line(node, "when"), f"{label}: when must be a mapping, e.g. {{ new.status: Shipped }}"
        )
        return ()
    conditions = []
    for key, test in value.items():
        line = reader.key_line(value, key)
        column, problem = _reference(key, rows)
        if column is None:
            reader.fail(line, f"{label}: when: {problem or f'{key!r} must be a column, e.g. new.status'}")
            continue
        condition = _condition(reader, Column(column.row, column.name, line), test, line, label)
        if condition is not None:
            conditions.append(condition)
    return tuple(conditions)


def _condition(reader: Reader, column: Column, test: Any, line: int | None, label: str) -> Condition | None:
    where = f"{label}: when {column}"
    if not isinstance(test, CommentedMap):
        if not _is_scalar(test) or test is None:
            reader.fail(
                line, f"{where}: a value to equal (for NULL write {{is: null}}), or {{in: [...]}}, {{not: X}}"
            )
            return None
        return Condition(column, Comparison.EQUALS, (_plain(test),))
    reader.check_keys(test, TEST_KEYS, f"{where}")
    if len(test) != 1 or next(iter(test)) not in TEST_KEYS:
        reader.fail(line, f"{where}: one of {{in: [X, Y]}}, {{not: X}}, {{is: null}}, {{is: not null}}")
        return None
    kind, operand = next(iter(test.items()))
    if kind == "in":
        items = list(operand) if isinstance(operand, CommentedSeq | list) else None
        if not items or not all(_is_scalar(item) and item is not None for item in items):
            reader.fail(line, f"{where}: in takes a list of values, e.g. {{in: [Cancelled, Canceled]}}")
            return None
        return Condition(column, Comparison.IN, tuple(_plain(item) for item in items))
    if kind == "not":
        if not _is_scalar(operand) or operand is None:
            reader.fail(line, f"{where}: not takes one value (for NOT NULL write {{is: not null}})")
            return None
        return Condition(column, Comparison.NOT, (_plain(operand),))
    if operand is None or str(operand).lower() == "null":
        return Condition(column, Comparison.IS_NULL)
    if str(operand).lower() == "not null":
        return Condition(column, Comparison.IS_NOT_NULL)
    reader.fail(line, f"{where}: is takes null or not null (found {operand!r})")
    return None


def _changed(reader: Reader, node: CommentedMap, label: str, on: Change | None) -> tuple[str, ...]:
    value = node.get("changed")
    if value is None:
        return ()
    line = reader.key_line(node, "changed")
    if on is not None and on != Change.UPDATE:
        reader.fail(line, f"{label}: changed applies to on: update only (an {on.value} changes every column)")
        return ()
    names = list(value) if isinstance(value, CommentedSeq | list) else [value]
    found = []
    for name in names:
        bare = name.split(".", 1)[1] if isinstance(name, str) and name.startswith(("new.", "old.")) else name
        if not (isinstance(bare, str) and _IDENTIFIER.match(bare)):
            reader.fail(line, f"{label}: changed lists column names, e.g. [price] (found {name!r})")
        else:
            found.append(bare)
    if not found and names == []:
        reader.fail(line, f"{label}: changed lists at least one column, e.g. [price]")
    return tuple(found)


def _data(
    reader: Reader, node: CommentedMap, label: str, rows: tuple[str, ...]
) -> tuple[tuple[str, Value], ...]:
    value = node.get("data")
    if value is None:
        return ()
    if not isinstance(value, CommentedMap):
        reader.fail(
            reader.key_line(node, "data"), f"{label}: data must be a mapping, e.g. {{ carrier: new.carrier }}"
        )
        return ()
    found: list[tuple[str, Value]] = []
    for key, item in value.items():
        line = reader.key_line(value, key)
        if not isinstance(key, str) or not key:
            reader.fail(line, f"{label}: data key {key!r} must be a name")
            continue
        if not _is_scalar(item):
            reader.fail(
                line, f"{label}: data {key}: new.col, old.col, now or a plain value (not a list or mapping)"
            )
            continue
        if item == "now":
            found.append((key, Now()))
            continue
        column, problem = _reference(item, rows)
        if problem is not None:
            reader.fail(line, f"{label}: data {key}: {problem}")
        elif column is not None:
            found.append((key, Column(column.row, column.name, line)))
        else:
            found.append((key, Literal(_plain(item))))
    return tuple(found)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _plain(value: Any) -> Scalar:
    """ruamel's scalar subclasses (ScalarFloat, ...) -> plain Python values."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)
