"""Agents' own settings: presence (online / away / offline, the one write that changes
it), the alerts preference, and a superuser's profile made on first visit."""

from __future__ import annotations

import contextlib
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..compiled import Compiled
from ..models import Agent, Event, Presence, Role, Team
from ..realtime import broadcast
from .errors import HandoffError

AWAY_KEY = "presence:away:{}"  # set while an away agent has no socket open
# Set for a while when the system (not the agent) set them offline: only those may be
# brought back online by the sweep (an agent who chose "offline" stays offline).
SYSTEM_OFFLINE_KEY = "presence:system-offline:{}"


def agent_set_presence(*, agent: Agent, presence: str, actor: str | None = None) -> bool:
    """Set online / away / offline; returns True if it changed (and broadcasts then).

    Online starts a shift again (clears ``shift_ended_at``, set by End shift). Offer
    routing follows presence through ``offers.set_presence``, which wraps this."""
    if presence not in Presence.values:
        raise HandoffError(f"presence must be one of {', '.join(Presence.values)}")
    if presence == Presence.ONLINE:
        from django.core.cache import cache

        cache.delete(AWAY_KEY.format(agent.pk))
    from django.core.cache import cache

    if presence == Presence.OFFLINE and actor == "system":
        with contextlib.suppress(Exception):  # the cache (Redis) may be down: only a hint
            cache.set(SYSTEM_OFFLINE_KEY.format(agent.pk), 1, 120)
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


def agents_set_presence(*, agents: list[Agent], presence: str, actor: str | None = None) -> list:
    """``agent_set_presence`` for several agents in one transaction (a storm of sockets
    opening): one locking read, one ``UPDATE``, one ``INSERT`` of their events, one floor
    ring. Returns the agents whose presence changed. Each agent once in ``agents``."""
    if presence not in Presence.values:
        raise HandoffError(f"presence must be one of {', '.join(Presence.values)}")
    if not agents:
        return []
    from django.core.cache import cache

    if presence == Presence.ONLINE:
        cache.delete_many([AWAY_KEY.format(a.pk) for a in agents])
    if presence == Presence.OFFLINE and actor == "system":
        with contextlib.suppress(Exception):  # the cache (Redis) may be down: only a hint
            cache.set_many({SYSTEM_OFFLINE_KEY.format(a.pk): 1 for a in agents}, 120)
    by_pk = {a.pk: a for a in agents}
    with transaction.atomic():
        ended = [a for a in agents if a.shift_ended_at is not None]
        if presence == Presence.ONLINE and ended:
            Agent.objects.filter(pk__in=[a.pk for a in ended]).update(shift_ended_at=None)
            for agent in ended:
                agent.shift_ended_at = None
        # Rows locked in one order (no deadlock with another batch), then the ones that
        # change: the conditional UPDATE of the single write, for many rows.
        changing = _lock_changing(list(by_pk), presence=presence)
        if not changing:
            return []
        Agent.objects.filter(pk__in=changing).update(
            presence=presence, presence_changed_at=timezone.now()
        )
        changed = [by_pk[pk] for pk in changing]
        for agent in changed:
            agent.presence = presence
        Event.objects.bulk_create(
            Event(
                kind="agent.presence",
                actor=actor or agent.memory_name,
                data={"agent": agent.user.get_username(), "presence": presence},
            )
            for agent in changed
        )
        # One ring for the batch: the floor re-reads every agent's presence.
        broadcast.presence_changed_on_commit(agent_id=changed[0].pk)
    return changed


# Compiled once (``handoffs.compiled``): every batch of connects runs it with its agents.
_lock_changing = Compiled(
    lambda agent_ids, presence: (
        Agent.objects.select_for_update()
        .filter(pk__in=agent_ids)
        .exclude(presence=presence)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
)


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


_last_sweep = float("-inf")
_swept_once = False


def sweep_presence(*, force: bool = False) -> dict[str, int]:
    """Make presence follow the sockets that are really open (``realtime.registry``).

    Removes dead processes' sockets (from presence and from their groups), then: an
    agent shown online or away with no socket in any live process goes offline (a killed
    Daphne's agents, within ``PRESENCE_TTL_SECS`` + ``PRESENCE_HEARTBEAT_SECS``); one shown
    offline with a socket open comes back online (or away), which settles a connect that
    raced its previous socket's close. Runs at most once per heartbeat interval unless
    ``force``; the worker runs it after each pass in scale-out, the serving process in
    embedded mode, where a socket's close always runs its handler while the process lives:
    there only the first sweep (after a restart) takes agents offline.
    """
    import time

    from django.conf import settings
    from django.core.cache import cache

    from ..realtime import registry

    global _last_sweep, _swept_once
    now = time.monotonic()
    if not force and now - _last_sweep < settings.PRESENCE_HEARTBEAT_SECS:
        return {}
    _last_sweep = now
    may_take_offline = registry.scale_out() or not _swept_once
    _swept_once = True
    reaped = registry.reap()
    agents = list(Agent.objects.select_related("user"))
    counts = registry.live_counts([agent.pk for agent in agents])
    went_offline = came_back = 0
    for agent in agents:
        open_sockets = counts.get(agent.pk, 0)
        if agent.presence != Presence.OFFLINE and open_sockets <= 0 and may_take_offline:
            if agent.presence == Presence.AWAY:
                cache.set(AWAY_KEY.format(agent.pk), 1, 300)
            went_offline += agent_set_presence(
                agent=agent, presence=Presence.OFFLINE, actor="system"
            )
        elif (
            agent.presence == Presence.OFFLINE
            and open_sockets > 0
            and cache.get(SYSTEM_OFFLINE_KEY.format(agent.pk))
        ):
            was_away = cache.get(AWAY_KEY.format(agent.pk))
            came_back += agent_set_presence(
                agent=agent, presence=Presence.AWAY if was_away else Presence.ONLINE
            )
    return {**reaped, "offline": went_offline, "online": came_back}
