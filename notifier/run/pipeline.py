"""One process's pipeline: reload, intake and the send side, for the daemon, `run --once`, the
workers and the demo; and what every such process does first (one malloc arena)."""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import secrets
import socket
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import Engine

from notifier.config.live import LiveConfig, templates_digest
from notifier.config.settings import Settings
from notifier.config.validate import key_problems
from notifier.core.timing import utcnow
from notifier.core.values import Reason
from notifier.db import store
from notifier.db.engine import make_engine
from notifier.run import metrics
from notifier.run.intake import IntakeResult, intake
from notifier.run.recent import Recent
from notifier.run.results import CycleResult
from notifier.run.schedules import fire_due
from notifier.run.send import Dispatcher
from notifier.smtp.pool import Sender
from notifier.smtp.url import SmtpConfig

log = logging.getLogger("notifier.run")


def worker_name() -> str:
    """host:pid:random — unique per process, readable in `status` and lease owners."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


class Pipeline:
    """Everything one daemon (or one `run --once`, or the demo) needs to do its work."""

    def __init__(
        self,
        settings: Settings,
        *,
        config: LiveConfig | None = None,
        engine: Engine | None = None,
        clock: Callable[[], datetime] = utcnow,
        reads_events: bool = True,
        accepted: str = "",
    ) -> None:
        """`accepted`: the digest of the files the main process checked (config/live.py)."""
        self.settings = settings
        self.clock = clock
        self.reads_events = reads_events  # False in the extra sending processes (notifier.run.workers)
        self.worker = worker_name()
        self._owns_engine = engine is None
        self.engine = engine or make_engine(settings.database_url.reveal())
        self.config = config or LiveConfig(
            settings.rules, settings.templates, settings.capture, accepted=accepted
        )
        smtp = SmtpConfig.from_url(
            settings.smtp_url.reveal(),
            connections=settings.smtp_connections,
            timeout=settings.smtp_timeout.total_seconds(),
            ehlo_name=settings.smtp_ehlo_name,
        )
        if reads_events and smtp.ehlo_warning is not None:
            log.warning("%s", smtp.ehlo_warning)
        self.sender = Sender(smtp)
        self.stopping = asyncio.Event()
        self.recent = Recent()  # what intake read this turn, for the send side
        self.dispatcher = Dispatcher(
            engine=self.engine,
            config=self.config,
            sender=self.sender,
            settings=settings,
            worker=self.worker,
            clock=clock,
            claim_limit=_claim_limit(settings, reads_events),
            stopping=self.stopping,
            recent=self.recent,
        )

    async def __aenter__(self) -> Pipeline:
        await self.sender.__aenter__()
        if self.reads_events:
            self.publish_config()
            self._mind_the_key()
        return self

    def _mind_the_key(self) -> None:
        """Marketing rules without the secret key: a warning (their mail waits, held). With the
        key, mail held for it goes at once rather than at its next look."""
        has_secret = self.settings.secret_key is not None
        for problem in key_problems(self.config.rules, self.config.rules_path, has_secret=has_secret):
            log.warning("%s", problem)
        if has_secret:
            with self.engine.begin() as conn:
                released = store.release_waiting(conn, Reason.NO_SECRET_KEY, self.clock())
            if released:
                log.info("%d marketing message(s) held for NOTIFIER_SECRET_KEY go now", released)

    async def __aexit__(self, *exc: object) -> None:
        await self.sender.__aexit__(*exc)
        if self._owns_engine:
            self.engine.dispose()

    def publish_config(self) -> None:
        rules = self.config.rules
        with self.engine.begin() as conn:
            store.publish(
                conn,
                {
                    "rules.path": str(self.config.rules_path),
                    "rules.digest": rules.digest,
                    "rules.count": str(len(rules.rules)),
                    "templates.path": str(self.config.templates),
                    # What the editor and the gallery show as "the version the daemon uses".
                    "templates.digest": templates_digest(self.config.template_files),
                    "templates.files": json.dumps(self.config.template_files, sort_keys=True),
                    "reload.error": self.config.last_error or "",
                    "reload.at": self.clock().isoformat(),
                },
                self.clock(),
            )

    async def cycle(self) -> CycleResult:
        """Reload if edited, evaluate new events, send everything due, until idle or stopping."""
        result = CycleResult()
        reloaded = self.config.reload_if_changed()
        if reloaded.changed:
            metrics.reloaded(reloaded.error is None)
            if self.reads_events:
                await asyncio.to_thread(self.publish_config)
        if self.reads_events:
            result.planned += await asyncio.to_thread(
                fire_due, self.engine, self.config.rules, clock=self.clock
            )
        while not self.stopping.is_set():
            # Read a batch of events, then send a batch: a long backlog starts going out at once.
            taken = await self._read_batch()
            result.events += taken.events
            result.planned += taken.planned
            result.read_all = not taken.more
            batch = await self.dispatcher.dispatch_once()
            result.add(batch)
            if batch.released or (not taken.more and batch.claimed == 0):
                break
        return result

    async def _read_batch(self) -> IntakeResult:
        if not self.reads_events:
            return IntakeResult(0, 0)
        return await asyncio.to_thread(
            intake,
            self.engine,
            self.config.rules,
            clock=self.clock,
            batch_size=self.settings.batch_size,
            gap_timeout=self.settings.gap_timeout,
            # A batch for every sending process (this one and its workers) per turn.
            max_batches=self.settings.workers,
            recent=self.recent,
        )


def _claim_limit(settings: Settings, reads_events: bool) -> int:
    """How many messages a process claims at a time. With workers, the main process also
    reads and plans every event (about a third of the work per email): it claims a batch of
    batch_size / (workers + 1), so that it does not hold the workers back. With 2 processes
    and equal batches the main process was the busier one by half, and the worker waited."""
    if not reads_events or settings.workers <= 1:
        return settings.batch_size
    return max(1, settings.batch_size // (settings.workers + 1))


M_ARENA_MAX = -8  # glibc's mallopt() parameter


def use_one_malloc_arena() -> None:
    """Ask glibc's malloc for one arena in this process, unless MALLOC_ARENA_MAX says otherwise.

    By default glibc gives a thread that allocates while another holds the arena's lock an
    arena of its own, up to 8 per core, and each keeps the memory it once held. notifier's
    threads (the event loop, database and SMTP work) take turns under Python's GIL anyway;
    with one arena a process peaks about 10 MB lower at the same speed. Call it before
    threads start. Other C libraries than glibc have no mallopt, and nothing changes.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, 1)
    except (OSError, AttributeError):
        pass
