"""Periodic work inside the serving process (``SERVING_TIMERS``).

In embedded mode the channel layer lives in the Daphne process's memory, so an SLA or
unanswered-conversation alert raised by a separate ``run_worker`` process never reaches
a page (issue 19). With ``SERVING_TIMERS`` on (the default without ``REDIS_URL``) the
serving process runs the timers and the presence sweep itself, every ``interval``
seconds, and ``run_worker`` leaves the timers alone. The loop is a task on the server's
event loop (started by the first connection, ``ServingTimers``), and each task runs in
a worker thread through ``sync_to_async``, so its broadcasts are handed to the event
loop the in-memory layer belongs to. A failing task is logged once until it succeeds
again and never stops the others.

The tasks are passed in by ``console.asgi`` (this package sits below the lifecycle).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from asgiref.sync import sync_to_async

logger = logging.getLogger(__name__)


async def run_forever(tasks: Sequence[Callable[[], object]], interval: float) -> None:
    failing: set[str] = set()
    while True:
        await asyncio.sleep(interval)
        for task in tasks:
            name = getattr(task, "__name__", repr(task))
            try:
                await sync_to_async(_run_one, thread_sensitive=False)(task)
            except Exception:
                if name not in failing:
                    logger.exception("background task %s failed (logged once until it works)", name)
                failing.add(name)
            else:
                if name in failing:
                    logger.warning("background task %s works again", name)
                failing.discard(name)


def _run_one(task: Callable[[], object]) -> None:
    from django.db import close_old_connections

    close_old_connections()
    try:
        task()
    finally:
        close_old_connections()


class ServingTimers:
    """ASGI middleware: starts ``run_forever`` on the server's loop at the first call."""

    def __init__(self, app: Any, tasks: Sequence[Callable[[], object]], interval: float = 1.0):
        self.app = app
        self.tasks = list(tasks)
        self.interval = interval
        self.task: asyncio.Task | None = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(
                run_forever(self.tasks, self.interval), name="serving-timers"
            )
        return await self.app(scope, receive, send)
