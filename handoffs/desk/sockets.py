"""Presence from open sockets: an agent is online while a console socket of theirs is
open in a live process (``realtime.registry``), offline once the last one closes or its
process dies (the sweep, ``lifecycle.presence.sweep_presence``).

Disconnect bookkeeping cannot be lost: ``leave_groups`` waits for a pooled Redis
connection and retries once; a channel it still could not discard is handed to the
registry as an orphan, which the sweep discards later.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.db import database_sync_to_async
from django.core.cache import cache

from ..lifecycle.presence import AWAY_KEY, agent_set_presence
from ..models import Agent, Presence
from ..realtime import registry

logger = logging.getLogger(__name__)

AWAY_MEMORY_SECS = 300


@database_sync_to_async
def socket_opened(agent: Agent, channel: str = "", groups: list[str] = ()) -> None:
    registry.opened(channel or f"local!{id(agent)}", agent.pk, list(groups))
    if agent.presence == Presence.OFFLINE:  # as just read with the socket's agent
        # Moving between pages closes one socket before the next opens: an agent who
        # had set "away" comes back away, not online.
        was_away = cache.get(AWAY_KEY.format(agent.pk))
        agent_set_presence(agent=agent, presence=Presence.AWAY if was_away else Presence.ONLINE)


@database_sync_to_async
def socket_closed(agent: Agent, channel: str = "", orphan_groups: list[str] = ()) -> None:
    remaining = registry.closed(
        channel or f"local!{id(agent)}", agent.pk, orphan_groups=list(orphan_groups)
    )
    if remaining <= 0:
        agent.refresh_from_db(fields=["presence"])
        if agent.presence == Presence.AWAY:
            cache.set(AWAY_KEY.format(agent.pk), 1, AWAY_MEMORY_SECS)
        agent_set_presence(agent=agent, presence=Presence.OFFLINE, actor="system")


async def leave_groups(layer: Any, channel: str, groups: list[str]) -> list[str]:
    """Discard ``channel`` from ``groups``; returns the groups it could not leave."""
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
