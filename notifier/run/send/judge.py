"""Judge: is each claimed message still wanted now? The pure gates of notifier.core.gates over
the facts loaded for the batch. A gate that raises for one message (a row it cannot handle)
fails that message alone, with the error in plain words; the others are judged as usual."""

from __future__ import annotations

import logging
from datetime import datetime

from notifier.core.gates import Decided, Facts, judge, judge_one
from notifier.core.rules import RuleSet
from notifier.core.values import Claimed
from notifier.run.send.load import unexpected, words

log = logging.getLogger("notifier.run.send")


def judged(
    claimed: list[Claimed], rules: RuleSet, facts: Facts, *, now: datetime
) -> tuple[list[Claimed], list[Decided]]:
    """(the messages that go now, those decided otherwise: skipped, failed or deferred)."""
    try:
        return judge(claimed, rules, facts, now=now)
    except Exception:  # judge again one at a time, to find the one that cannot be judged
        pass
    passed: list[Claimed] = []
    decided: list[Decided] = []
    for item in claimed:
        try:
            verdict = judge_one(item, rules, facts, now=now)
        except Exception as exc:
            log.error("not sending %s #%s: judging it failed: %s", item.rule, item.id, words(exc))
            decided.append(unexpected(item, f"judging it failed: {words(exc)}"))
            continue
        if verdict is None:
            passed.append(item)
        else:
            decided.append(verdict)
    return passed, decided
