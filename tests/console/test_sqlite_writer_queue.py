"""The embedded SQLite backend queues a process's writing transactions on one lock."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError, connection, connections, transaction

from console.db.sqlite3.base import WRITER
from handoffs.models import Team

pytestmark = pytest.mark.django_db(transaction=True)


def _in_thread(fn) -> threading.Thread:
    def run():
        try:
            fn()
        finally:
            connections.close_all()  # this thread's connection

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_settings_use_it():
    assert connection.settings_dict["ENGINE"] == "console.db.sqlite3"
    assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_a_second_writer_starts_when_the_first_commits_not_when_sqlite_polls():
    events: list[str] = []
    first_in = threading.Event()

    def first():
        with transaction.atomic():
            Team.objects.create(slug="first", name="First")
            events.append("first begun")
            first_in.set()
            time.sleep(0.3)
            events.append("first committing")

    def second():
        assert first_in.wait(5)
        with transaction.atomic():
            events.append("second begun")
            Team.objects.create(slug="second", name="Second")

    threads = [_in_thread(first), _in_thread(second)]
    for thread in threads:
        thread.join(10)
    assert events == ["first begun", "first committing", "second begun"]
    assert set(Team.objects.values_list("slug", flat=True)) >= {"first", "second"}
    assert not WRITER.locked()


def test_a_failed_transaction_releases_the_queue():
    with pytest.raises(ValueError), transaction.atomic():
        Team.objects.create(slug="rolled-back", name="Rolled back")
        assert WRITER.locked()
        raise ValueError("boom")
    assert not WRITER.locked()
    assert not Team.objects.filter(slug="rolled-back").exists()
    with transaction.atomic():  # the next writer gets in at once
        Team.objects.create(slug="next", name="Next")
    assert not WRITER.locked()


def test_closing_a_connection_mid_transaction_releases_the_queue():
    def abandon():
        transaction.atomic().__enter__()  # begun, never committed
        Team.objects.create(slug="abandoned", name="Abandoned")
        assert WRITER.locked()

    _in_thread(abandon).join(10)  # the thread's connection is closed at its end
    assert not WRITER.locked()
    assert not Team.objects.filter(slug="abandoned").exists()


def test_a_writer_that_cannot_get_in_within_the_busy_timeout_gets_database_is_locked(
    monkeypatch,
):
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "timeout", 0.2)
    assert WRITER.acquire(timeout=1)
    try:
        with pytest.raises(OperationalError, match="database is locked"), transaction.atomic():
            pass
    finally:
        WRITER.release()
    with transaction.atomic():
        Team.objects.create(slug="after", name="After")


def test_a_request_threads_connection_is_closed_when_its_request_ends():
    """CONN_MAX_AGE keeps the consumers' thread's connection; a request's thread must not
    leave its own to the garbage collector (an open file and WAL index each)."""
    from django.core.signals import request_finished

    Team.objects.count()
    assert connection.connection is not None
    request_finished.send(sender=None)
    assert connection.connection is None

    with transaction.atomic():  # never in the middle of a transaction
        Team.objects.count()
        request_finished.send(sender=None)
        assert connection.connection is not None
