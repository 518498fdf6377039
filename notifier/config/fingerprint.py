"""A rule's fingerprint: a short, stable hash of its definition, stored with what it decided.

The rule's YAML mapping made canonical (keys sorted, no comments, no line numbers: moving a
rule in the file keeps its fingerprint), plus the defaults it uses: the From header always,
quiet hours for marketing, the default max_age of its category when it sets none, the
response times for `after: response_time`, and the calendar when it waits in business time or
reads `at:` on the shop's clock.
Same text, same hash; any change that can change what the rule decides, a different one.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from notifier.config.yaml_reader import plain
from notifier.core.business import BusinessDuration
from notifier.core.rules import Category, Defaults, Rule


def rule_fingerprint(node: Any, rule: Rule, defaults: Defaults, calendar: Any) -> str:
    """12 hex digits over `node` (the rule's mapping), the defaults it uses and, when it waits
    in business time, `calendar` (the file's calendar mapping as written, or None)."""
    used: dict[str, Any] = {"rule": plain(node), "from": defaults.from_header}
    if rule.category is Category.MARKETING:
        used["quiet_hours"] = repr(defaults.quiet_hours)
    if rule.max_age is None:
        used["max_age"] = repr(defaults.max_age[rule.category])
    waits = [rule.after, rule.delay]
    if rule.after_response_time:
        used["response_times"] = {key: repr(value) for key, value in sorted(defaults.response_times.items())}
        waits.extend(defaults.response_times.values())
    shop_clock = rule.at is not None and rule.at.whose == "shop"
    if shop_clock or any(isinstance(wait, BusinessDuration) for wait in waits):
        used["calendar"] = plain(calendar)
    canonical = json.dumps(used, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]
