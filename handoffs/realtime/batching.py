"""Group commit for socket connects: calls that arrive while a batch is on the consumers'
database thread wait and go together in the next trip.

A connect used to make its own trips to the database thread (session and agent, its
groups, presence and snapshot), each a handful of queries and Redis calls, so a storm of
1,000 reconnects made thousands of trips, one after the other on that one thread. A
``GroupCommit`` sends every call waiting on it as one batch: one trip, and the batch's
work function loads what all of them need with one query per kind (sessions, agents,
teams, assigned rows, badges) and one Redis pipeline. A call waits ``LINGER_SECS`` for
company, then goes; under load, batches also grow by themselves while the previous one
runs, up to ``MAX_BATCH``.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from channels.db import database_sync_to_async

T = TypeVar("T")
R = TypeVar("R")

MAX_BATCH = 200
# How long a batch waits for company before it goes: connects in a storm arrive a few
# milliseconds apart, and each one that joins saves its own trip and queries.
LINGER_SECS = 0.005


class _Queue:
    def __init__(self) -> None:
        self.pending: list[tuple[Any, asyncio.Future]] = []
        self.running = False


class GroupCommit(Generic[T, R]):
    """``await batcher(item)`` -> ``work([item, ...])[i]``, run on the database thread.

    ``work`` returns one result per item, in order; a result that is an exception is
    raised to that item's caller alone. An exception from ``work`` itself fails the
    whole batch. A caller that is cancelled meanwhile is skipped."""

    def __init__(self, work: Callable[[Sequence[T]], Sequence[R | BaseException]]) -> None:
        self.work = work
        self._queues: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    async def __call__(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _Queue()
        future = loop.create_future()
        queue.pending.append((item, future))
        if not queue.running:
            queue.running = True
            loop.create_task(self._drain(queue))
        return await future

    async def _drain(self, queue: _Queue) -> None:
        try:
            await asyncio.sleep(LINGER_SECS)  # the calls arriving meanwhile go together
            while queue.pending:
                batch, queue.pending = queue.pending[:MAX_BATCH], queue.pending[MAX_BATCH:]
                batch = [(item, future) for item, future in batch if not future.done()]
                if not batch:
                    continue
                try:
                    results = await database_sync_to_async(self.work)([i for i, _ in batch])
                except Exception as exc:  # noqa: BLE001 - every caller of the batch sees it
                    for _item, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_item, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            queue.running = False
            if queue.pending:  # arrived as this drain ended
                queue.running = True
                asyncio.get_running_loop().create_task(self._drain(queue))


def each(function: Callable[[T], R], items: Sequence[T]) -> list[R | BaseException]:
    """``work`` helper: ``function`` per item, an item's exception kept as its result."""
    results: list[R | BaseException] = []
    for item in items:
        try:
            results.append(function(item))
        except Exception as exc:  # noqa: BLE001 - raised to that item's caller
            results.append(exc)
    return results
