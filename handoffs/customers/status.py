"""Where the customer stands: who has the conversation, their place in the queue, the
estimated wait, and whether the team is open. Reads only; rendered on the chat page and
pushed over the customer's socket whenever a hop of the team changes.

The estimate comes from the team's recent accepts (the last ``SAMPLE`` accepted hops of
the last ``WINDOW``): the first in line waits about the median time to accept, and each
handoff ahead adds the median gap between two accepts (how often the team takes the
next one). With fewer than ``MIN_SAMPLES`` accepts that is too little data for an
estimate; the customer is told "usually within N minutes" instead, N being the median
of what there is, else the team's SLA warning threshold (its own target).
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.template.loader import render_to_string
from django.utils import timezone

from ..lifecycle import hours
from ..lifecycle.messages import current_hop
from ..models import Conversation, Handoff, Status, Team

SAMPLE = 20
WINDOW = timedelta(days=7)
MIN_SAMPLES = 5
QUEUE_ORDER = ("-urgency_rank", "-importance", "created_at", "pk")  # the agents' queue order
TOPIC_CHARS = 160


@dataclass
class WaitEstimate:
    seconds: float | None  # None: too little data
    usually_within_min: int
    samples: int

    @property
    def minutes(self) -> int | None:
        return None if self.seconds is None else max(1, math.ceil(self.seconds / 60))


@dataclass
class CustomerStatus:
    """What the status panel says; ``state`` is waiting, agent, bot or closed."""

    state: str
    position: int | None = None
    estimate: WaitEstimate | None = None
    topic: str = ""
    agent_name: str = ""
    team_name: str = ""
    team_open: bool = True
    back_at: datetime | None = None
    time_zone: str = "UTC"  # the team's: "back at" is said in it
    away_message: str = ""


def estimate_wait(team: Team, position: int, now: datetime | None = None) -> WaitEstimate:
    """The expected wait of the ``position``-th waiting handoff of ``team``."""
    now = now or timezone.now()
    recent = list(
        Handoff.objects.filter(team=team, accepted_at__isnull=False, accepted_at__gte=now - WINDOW)
        .order_by("-accepted_at")
        .values_list("created_at", "accepted_at")[:SAMPLE]
    )
    waits = sorted(max(0.0, (accepted - created).total_seconds()) for created, accepted in recent)
    if waits:
        usually = max(1, math.ceil(statistics.median(waits) / 60))
    else:
        usually = max(1, math.ceil(team.warn_after_secs / 60))
    if len(waits) < MIN_SAMPLES:
        return WaitEstimate(seconds=None, usually_within_min=usually, samples=len(waits))
    accepted_at = sorted(accepted for _, accepted in recent)
    gaps = [(b - a).total_seconds() for a, b in zip(accepted_at, accepted_at[1:], strict=False)]
    gap = statistics.median(gaps) if gaps else 0.0
    seconds = statistics.median(waits) + max(0, position - 1) * gap
    return WaitEstimate(seconds=seconds, usually_within_min=usually, samples=len(waits))


def topic_of(hop: Handoff) -> str:
    """What the bot said the issue is: its ``reason``, else the summary's first sentence."""
    text = hop.reason.strip()
    if not text:
        summary = re.sub(r"^(HANDOFF SUMMARY|HANDBACK)[^:]*:\s*", "", hop.summary.strip())
        text = re.split(r"(?<=[.!?])\s", summary, maxsplit=1)[0]
    return text if len(text) <= TOPIC_CHARS else text[: TOPIC_CHARS - 1].rstrip() + "…"


def _waiting_ids(team_id: int) -> list[int]:
    return list(
        Handoff.objects.filter(team_id=team_id, status=Status.WAITING)
        .order_by(*QUEUE_ORDER)
        .values_list("pk", flat=True)
    )


def status_for_hop(hop: Handoff | None, *, queue: list[int] | None = None) -> CustomerStatus:
    """The panel for a conversation whose current hop is ``hop``."""
    if hop is None or hop.status == Status.BOT_HOP or hop.team_id is None:
        return CustomerStatus(state="bot")
    team = hop.team
    if hop.status == Status.ACCEPTED and hop.accepted_by is not None:
        user = hop.accepted_by.user
        return CustomerStatus(
            state="agent",
            agent_name=user.first_name or user.get_username(),
            team_name=team.name,
        )
    if hop.status != Status.WAITING:
        return CustomerStatus(state="closed")
    queue = _waiting_ids(team.pk) if queue is None else queue
    position = queue.index(hop.pk) + 1 if hop.pk in queue else len(queue) + 1
    schedule = hours.schedule_for(team)
    now = timezone.now()
    team_open = hours.is_open(schedule, now)
    return CustomerStatus(
        state="waiting",
        position=position,
        estimate=estimate_wait(team, position, now) if team_open else None,
        topic=topic_of(hop),
        team_name=team.name,
        team_open=team_open,
        back_at=None if team_open else hours.next_open(schedule, now),
        time_zone=str(schedule.tz),
        away_message=team.away_message,
    )


def customer_status(conversation: Conversation) -> CustomerStatus:
    if conversation.closed_at is not None:
        return CustomerStatus(state="closed")
    hop = current_hop(conversation)
    if hop is not None:
        hop = Handoff.objects.select_related("team", "accepted_by__user").filter(pk=hop.pk).first()
    return status_for_hop(hop)


def render_status(status: CustomerStatus, *, oob: bool) -> str:
    return render_to_string("handoffs/customers/chat.html#status", {"status": status, "oob": oob})


def changed_panels(
    handoff_id: int, watched: Callable[[list[int]], set[int]]
) -> list[tuple[int, str]]:
    """After ``handoff_id`` changed: the panels of its conversation and of every waiting
    conversation of its team (their positions moved), for the watched ones only.

    Registered with ``realtime.broadcast`` in ``HandoffsConfig.ready``.
    """
    hop = (
        Handoff.objects.select_related("team", "accepted_by__user", "conversation")
        .filter(pk=handoff_id)
        .first()
    )
    if hop is None:
        return []
    panels: list[tuple[int, str]] = []
    if hop.conversation_id is not None and watched([hop.conversation_id]):
        conversation = hop.conversation
        panels.append((conversation.pk, render_status(customer_status(conversation), oob=True)))
    if hop.team_id is None:
        return panels
    queue = _waiting_ids(hop.team_id)
    waiting = dict(
        Handoff.objects.filter(pk__in=queue)
        .exclude(conversation=None)
        .values_list("pk", "conversation_id")
    )
    seen = {pk for pk, _ in panels}
    targets = watched([c for c in waiting.values() if c not in seen])
    if not targets:
        return panels
    hops = Handoff.objects.select_related("team").filter(
        pk__in=[pk for pk, c in waiting.items() if c in targets]
    )
    for other in hops:
        # A conversation whose current hop is not this waiting one is shown elsewhere.
        panels.append(
            (other.conversation_id, render_status(status_for_hop(other, queue=queue), oob=True))
        )
    return panels
