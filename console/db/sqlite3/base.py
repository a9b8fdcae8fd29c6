"""SQLite for the embedded mode: one writing transaction at a time per process, in order.

Every write transaction starts with ``BEGIN IMMEDIATE`` (``transaction_mode`` in
settings), so SQLite never fails a transaction half-way with "database is locked";
a second writer waits in SQLite's busy handler instead. That handler polls: it sleeps
1, 2, 5, 10 ... up to 100 ms between tries, so under concurrency a short transaction
can wait far longer than the lock was held, and whoever polls at the right moment wins,
not whoever came first. With 16 bots posting at once, the intake's POST p99 was 1.4 s
for transactions holding the lock a few milliseconds (``bench.sustained_intake``).

Under Daphne every request runs on its own thread in one process, so the writers queue
on a process-wide lock instead, taken before ``BEGIN IMMEDIATE`` and released at
``COMMIT`` / ``ROLLBACK`` / close: the next writer starts the moment the lock is free.
Writers in other processes (``manage.py run_worker``) still meet SQLite's busy handler,
as before. A writer that can't get the lock within the busy timeout gets the same
``OperationalError`` SQLite would raise. Statements outside ``transaction.atomic``
(single autocommit writes) are not queued here; SQLite serialises them as before.
"""

from __future__ import annotations

import asyncio
import threading

from django.core.signals import request_finished
from django.db import OperationalError, connections
from django.db.backends.sqlite3 import base

from . import checkpoint

WRITER = threading.Lock()


def close_at_request_end(**kwargs) -> None:
    """Under ASGI each HTTP request runs on a thread of its own that ends with it: close
    that thread's connections now (``CONN_MAX_AGE`` would leave them to the garbage
    collector). ``CONN_MAX_AGE`` then only keeps the connection of Channels' consumers'
    long-lived thread, which sends no ``request_finished``."""
    if getattr(_kept, "keep", False):  # a long-lived thread (console/api_handler.py)
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:  # sent from an event loop's thread (an async test client): no request thread
        return
    for conn in connections.all(initialized_only=True):
        if conn.vendor == "sqlite" and not conn.in_atomic_block:
            conn.close()


_kept = threading.local()


def keep_connection_on_this_thread() -> None:
    """Mark the calling thread as long-lived (the bot API's request threads,
    ``console/api_handler.py``): its connection stays open between requests, as the
    consumers' thread's does, and ``CONN_MAX_AGE`` / Django's usability checks at each
    request's start and end decide when it is reopened."""
    _kept.keep = True


request_finished.connect(close_at_request_end, dispatch_uid="console.db.sqlite3.close")


class DatabaseWrapper(base.DatabaseWrapper):
    holds_writer = False

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        pages = checkpoint.autocheckpoint_pages()
        if pages is not None:  # the serving process checkpoints in the background
            connection.execute(f"PRAGMA wal_autocheckpoint={int(pages)}")
        return connection

    def _start_transaction_under_autocommit(self) -> None:
        timeout = float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))
        if not WRITER.acquire(timeout=timeout):
            raise OperationalError("database is locked (waited for this process's writer)")
        self.holds_writer = True
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_writer()
            raise

    def _release_writer(self) -> None:
        if self.holds_writer:
            self.holds_writer = False
            WRITER.release()

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._release_writer()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._release_writer()

    def _close(self):
        try:
            return super()._close()
        finally:
            self._release_writer()
