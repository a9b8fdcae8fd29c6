"""The agent's inbox: every conversation they hold, its unread count and who waits.

Reads only (read marks are written by ``lifecycle.reading``). A conversation's unread
count is the customer messages of the hop the agent owns with a ``seq`` above the
agent's ``ReadMark``; the customer is *waiting* from their first message after the
agent's last reply on this hop (from when they asked for a human, while the agent has
not replied yet). Longest-waiting first, then the answered ones, latest activity first.
Sentiment is shown as at the handoff and, once the customer has written, as it is now.

The frames pushed to the agent's sockets are rendered here (``render_frames``, given
to ``realtime.broadcast`` at start-up): the nav badge, on every console page, carrying
the alert for the customer message that rang it; and the inbox rows, for the inbox page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Max
from django.template.loader import render_to_string

from ..models import Agent, Handoff, Message, ReadMark, Sender, Status
from .selectors import sentiment_trend


@dataclass
class InboxRow:
    handoff: Handoff
    last_message: Message | None
    unread: int
    waiting_since: datetime | None
    sentiment_now: str | None = None  # from the customer's last messages, if any

    @property
    def activity(self) -> datetime:
        return self.last_message.created_at if self.last_message else self.handoff.created_at


def open_hops(agent: Agent) -> list[Handoff]:
    return list(
        Handoff.objects.filter(
            accepted_by=agent, status=Status.ACCEPTED, conversation__isnull=False
        ).select_related("team", "conversation")
    )


def inbox_for_agent(*, agent: Agent) -> list[InboxRow]:
    """The agent's open conversations, the longest-waiting customer first."""
    hops = open_hops(agent)
    marks = dict(
        ReadMark.objects.filter(
            agent=agent, conversation_id__in=[h.conversation_id for h in hops]
        ).values_list("conversation_id", "last_read_seq")
    )
    rows = []
    for hop in hops:
        messages = Message.objects.filter(conversation_id=hop.conversation_id)
        last = messages.exclude(sender=Sender.SYSTEM).order_by("-seq").first()
        customer = messages.filter(handoff=hop, sender=Sender.CUSTOMER)
        replied = messages.filter(handoff=hop, sender=Sender.AGENT).aggregate(s=Max("seq"))["s"]
        if replied is None:
            waiting = hop.waiting_since or hop.created_at
        else:
            first = customer.filter(seq__gt=replied).order_by("seq").first()
            waiting = first.created_at if first else None
        unread = customer.filter(seq__gt=marks.get(hop.conversation_id, 0)).count()
        now = sentiment_trend(hop.conversation, hop)["now"]
        rows.append(InboxRow(hop, last, unread, waiting, now))
    waiting_rows = sorted(
        (r for r in rows if r.waiting_since), key=lambda r: (r.waiting_since, r.handoff.pk)
    )
    answered = sorted(
        (r for r in rows if not r.waiting_since), key=lambda r: r.activity, reverse=True
    )
    return waiting_rows + answered


def badge_context(rows: list[InboxRow], alert: Message | None = None) -> dict:
    unread = sum(1 for r in rows if r.unread)
    context = {
        "unread_conversations": unread,
        "inbox_order": " ".join(str(r.handoff.pk) for r in rows),
        "alert": None,
    }
    if alert is not None:
        row = next((r for r in rows if r.handoff.conversation_id == alert.conversation_id), None)
        if row is not None and row.unread:
            context["alert"] = {"message": alert, "handoff": row.handoff}
    return context


def render_badge(agent: Agent, *, rows: list[InboxRow] | None = None) -> str:
    rows = inbox_for_agent(agent=agent) if rows is None else rows
    return render_to_string("handoffs/desk/_inbox_badge.html", {**badge_context(rows), "oob": True})


def render_rows(agent: Agent, *, rows: list[InboxRow] | None = None) -> str:
    rows = inbox_for_agent(agent=agent) if rows is None else rows
    return render_to_string(
        "handoffs/desk/my_conversations.html#inbox-rows",
        {"rows": rows, "agent": agent, "oob": True},
    )


def render_frames(user_ids: list[int], message: Message | None) -> list[tuple[int, str, str]]:
    """(user id, badge html, rows html) for each agent among ``user_ids``; the badge
    carries the alert for ``message`` (a customer message) if it is unread for them."""
    frames = []
    for agent in Agent.objects.select_related("user").filter(user_id__in=set(user_ids)):
        rows = inbox_for_agent(agent=agent)
        alert = message if message is not None and message.sender == Sender.CUSTOMER else None
        badge = render_to_string(
            "handoffs/desk/_inbox_badge.html", {**badge_context(rows, alert), "oob": True}
        )
        frames.append((agent.user_id, badge, render_rows(agent, rows=rows)))
    return frames
