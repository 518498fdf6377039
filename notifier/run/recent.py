"""What intake has just read, handed to the send side of the same turn.

An order confirmation is planned and sent within moments: intake has read its event and its
order, items and customer, and the send side would read them all again a fraction of a second
later. The pipeline keeps what intake read for one turn (intake batch, then one send batch) and
the send side takes it, reading only what it lacks (messages due from earlier, other processes'
events). Nothing is kept longer than that turn, so nothing stale is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from notifier.core.values import Event, Subject

Ref = tuple[str, int]  # (source, id)


@dataclass(slots=True)
class Recent:
    """Events by (source, id) and their subjects by (source, subject id), read this turn."""

    events: dict[Ref, Event] = field(default_factory=dict)
    subjects: dict[Ref, Subject] = field(default_factory=dict)

    def remember(self, events: list[Event], subjects: Mapping[Ref, Subject]) -> None:
        self.events.update(((e.source, e.id), e) for e in events)
        self.subjects.update(subjects)

    def take(self) -> Recent:
        """What was kept, handed over once; this one starts empty again."""
        taken = Recent(self.events, self.subjects)
        self.events, self.subjects = {}, {}
        return taken
