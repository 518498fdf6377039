"""`--workers N`: extra sending processes beside the main one. Every email still goes exactly
once, one order's emails in event order, the summary counts what every process did,
stopping the daemon stops its workers, and a worker that dies at every start is not started
again at every poll interval."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from notifier.config.settings import Settings
from notifier.db.engine import init_db, make_engine
from notifier.run.daemon import Pipeline
from notifier.run.workers import RESTART_DELAY_MAX, Workers, _Slot
from tests.daemons import start_daemon, stop, wait_for
from tests.journey import STEPS, journeys, kinds_per_order
from tests.shop import Shop
from tests.smtp_server import FaultySmtpServer


@pytest.fixture
def every_step(settings: Settings) -> Settings:
    """All three events of each journey are known at once here: supersession off, so each
    order must get all three emails, in order."""
    settings.rules.write_text(settings.rules.read_text().replace("    superseded_by: [order.delivered]", ""))
    return settings


def _journeys(url: str, orders: int, *, batch: int = 0) -> int:
    """`orders` orders, each placed, dispatched and delivered; the number of events. A later
    `batch` takes ids and addresses of its own."""
    engine = make_engine(url)
    init_db(engine)
    shop = Shop(engine)
    shop._ids.update({"product": 100 * batch, "customer": 100 * batch, "order": 1000 + 1000 * batch})
    ids = journeys(shop, orders, customers=10, prefix=f"c{batch}-", timezone="UTC")
    engine.dispose()
    return len(ids) * len(STEPS)


def _daemon_with_a_worker(
    url: str, settings: Settings, tmp_path: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], Path]:
    """One journey (three emails) in the database, and `notifier run --workers 2` started on
    it; returns the daemon and its log."""
    _journeys(url, 1)
    log = tmp_path / "daemon.log"
    return start_daemon(settings, log, args=("-v", "run", "--workers", "2"), env=env), log


def _senders(log: str) -> set[str]:
    """Which processes logged a sent message: 'main' or 'worker N'."""
    found = set()
    for line in log.splitlines():
        if " notifier.run.send: sent " in line:
            worker = re.search(r"\[(worker \d+)\]", line)
            found.add(worker.group(1) if worker else "main")
    return found


@pytest.mark.slow
def test_run_once_with_workers_sends_every_email_once_in_order_and_counts_them_all(
    db_url: str, every_step: Settings, smtp_server: FaultySmtpServer, tmp_path: Path
) -> None:
    expected = _journeys(db_url, 300)
    log = tmp_path / "once.log"
    process = start_daemon(
        every_step,
        log,
        args=("-v", "run", "--once", "--workers", "3"),
        env={"NOTIFIER_BATCH_SIZE": "40"},
        stdout=subprocess.PIPE,
    )
    stdout, _ = process.communicate(timeout=240)
    text = log.read_text()
    assert process.returncode == 0, text[-2000:]
    ids = [m.message_id for m in smtp_server.messages]
    assert len(ids) == expected and len(set(ids)) == expected, "every email exactly once"
    assert all(kinds == list(STEPS) for kinds in kinds_per_order(smtp_server).values()), "in event order"
    assert f"{expected} sent" in stdout.decode(), "the summary counts the workers' emails too"
    assert {"main", "worker 1", "worker 2"} <= _senders(text), "all three processes sent"


@pytest.mark.slow
def test_stopping_the_daemon_stops_its_workers_and_loses_nothing(
    db_url: str, every_step: Settings, smtp_server: FaultySmtpServer, tmp_path: Path
) -> None:
    expected = _journeys(db_url, 100)
    log = tmp_path / "daemon.log"
    env = {"NOTIFIER_BATCH_SIZE": "20"}
    daemon = start_daemon(every_step, log, args=("-v", "run", "--workers", "2"), env=env)
    try:
        wait_for(lambda: len(smtp_server.messages) >= expected, limit=120)
        workers = _children(daemon.pid)
        assert len(workers) == 1, "one extra sending process, and no other (no resource tracker)"
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    finally:
        stop([daemon])
    assert daemon.returncode == 0, log.read_text()[-2000:]
    assert not [pid for pid in workers if _alive(pid)], "the worker stopped with the daemon"
    assert len({m.message_id for m in smtp_server.messages}) == expected == len(smtp_server.messages)
    assert "stopped cleanly" in log.read_text()


@pytest.mark.slow
def test_a_worker_whose_main_process_is_killed_stops_by_itself(
    db_url: str, every_step: Settings, smtp_server: FaultySmtpServer, tmp_path: Path
) -> None:
    daemon, log = _daemon_with_a_worker(db_url, every_step, tmp_path)
    try:
        wait_for(lambda: len(smtp_server.messages) >= 3, limit=60)
        [worker] = _children(daemon.pid)
        daemon.kill()
        daemon.wait(timeout=30)
        wait_for(lambda: not _alive(worker), limit=30, what="the worker to stop")
    finally:
        stop([daemon])
    assert "the main process is gone; stopping" in log.read_text()


@pytest.mark.slow
def test_a_worker_that_dies_is_replaced_and_its_messages_still_go(
    db_url: str, every_step: Settings, smtp_server: FaultySmtpServer, tmp_path: Path
) -> None:
    env = {"NOTIFIER_BATCH_SIZE": "20", "NOTIFIER_LEASE": "2s"}
    daemon, log = _daemon_with_a_worker(db_url, every_step, tmp_path, env)
    try:
        wait_for(lambda: len(smtp_server.messages) >= 3, limit=60)
        first = _children(daemon.pid)
        assert len(first) == 1
        os.kill(first[0], signal.SIGKILL)
        wait_for(lambda: set(_children(daemon.pid)) - set(first) != set(), limit=30, what="a new worker")
        expected = 3 + _journeys(db_url, 60, batch=1)
        wait_for(lambda: len({m.message_id for m in smtp_server.messages}) >= expected, limit=120)
    finally:
        stop([daemon])
    assert "worker 1 stopped unexpectedly" in log.read_text()
    assert len({m.message_id for m in smtp_server.messages}) == expected


@pytest.mark.slow
def test_a_worker_started_while_the_rules_are_broken_waits_for_a_good_edit(
    db_url: str, every_step: Settings, smtp_server: FaultySmtpServer, tmp_path: Path
) -> None:
    """The main process keeps the last good rules after a bad edit; a worker started then
    (in place of one that died) cannot load them, and waits instead of dying over and over."""
    expected = _journeys(db_url, 1)
    log = tmp_path / "daemon.log"
    daemon = start_daemon(every_step, log, args=("-v", "run", "--workers", "2"), env={"NOTIFIER_LEASE": "2s"})
    good = every_step.rules.read_text()
    try:
        wait_for(lambda: len(smtp_server.messages) >= expected, limit=60)
        every_step.rules.write_text(good + "\n  - name: [broken\n")
        wait_for(lambda: "keeping the last good ones" in log.read_text(), limit=30, what="the refused edit")
        [worker] = _children(daemon.pid)
        os.kill(worker, signal.SIGKILL)
        waiting = "cannot start: the rules"
        wait_for(lambda: log.read_text().count(waiting) >= 2, limit=30, what="the new worker")
        assert log.read_text().count("stopped unexpectedly") == 1, "the new worker waits; it does not die"
        every_step.rules.write_text(good)
        expected += _journeys(db_url, 40, batch=1)
        wait_for(lambda: len({m.message_id for m in smtp_server.messages}) >= expected, limit=120)
    finally:
        stop([daemon])
        every_step.rules.write_text(good)
    assert daemon.returncode == 0
    assert len({m.message_id for m in smtp_server.messages}) == expected


def test_a_slot_whose_worker_dies_soon_after_every_start_waits_twice_as_long_each_time() -> None:
    """The first death is replaced at once; then 5 s, 10 s, 20 s ... and never more than
    five minutes, however long the loop goes on."""
    slot, now, delays = _Slot(), 1000.0, []
    for _ in range(2000):  # some days of a crash loop at the longest delay
        slot.start(now)
        now += 2  # it dies at once; seen at the next poll
        delay = slot.died(now)
        assert not slot.due(now + delay - 0.1), "not started again before its delay"
        assert slot.due(now + delay)
        delays.append(delay)
        now += delay
    assert delays[:9] == [0, 5, 10, 20, 40, 80, 160, 300, 300]
    assert max(delays) == RESTART_DELAY_MAX
    assert slot.quick_deaths == 2000


def test_a_worker_that_ran_for_a_while_resets_its_slots_back_off() -> None:
    slot = _Slot()
    for now in (0.0, 10.0):
        slot.start(now)
        slot.died(now + 1)
    slot.start(20.0)
    assert slot.died(21.0) == 10, "third quick death in a row"
    slot.start(100.0)
    assert slot.died(100.0 + 60) == 0, "it ran a minute: replaced at once"
    assert slot.quick_deaths == 0
    slot.start(200.0)
    assert slot.died(201.0) == 0, "one quick death after a good run is replaced at once too"
    slot.start(201.0)
    assert slot.died(202.0) == 5, "then the back-off starts again from 5 s"


@pytest.mark.slow
def test_a_worker_that_dies_at_every_start_is_started_again_only_after_its_delay(
    caplog: pytest.LogCaptureFixture
) -> None:
    """Real processes, a clock of the test's own: replace_dead() runs every poll interval,
    but starts a new worker only when the slot's delay has passed, and says so once."""
    now = 0.0
    dies_at_once = (sys.executable, "-c", "raise SystemExit(3)")
    workers = Workers.start(
        replace(Settings(), workers=2), once=False, clock=lambda: now, command=dies_at_once
    )

    def poll(at: float) -> bool:
        """replace_dead() at `at`, once the worker has died: whether it started another."""
        nonlocal now
        before = workers.running[0]
        assert before.process.wait(timeout=30) == 3
        now = at
        workers.replace_dead()
        return workers.running[0] is not before

    try:
        assert poll(1), "the first death: replaced at once"
        assert not poll(2), "the second in a row: not at the next poll..."
        assert not poll(6.9)
        assert poll(7), "...but 5 s after it was seen"
        assert not poll(8), "then 10 s"
        assert not poll(17.9)
    finally:
        workers.kill()
        workers.running[0].process.wait(timeout=30)
        workers.running[0].close()
    messages = [r.getMessage() for r in caplog.records if r.name == "notifier.run.workers"]
    died = "worker 1 stopped unexpectedly (exit 3)"
    assert messages[-3:] == [
        f"{died}; starting another",
        f"{died} 2 times in a row within a minute of starting; next start in 5 s",
        f"{died} 3 times in a row within a minute of starting; next start in 10 s",
    ], "once per death, not once per poll"


def _children(pid: int) -> list[int]:
    """Live processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"



def test_the_workers_module_loads_without_the_daemon() -> None:
    """`run` starts its workers before it loads the daemon's modules (about a second), so
    that the workers load at the same time as the main process does."""
    heavy = ("notifier.run.daemon", "sqlalchemy", "jinja2", "babel", "css_inline")
    code = f"import sys, notifier.run.workers; print([m for m in {heavy!r} if m in sys.modules])"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


def test_with_workers_the_main_process_claims_a_smaller_batch(settings: Settings) -> None:
    """The main process also reads and plans every event; the workers only send. With equal
    batches the main process was the busier one and the workers waited for it."""
    shares = {}
    for reads_events in (True, False):
        with_workers = replace(settings, workers=2, batch_size=600)
        pipeline = Pipeline(with_workers, reads_events=reads_events)
        shares[reads_events] = pipeline.dispatcher.claim_limit
        pipeline.engine.dispose()
    assert shares == {True: 200, False: 600}
    alone = Pipeline(replace(settings, batch_size=600))
    assert alone.dispatcher.claim_limit == 600, "one process claims whole batches"
    alone.engine.dispose()
