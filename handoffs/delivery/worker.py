"""The worker loop (``manage.py run_worker``): outbox passes, then the periodic tasks."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import httpx

from . import outbox

logger = logging.getLogger(__name__)


def run_worker(
    *,
    poll: float = 1.0,
    stop: threading.Event | None = None,
    once: bool = False,
    periodic: Sequence[Callable[[], object]] = (),
) -> None:
    """Deliver webhooks and memory writes until ``stop`` is set (or once).

    ``periodic`` runs after every pass (``manage.py run_worker`` passes the lifecycle's
    timers); a failure in one is logged and never stops the loop.
    """
    from django.db import close_old_connections

    stop = stop or threading.Event()
    with httpx.Client(timeout=outbox.WEBHOOK_TIMEOUT) as client:
        while not stop.is_set():
            close_old_connections()
            try:
                busy = outbox.apply_memory_writes() + outbox.deliver_webhooks(client=client)
            except Exception:
                logger.exception("outbox worker pass failed")
                busy = 0
            for task in periodic:
                try:
                    task()
                except Exception:
                    logger.exception("periodic task %s failed", getattr(task, "__name__", task))
            if once:
                return
            if not busy:
                stop.wait(poll)
