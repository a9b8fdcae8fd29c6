"""The worker loop (``manage.py run_worker``): outbox passes, then the periodic tasks.

While the database is away the loop backs off (1 s, 2 s, 4 s ... up to
``DB_BACKOFF_MAX`` seconds) and says so once, with one more line when it is back,
instead of a traceback every pass.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

import httpx
from django.db import DatabaseError, InterfaceError, OperationalError

from . import outbox

logger = logging.getLogger(__name__)

DB_BACKOFF_MAX = 30.0
_DATABASE_DOWN = (OperationalError, InterfaceError)


def _database_down(exc: BaseException) -> bool:
    """Whether ``exc`` means the database can't be reached (not a bug in a task)."""
    if isinstance(exc, _DATABASE_DOWN):
        return True
    return isinstance(exc, DatabaseError) and "connection" in str(exc).lower()


def run_worker(
    *,
    poll: float = 1.0,
    stop: threading.Event | None = None,
    once: bool = False,
    periodic: Sequence[Callable[[], object]] = (),
) -> None:
    """Deliver webhooks and memory writes until ``stop`` is set (or once).

    ``periodic`` runs after every pass (``manage.py run_worker`` passes the lifecycle's
    timers and the presence sweep); a failure in one is logged and never stops the loop.
    """
    from django.db import close_old_connections, connections

    stop = stop or threading.Event()
    down_since: float | None = None
    delay = poll
    with httpx.Client(timeout=outbox.WEBHOOK_TIMEOUT) as client:
        while not stop.is_set():
            close_old_connections()
            try:
                busy = outbox.apply_memory_writes() + outbox.deliver_webhooks(client=client)
                for task in periodic:
                    try:
                        task()
                    except Exception as exc:
                        if _database_down(exc):
                            raise
                        logger.exception("periodic task %s failed", getattr(task, "__name__", task))
            except Exception as exc:
                if not _database_down(exc):
                    logger.exception("outbox worker pass failed")
                    busy = 0
                else:
                    for conn in connections.all(initialized_only=True):
                        conn.close_if_unusable_or_obsolete()
                    if down_since is None:
                        down_since = time.monotonic()
                        delay = poll
                        logger.warning(
                            "database unavailable (%s: %s); the worker retries with back-off "
                            "up to %.0f s (logged once until it is back)",
                            exc.__class__.__name__,
                            str(exc).strip().splitlines()[0] if str(exc).strip() else "",
                            DB_BACKOFF_MAX,
                        )
                    else:
                        delay = min(delay * 2, DB_BACKOFF_MAX)
                    if once:
                        return
                    stop.wait(delay)
                    continue
            if down_since is not None:
                logger.warning(
                    "database back after %.1f s; the worker resumes",
                    time.monotonic() - down_since,
                )
                down_since = None
            if once:
                return
            if not busy:
                stop.wait(poll)
