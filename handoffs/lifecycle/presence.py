"""Agents' presence (online / away / offline): the one write that changes it."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from ..models import Agent, Event, Presence
from ..realtime import broadcast
from .errors import HandoffError

AWAY_KEY = "presence:away:{}"  # set while an away agent has no socket open


def agent_set_presence(*, agent: Agent, presence: str, actor: str | None = None) -> bool:
    """Set online / away / offline; returns True if it changed (and broadcasts then)."""
    if presence not in Presence.values:
        raise HandoffError(f"presence must be one of {', '.join(Presence.values)}")
    if presence == Presence.ONLINE:
        from django.core.cache import cache

        cache.delete(AWAY_KEY.format(agent.pk))
    with transaction.atomic():
        changed = (
            Agent.objects.filter(pk=agent.pk)
            .exclude(presence=presence)
            .update(presence=presence, presence_changed_at=timezone.now())
        )
        if changed:
            agent.presence = presence
            Event.objects.create(
                kind="agent.presence",
                actor=actor or agent.memory_name,
                data={"agent": agent.user.get_username(), "presence": presence},
            )
            broadcast.presence_changed_on_commit(agent_id=agent.pk)
    return bool(changed)
