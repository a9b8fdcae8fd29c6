"""The worker and the outbox under faults: the database away (back-off, one log line)
and a process that died holding outbox rows (its short lease is taken over)."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import OperationalError
from django.utils import timezone

from handoffs.delivery import outbox, worker
from handoffs.models import MemoryWrite, OutboxStatus

pytestmark = pytest.mark.django_db


# ---------------------------------------------------------------- database away
class Flaky:
    """``apply_memory_writes`` failing like a database that is away for ``down`` passes."""

    def __init__(self, down: int, stop: threading.Event, total: int) -> None:
        self.down, self.stop, self.total, self.calls = down, stop, total, 0

    def __call__(self) -> int:
        self.calls += 1
        if self.calls >= self.total:
            self.stop.set()
        if self.calls <= self.down:
            raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")
        return 0


def test_the_worker_backs_off_while_the_database_is_away_and_says_so_once(monkeypatch, caplog):
    """Was a traceback per pass (two a second). Seen failing with the old loop: eight
    'outbox worker pass failed' tracebacks and no back-off."""
    stop = threading.Event()
    flaky = Flaky(down=8, stop=stop, total=10)
    waits: list[float] = []
    monkeypatch.setattr(outbox, "apply_memory_writes", flaky)
    monkeypatch.setattr(outbox, "deliver_webhooks", lambda client: 0)
    monkeypatch.setattr(stop, "wait", lambda timeout=None: waits.append(timeout) or stop.is_set())
    with caplog.at_level(logging.INFO, logger="handoffs.delivery.worker"):
        worker.run_worker(poll=1.0, stop=stop)

    records = [r for r in caplog.records if r.name == "handoffs.delivery.worker"]
    messages = [r.getMessage() for r in records]
    assert sum("database unavailable" in m for m in messages) == 1, messages
    assert sum("database back after" in m for m in messages) == 1, messages
    assert not any(r.exc_info for r in records)  # no traceback
    # 1, 2, 4, ... capped at 30 s while it is away; the normal poll once it is back.
    assert waits[:8] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert waits[8:] == [1.0, 1.0]


def test_a_bug_in_a_pass_is_still_a_traceback(monkeypatch, caplog):
    """Only an unreachable database is quieted; anything else is a bug to see."""

    def broken() -> int:
        raise ValueError("a bug")

    monkeypatch.setattr(outbox, "apply_memory_writes", broken)
    monkeypatch.setattr(outbox, "deliver_webhooks", lambda client: 0)
    worker.run_worker(once=True)
    assert "outbox worker pass failed" in caplog.text
    assert "database unavailable" not in caplog.text


# ---------------------------------------------------------------- outbox leases
@pytest.fixture
def write(db) -> MemoryWrite:
    return MemoryWrite.objects.create(
        operation="store",
        payload={"agent_id": "cust-lease", "content": "charged twice", "tags": ["console"]},
    )


def test_a_dead_owners_rows_are_taken_over_once_its_short_lease_expires(write, monkeypatch):
    """A process claimed the row and died (no renewal). Another applies it once the lease
    (10 s) is over; with the old 60 s lease 185 writes waited ~50 s. Seen failing with
    LEASE = 60 s: nothing was applied 11 s later."""
    applied: list[int] = []
    monkeypatch.setattr(outbox, "_apply", lambda w: applied.append(w.pk))
    now = timezone.now()
    assert outbox._claim(MemoryWrite, write.pk, now)  # the owner that is about to die
    outbox.leases.release(MemoryWrite, write.pk)  # ... and never renews it

    assert outbox.apply_memory_writes() == 0  # still leased: nobody else touches it
    assert applied == []
    with time_machine.travel(now + timedelta(seconds=11), tick=False):
        assert outbox.apply_memory_writes() == 1
    assert applied == [write.pk]
    write.refresh_from_db()
    assert write.status == OutboxStatus.DONE


def test_a_live_owner_renews_its_lease(write):
    """While its owner lives (a slow remote store), the lease keeps moving ahead, so a
    row being applied is never applied twice."""
    now = timezone.now()
    assert outbox._claim(MemoryWrite, write.pk, now)
    try:
        with time_machine.travel(now + timedelta(seconds=8), tick=False):
            assert outbox.leases.renew() == 1
            write.refresh_from_db()
            assert write.next_attempt_at == timezone.now() + outbox.LEASE
        with time_machine.travel(now + timedelta(seconds=12), tick=False):
            assert outbox.apply_memory_writes() == 0  # renewed at 8 s: held until 18 s
    finally:
        outbox.leases.release(MemoryWrite, write.pk)
    assert timedelta(seconds=10) >= outbox.LEASE
