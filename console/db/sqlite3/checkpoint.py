"""WAL checkpoints off the request path, in the serving process (``SQLITE_CHECKPOINT_SECS``).

In WAL mode SQLite copies the log back into the database file (a checkpoint, with an
``fsync``) inside whichever ``COMMIT`` pushes the log past ``wal_autocheckpoint`` pages
(1,000 by default). That commit's request pays for it while holding this process's write
lock (``base.WRITER``), so every writer queued behind it waits too: in the 16-bot seed
flow commits spent about twice as long as without the checkpoints.

The serving process (``console.asgi``) instead runs ``PRAGMA wal_checkpoint(PASSIVE)``
every ``SQLITE_CHECKPOINT_SECS`` on a thread with a connection of its own: a passive
checkpoint never waits for readers or writers and copies what it can, and Python's
``sqlite3`` lets go of the GIL meanwhile, so the copy and the ``fsync`` run beside the
requests (on another core where there is one). Connections this process opens afterwards
keep a larger ``wal_autocheckpoint`` (``BACKSTOP_PAGES``) as a backstop: it bounds the log
(and resets it), and the commit that reaches it finds the copying already done. Other
processes (``run_worker``, management commands) keep SQLite's default.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

# A passive checkpoint running beside a steady stream of writers rarely finds the whole
# log copied at the moment a writer starts, which is when SQLite starts the log over; at
# this size (~16 MiB at 4 KiB pages) a commit checkpoints by itself, finds nearly every
# page already copied, and the log starts over. Its size stays bounded by this.
BACKSTOP_PAGES = 4_000


class Checkpointer:
    """The thread that checkpoints the database every ``interval`` seconds.

    ``path_of()`` names the file each time (a test run switches the settings to its own
    database after start-up); a file that doesn't exist yet is left alone, never created.
    """

    def __init__(self, path_of: Callable[[], str], interval: float) -> None:
        self.path_of = path_of
        self.interval = interval
        self.last: tuple[int, int, int] | None = None  # (busy, log frames, checkpointed)
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)

    def start(self) -> Checkpointer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        failing = False
        connection, connected_to = None, None
        while not self._stop.wait(self.interval):
            path = str(self.path_of())
            try:
                if connection is not None and path != connected_to:
                    connection.close()
                    connection = None
                if connection is None:
                    if not os.path.exists(path):
                        continue
                    connection = sqlite3.connect(path, timeout=1, check_same_thread=False)
                    connected_to = path
                self.last = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                self.runs += 1
            except sqlite3.Error:
                if not failing:  # once per failure, not once a second
                    logger.exception("background WAL checkpoint failed (SQLite still checkpoints)")
                failing = True
                if connection is not None:
                    connection.close()
                connection = None
            else:
                if failing:
                    logger.warning("background WAL checkpoints work again")
                failing = False
        if connection is not None:
            connection.close()


_running: Checkpointer | None = None


def autocheckpoint_pages() -> int | None:
    """``wal_autocheckpoint`` for connections this process opens (None: SQLite's own)."""
    return BACKSTOP_PAGES if _running is not None else None


def start(path_of: Callable[[], str], interval: float) -> Checkpointer | None:
    """Start this process's checkpointer (once); ``interval <= 0`` leaves SQLite's own."""
    global _running
    if interval <= 0:
        return None
    if _running is None:
        _running = Checkpointer(path_of, interval).start()
    return _running
