"""What an agent has read, and the zone they read times in.

Read state is one row per agent and conversation (``ReadMark.last_read_seq``, the
highest message ``seq`` the agent has seen): marking read only ever moves it forward,
in one conditional UPDATE (or the INSERT of the first mark), so two devices marking at
once, or a stale tab, never make a read message unread again. After commit the agent's
inbox is pushed to every socket of theirs: reading on one device clears the badge on
the others.
"""

from __future__ import annotations

import zoneinfo
from functools import cache

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import Agent, Conversation, ReadMark
from ..realtime import broadcast
from .errors import HandoffError


@cache
def known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def conversation_mark_read(*, agent: Agent, conversation_id: int, seq: int | None = None) -> bool:
    """Mark ``conversation_id`` read by ``agent`` up to ``seq`` (its last message if
    None; never past it). Returns True if the mark moved (the inbox is pushed then)."""
    if seq is not None and (not isinstance(seq, int) or seq < 0):
        raise HandoffError("seq must be a non-negative whole number")
    last = Conversation.objects.filter(pk=conversation_id).values_list("last_seq", flat=True)
    last_seq = last.first()
    if last_seq is None:
        return False
    upto = last_seq if seq is None else min(seq, last_seq)
    now = timezone.now()
    with transaction.atomic():
        moved = ReadMark.objects.filter(
            agent=agent, conversation_id=conversation_id, last_read_seq__lt=upto
        ).update(last_read_seq=upto, updated_at=now)
        if not moved and upto > 0:
            try:
                with transaction.atomic():
                    ReadMark.objects.create(
                        agent=agent, conversation_id=conversation_id, last_read_seq=upto
                    )
                moved = 1
            except IntegrityError:
                moved = 0  # a mark exists and is already at or past ``upto``
        if moved:
            broadcast.inbox_changed_on_commit(user_ids=[agent.user_id])
    return bool(moved)


def agent_set_time_zone(*, agent: Agent, zone: str) -> None:
    """Store the zone the agent's console shows times in (an IANA name)."""
    zone = (zone or "").strip()
    if zone not in known_zones():
        raise HandoffError(f"Unknown time zone: {zone[:64]!r}. Choose one from the list.")
    Agent.objects.filter(pk=agent.pk).update(time_zone=zone)
    agent.time_zone = zone
