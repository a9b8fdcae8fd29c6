"""The customer's past: their earlier conversations, as the card and the conversation show.

A customer is their memory namespace (``customer``, the ``agent_id`` bots store under):
the one identity bots, the memory server and every hop share. ``customer_name`` is only
how they are addressed (two customers may share a name; one may change it), so it never
joins conversations. Only what the viewer may read is listed (``access.agents``), so a
returning customer is recognised from the viewer's teams' past and their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.urls import reverse

from ..access import agents as rights
from ..models import Agent, Handoff

MAX_LISTED = 10


@dataclass
class PastConversation:
    conversation_id: int
    started_at: datetime
    last_contact: datetime
    hops: list[Handoff]  # the ones the viewer may read, first to last
    outcome: str  # how the last of those ended (or "open")
    url: str


@dataclass
class CustomerPast:
    customer: str
    conversations: list[PastConversation] = field(default_factory=list)
    count: int = 0  # every other conversation the viewer may read (the list is capped)
    earlier: int = 0  # of those, begun before this one (a transcript can have later ones)

    @property
    def later(self) -> int:
        return self.count - self.earlier

    @property
    def last_contact(self) -> datetime | None:
        return max((c.last_contact for c in self.conversations), default=None)

    @property
    def hop_count(self) -> int:
        return sum(len(c.hops) for c in self.conversations)


def _open_url(agent: Agent, hop: Handoff) -> str:
    if hop.status in rights.CLOSED:
        return reverse("transcript", args=[hop.pk])
    if hop.status == "waiting":
        return reverse("handoff", args=[hop.pk])
    return reverse("conversation", args=[hop.pk])


def customer_past(*, agent: Agent, handoff: Handoff) -> CustomerPast:
    """The earlier conversations of ``handoff``'s customer that ``agent`` may read,
    newest first: their hops, outcome, last contact and where each opens."""
    past = CustomerPast(customer=handoff.customer)
    hops = list(
        Handoff.objects.filter(rights.findable_filter(agent), customer=handoff.customer)
        .exclude(conversation_id=None)
        .exclude(conversation_id=handoff.conversation_id)
        .select_related("team", "accepted_by__user")
        .order_by("conversation_id", "hop_index", "created_at", "pk")
    )
    by_conversation: dict[int, list[Handoff]] = {}
    for hop in hops:
        by_conversation.setdefault(hop.conversation_id, []).append(hop)
    for conversation_id, its_hops in by_conversation.items():
        last = its_hops[-1]
        # From the hops alone: a message written after a hop the viewer reads only up
        # to its handover must not show through its time either.
        times = [h.closed_at or h.accepted_at or h.created_at for h in its_hops]
        # Whoever may read an open hop through the queue or as its owner opens it live.
        outcome = last.get_status_display() if last.status in rights.CLOSED else "Open"
        past.conversations.append(
            PastConversation(
                conversation_id=conversation_id,
                started_at=its_hops[0].created_at,
                last_contact=max(times),
                hops=its_hops,
                outcome=outcome,
                url=_open_url(agent, last),
            )
        )
    past.conversations.sort(key=lambda c: c.last_contact, reverse=True)
    past.count = len(past.conversations)
    # Conversation ids grow with time: the ones below this conversation's came before it.
    mine = handoff.conversation_id or float("inf")
    past.earlier = sum(1 for c in past.conversations if c.conversation_id < mine)
    past.conversations = past.conversations[:MAX_LISTED]
    return past
