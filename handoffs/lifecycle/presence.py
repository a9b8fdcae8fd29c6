"""Agents' own settings: presence (online / away / offline, the one write that changes
it), the alerts preference, and a superuser's profile made on first visit."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from ..models import Agent, Event, Presence, Role, Team
from ..realtime import broadcast
from .errors import HandoffError

AWAY_KEY = "presence:away:{}"  # set while an away agent has no socket open


def agent_set_presence(*, agent: Agent, presence: str, actor: str | None = None) -> bool:
    """Set online / away / offline; returns True if it changed (and broadcasts then).

    Online starts a shift again (clears ``shift_ended_at``, set by End shift). Offer
    routing follows presence through ``offers.set_presence``, which wraps this."""
    if presence not in Presence.values:
        raise HandoffError(f"presence must be one of {', '.join(Presence.values)}")
    if presence == Presence.ONLINE:
        from django.core.cache import cache

        cache.delete(AWAY_KEY.format(agent.pk))
    with transaction.atomic():
        if presence == Presence.ONLINE and agent.shift_ended_at is not None:
            Agent.objects.filter(pk=agent.pk).update(shift_ended_at=None)
            agent.shift_ended_at = None
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


def agent_set_alerts(*, agent: Agent, enabled: bool) -> None:
    """Store the agent's alerts preference (sound and desktop alerts on every page)."""
    Agent.objects.filter(pk=agent.pk).update(alerts_enabled=enabled)
    agent.alerts_enabled = enabled


def agent_profile_for_superuser(*, user: Any) -> Agent | None:
    """A superuser's console profile, made on their first visit: the admin role in
    every team. None for anyone else (admins add agents in admin)."""
    if not user.is_superuser:
        return None
    with transaction.atomic():
        agent, created = Agent.objects.select_related("user").get_or_create(
            user=user, defaults={"role": Role.ADMIN}
        )
        if created:
            agent.teams.set(Team.objects.all())
            Event.objects.create(
                kind="agent.created",
                actor="system",
                data={"agent": user.get_username(), "role": Role.ADMIN, "via": "first visit"},
            )
    return agent
