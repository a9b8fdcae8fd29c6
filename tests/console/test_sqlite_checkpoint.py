"""WAL checkpoints on a background thread in the serving process (console/db/sqlite3)."""

from __future__ import annotations

import sqlite3
import time

import pytest
from django.db import connection

from console.db.sqlite3 import checkpoint


def _wal_database(path):
    writer = sqlite3.connect(path)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # only the checkpointer copies the log
    writer.execute("CREATE TABLE note (body TEXT)")
    writer.commit()
    return writer


def test_the_checkpointer_copies_the_log_into_the_database_file(tmp_path):
    path = tmp_path / "db.sqlite3"
    writer = _wal_database(path)
    writer.executemany("INSERT INTO note VALUES (?)", [("x" * 500,)] * 2000)
    writer.commit()
    size_before = path.stat().st_size  # the rows are still in db.sqlite3-wal

    checkpointer = checkpoint.Checkpointer(lambda: str(path), interval=0.05).start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (checkpointer.last and checkpointer.last[2]):
            time.sleep(0.05)
    finally:
        checkpointer.stop()
    busy, log_frames, checkpointed = checkpointer.last
    assert busy == 0
    assert log_frames > 0
    assert checkpointed == log_frames
    assert path.stat().st_size > size_before + 500 * 1000
    writer.close()


def test_the_checkpointer_never_creates_a_missing_database(tmp_path):
    path = tmp_path / "not-yet.sqlite3"
    checkpointer = checkpoint.Checkpointer(lambda: str(path), interval=0.02).start()
    time.sleep(0.2)
    checkpointer.stop()
    assert not path.exists()
    assert checkpointer.runs == 0


@pytest.mark.django_db
def test_connections_keep_only_a_backstop_while_the_checkpointer_runs(monkeypatch):
    def autocheckpoint() -> int:
        raw = connection.get_new_connection(connection.get_connection_params())
        try:
            return raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        finally:
            raw.close()

    monkeypatch.setattr(checkpoint, "_running", None)
    assert autocheckpoint() == 1000  # SQLite's own: a commit checkpoints by itself
    monkeypatch.setattr(checkpoint, "_running", object())
    assert autocheckpoint() == checkpoint.BACKSTOP_PAGES
