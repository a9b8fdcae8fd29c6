"""Presence from open sockets: an agent is online while a console socket of theirs is
open in a live process (``realtime.registry``), offline once the last one closes or its
process dies (the sweep, ``lifecycle.presence.sweep_presence``).

Disconnect bookkeeping cannot be lost. A closing socket hands its channel, agent and
groups to this process's drain (``socket_closing``) without awaiting anything first, so
a consumer that Daphne cancels (``--application-close-timeout``, a mass disconnect
queued behind one database thread) still gets its bookkeeping done. The drain works in
batches: every socket leaves its groups (``leave_groups`` waits for a pooled Redis
connection and retries once; a channel it still cannot discard goes to the registry as
an orphan, which the sweep discards later), then one trip to the database thread
unregisters the whole batch and takes offline the agents left with no socket.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from django.core.cache import cache

from ..lifecycle.offers import set_presence, set_presence_many
from ..lifecycle.presence import AWAY_KEY
from ..models import Agent, Presence
from ..realtime import registry

logger = logging.getLogger(__name__)

AWAY_MEMORY_SECS = 300


@database_sync_to_async
def socket_opened(agent: Agent, channel: str = "", groups: list[str] = ()) -> None:
    socket_opened_sync(agent, channel, groups)


def socket_opened_sync(agent: Agent, channel: str = "", groups: list[str] = ()) -> None:
    sockets_opened([(agent, channel or f"local!{id(agent)}", list(groups))])


def sockets_opened(opened: list[tuple[Agent, str, list[str]]]) -> None:
    """Sockets ``(agent, channel, groups)`` opened (a batch of connects): registered in
    one Redis round trip; the agents they bring back, online (or away) in one write."""
    if not opened:
        return
    registry.opened_many([(channel, agent.pk, groups) for agent, channel, groups in opened])
    # As just read with the socket's agent. An agent whose shift ended (End shift, or an
    # automatic handover) stays offline until they start a shift again.
    coming: dict[int, list[Agent]] = {}
    for agent, _channel, _groups in opened:
        if agent.presence == Presence.OFFLINE and agent.shift_ended_at is None:
            coming.setdefault(agent.pk, []).append(agent)
    if not coming:
        return
    # Moving between pages closes one socket before the next opens: an agent who had set
    # "away" comes back away, not online.
    away = cache.get_many([AWAY_KEY.format(pk) for pk in coming])
    for presence in (Presence.ONLINE, Presence.AWAY):
        agents = [
            copies[0]
            for pk, copies in coming.items()
            if (AWAY_KEY.format(pk) in away) == (presence == Presence.AWAY)
        ]
        changed = set_presence_many(agents=agents, presence=presence) if agents else []
        for agent in changed:  # the same agent's other sockets of the batch
            for copy in coming[agent.pk]:
                copy.presence = presence


@database_sync_to_async
def socket_closed(agent: Agent, channel: str = "", orphan_groups: list[str] = ()) -> None:
    remaining = registry.closed(
        channel or f"local!{id(agent)}", agent.pk, orphan_groups=list(orphan_groups)
    )
    if remaining <= 0:
        agent.refresh_from_db(fields=["presence"])
        if agent.presence == Presence.AWAY:
            cache.set(AWAY_KEY.format(agent.pk), 1, AWAY_MEMORY_SECS)
        set_presence(agent=agent, presence=Presence.OFFLINE, actor="system")


async def leave_groups(layer: Any, channel: str, groups: list[str]) -> list[str]:
    """Discard ``channel`` from ``groups``; returns the groups it could not leave."""
    if hasattr(layer, "group_discard_many"):  # one round trip (Redis)
        for attempt in (1, 2):
            try:
                await layer.group_discard_many(groups, channel)
                return []
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - left to the sweep, never lost
                if attempt == 2:
                    logger.debug("group_discard of %s failed: %s", channel, exc)
        return list(groups)
    failed: list[str] = []
    for group in groups:
        for attempt in (1, 2):
            try:
                await layer.group_discard(group, channel)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - left to the sweep, never lost
                if attempt == 2:
                    logger.debug("group_discard %s failed: %s", group, exc)
                    failed.append(group)
    return failed


# ---------------------------------------------------------------- batched disconnects
BATCH = 500
RETRIES = 60  # every RETRY_SECS: a minute of Redis or database outage
RETRY_SECS = 1.0


@dataclass
class _Closing:
    layer: Any
    channel: str
    agent: Agent
    groups: list[str]
    done: asyncio.Future
    orphans: list[str] = field(default_factory=list)
    attempts: int = 0


class _Drain:
    def __init__(self) -> None:
        self.pending: list[_Closing] = []
        self.wake = asyncio.Event()
        self.task: asyncio.Task | None = None


_drains: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def socket_closing(layer: Any, channel: str, agent: Agent, groups: list[str]) -> asyncio.Future:
    """Queue a closed socket's bookkeeping (synchronous: nothing to cancel); the future
    completes once it is done. Call from the event loop."""
    loop = asyncio.get_running_loop()
    drain = _drains.get(loop)
    if drain is None:
        drain = _drains[loop] = _Drain()
    if drain.task is None or drain.task.done():
        drain.task = loop.create_task(_run_drain(drain), name="socket-close-drain")
    item = _Closing(layer, channel, agent, list(groups), loop.create_future())
    drain.pending.append(item)
    drain.wake.set()
    return item.done


async def _run_drain(drain: _Drain) -> None:
    while True:
        await drain.wake.wait()
        drain.wake.clear()
        while drain.pending:
            batch, drain.pending = drain.pending[:BATCH], drain.pending[BATCH:]
            try:
                await _close_batch(batch)
            except Exception as exc:  # noqa: BLE001 - logged; the sweep reconciles
                logger.warning(
                    "socket close bookkeeping failed for %d sockets: %s", len(batch), exc
                )
            for item in batch:
                if not item.done.done():
                    item.done.set_result(None)


async def _close_batch(batch: list[_Closing]) -> None:
    results = await asyncio.gather(
        *(leave_groups(item.layer, item.channel, item.groups) for item in batch)
    )
    for item, failed in zip(batch, results, strict=True):
        item.orphans = failed
    await database_sync_to_async(_unregister)(batch)


def _unregister(batch: list[_Closing]) -> None:
    left = registry.closed_many([(i.channel, i.agent.pk, i.orphans) for i in batch])
    gone = {i.agent.pk: i.agent for i in batch if left.get(i.agent.pk, 0) <= 0}
    if not gone:
        return
    # Their last socket closed: offline, in one write for the batch (an agent who had
    # set "away" is remembered as away for when they come back).
    now = dict(Agent.objects.filter(pk__in=list(gone)).values_list("pk", "presence"))
    for pk, agent in gone.items():
        agent.presence = now.get(pk, agent.presence)
    away = [pk for pk, agent in gone.items() if agent.presence == Presence.AWAY]
    if away:
        cache.set_many({AWAY_KEY.format(pk): 1 for pk in away}, AWAY_MEMORY_SECS)
    set_presence_many(agents=list(gone.values()), presence=Presence.OFFLINE, actor="system")
