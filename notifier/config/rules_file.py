"""rules.yaml -> a frozen, validated RuleSet.

Every problem is reported with its file, line and a plain-words reason, and all of them at
once, so ops fix a file in one pass. The YAML is read with ruamel.yaml because it keeps
line numbers for every key and value (config/yaml_reader.py); each rule is read by
config/rule_reader.py, and each gets a fingerprint of its definition (config/fingerprint.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from notifier.config.capture_reader import declared_events
from notifier.config.fingerprint import rule_fingerprint
from notifier.config.rule_reader import read_rule
from notifier.config.yaml_reader import Reader, parse_yaml, read_calendar, read_defaults
from notifier.core.rules import Rule, RuleSet
from notifier.core.vocabulary import known_events
from notifier.errors import Problem, RulesError

TOP_KEYS = ("version", "defaults", "calendar", "rules")


def load_rules(
    path: Path,
    *,
    template_exists: Callable[[str], bool],
    check_context: Callable[[str], Mapping[str, Any]] | None = None,
    text: str | None = None,
    template_names: Iterable[str] = (),
    capture: Path | None = None,
) -> RuleSet:
    """Read and validate a rules file; raise RulesError listing every problem.

    `template_exists` says whether a template name is present; `check_context(event_type)`
    gives sample data to try `when:`/`send_at:` against, so a misspelt name fails here;
    `template_names` are the templates a missing one is compared with ("did you mean");
    `capture` is the capture mapping, whose declared event types rules may name beside the
    vocabulary's (core.vocabulary.known_events).
    """
    try:
        text = path.read_text(encoding="utf-8") if text is None else text
    except OSError as exc:
        raise RulesError([Problem(str(path), None, f"cannot read the rules file: {exc.strerror}")]) from exc
    document = parse_yaml(path, text)
    reader = Reader(str(path), templates=tuple(template_names), events=known_events(declared_events(capture)))
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
    defaults = read_defaults(reader, document.get("defaults"), document)
    calendar = read_calendar(reader, document)
    rules = [
        replace(rule, fingerprint=rule_fingerprint(node, rule, defaults, document.get("calendar")))
        for rule, node in _read_rules(reader, document, template_exists, check_context)
    ]
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


def _read_rules(
    reader: Reader,
    document: CommentedMap,
    template_exists: Callable[[str], bool],
    check_context: Callable[[str], Mapping[str, Any]] | None,
) -> list[tuple[Rule, Any]]:
    """The rules read, each with its YAML mapping (for its fingerprint)."""
    nodes = document.get("rules")
    if not isinstance(nodes, CommentedSeq):
        reader.fail(
            reader.key_line(document, "rules") if "rules" in document else 1,
            "'rules' must be a list of rules",
        )
        return []
    rules: list[tuple[Rule, Any]] = []
    seen: dict[str, int] = {}
    for index, node in enumerate(nodes):
        rule = read_rule(reader, node, index, template_exists, check_context)
        if rule is None:
            continue
        if rule.name in seen:
            reader.fail(rule.line, f"rule name {rule.name!r} is used twice (first on line {seen[rule.name]})")
        seen[rule.name] = rule.line
        rules.append((rule, node))
    return rules
