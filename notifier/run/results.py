"""What a batch, a cycle and a process did, and the exit codes: shared by the daemon, `run --once`
and the worker processes, so that none of them imports another for these."""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_SMTP_UNAVAILABLE = 75  # EX_TEMPFAIL: `run --once` could not reach SMTP; nothing was lost
EXIT_WORKER_FAILED = 70  # EX_SOFTWARE: a worker ended without saying how it went


@dataclass(slots=True)
class BatchResult:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    retrying: int = 0
    released: int = 0
    deferred: int = 0  # waiting: quiet hours, or held while a case is open


@dataclass(slots=True)
class CycleResult:
    events: int = 0
    planned: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    retrying: int = 0
    read_all: bool = False  # every event waiting when the cycle began has been evaluated

    def add(self, batch: BatchResult) -> None:
        self.sent += batch.sent
        self.failed += batch.failed
        self.skipped += batch.skipped
        self.retrying += batch.retrying

    def merge(self, other: CycleResult) -> None:
        for name in ("events", "planned", "sent", "failed", "skipped", "retrying"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def handled(self) -> int:
        """Messages whose turn came in this cycle, whatever became of them."""
        return self.sent + self.failed + self.skipped + self.retrying
