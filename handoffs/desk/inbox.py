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

import functools
from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, Max, OuterRef, Q, Subquery, Window
from django.db.models.functions import Coalesce, RowNumber
from django.template.loader import render_to_string

from ..compiled import Compiled
from ..lifecycle.estimate import sentiment_from_score
from ..models import Agent, Handoff, Message, ReadMark, Sender, Status
from ..realtime import broadcast


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
    """The agent's open conversations, the longest-waiting customer first.

    A fixed number of queries however many conversations the agent holds (this runs
    after every message of theirs, for the badge pushed to their sockets)."""
    hops = open_hops(agent)
    if not hops:
        return []
    hop_ids = [h.pk for h in hops]
    conversation_ids = [h.conversation_id for h in hops]
    marks = dict(
        ReadMark.objects.filter(agent=agent, conversation_id__in=conversation_ids).values_list(
            "conversation_id", "last_read_seq"
        )
    )
    # The agent's last reply on each hop, and each conversation's last message.
    replied = dict(
        Message.objects.filter(handoff_id__in=hop_ids, sender=Sender.AGENT)
        .values("handoff_id")
        .annotate(seq=Max("seq"))
        .values_list("handoff_id", "seq")
    )
    last_seqs = (
        Message.objects.filter(conversation_id__in=conversation_ids)
        .exclude(sender=Sender.SYSTEM)
        .values("conversation_id")
        .annotate(seq=Max("seq"))
        .values_list("conversation_id", "seq")
    )
    last_filter = Q(pk__in=[])
    for conversation_id, seq in last_seqs:
        last_filter |= Q(conversation_id=conversation_id, seq=seq)
    last = {m.conversation_id: m for m in Message.objects.filter(last_filter)}
    # Customer messages that are unread or unanswered (both usually few).
    pending_filter = Q(pk__in=[])
    for hop in hops:
        since = min(marks.get(hop.conversation_id, 0), replied.get(hop.pk, 0))
        pending_filter |= Q(handoff_id=hop.pk, seq__gt=since)
    pending: dict[int, list[tuple[int, datetime]]] = {}
    for handoff_id, seq, created_at in (
        Message.objects.filter(pending_filter, sender=Sender.CUSTOMER)
        .order_by("seq")
        .values_list("handoff_id", "seq", "created_at")
    ):
        pending.setdefault(handoff_id, []).append((seq, created_at))
    # The customer's mood now: the mean of their last three scored messages on the hop.
    scores: dict[int, list[float]] = {}
    for handoff_id, score in (
        Message.objects.filter(
            handoff_id__in=hop_ids, sender=Sender.CUSTOMER, sentiment_score__isnull=False
        )
        .annotate(
            rank=Window(RowNumber(), partition_by=[F("handoff_id")], order_by=F("seq").desc())
        )
        .filter(rank__lte=3)
        .values_list("handoff_id", "sentiment_score")
    ):
        scores.setdefault(handoff_id, []).append(score)

    rows = []
    for hop in hops:
        mine = pending.get(hop.pk, [])
        mark = marks.get(hop.conversation_id, 0)
        if hop.pk not in replied:
            waiting = hop.waiting_since or hop.created_at
        else:
            waiting = next((at for seq, at in mine if seq > replied[hop.pk]), None)
        unread = sum(1 for seq, _ in mine if seq > mark)
        hop_scores = scores.get(hop.pk)
        now = sentiment_from_score(sum(hop_scores) / len(hop_scores)) if hop_scores else None
        rows.append(InboxRow(hop, last.get(hop.conversation_id), unread, waiting, now))
    waiting_rows = sorted(
        (r for r in rows if r.waiting_since), key=lambda r: (r.waiting_since, r.handoff.pk)
    )
    answered = sorted(
        (r for r in rows if not r.waiting_since), key=lambda r: r.activity, reverse=True
    )
    return waiting_rows + answered


@dataclass(frozen=True)
class BadgeEntry:
    """What the nav badge needs of one conversation (``badge_entries``)."""

    handoff_id: int
    conversation_id: int
    customer: str
    unread: bool


def _entry(row: InboxRow) -> BadgeEntry:
    hop = row.handoff
    return BadgeEntry(
        hop.pk, hop.conversation_id, hop.customer_name or hop.customer, bool(row.unread)
    )


def badge_entries(*, agent: Agent | None = None, user_id: int | None = None) -> list[BadgeEntry]:
    """The badge's view of the inbox in one query: which conversations have unread
    customer messages, in inbox order (the same rules as ``inbox_for_agent``, which the
    tests hold it to). Runs after every message of the agent's conversations."""
    rows = (
        _badge_rows_of_agents([agent.pk]) if agent is not None else _badge_rows_of_users([user_id])
    )
    return _badge_order(row[1:] for row in rows)


def badge_entries_many(agents: list[Agent]) -> dict[int, list[BadgeEntry]]:
    """``badge_entries`` for several agents in one query (sockets opening together)."""
    per_agent: dict[int, list[tuple]] = {a.pk: [] for a in agents}
    if agents:
        for row in _badge_rows_of_agents([a.pk for a in agents]):
            per_agent.setdefault(row[0], []).append(row[1:])
    return {pk: _badge_order(rows) for pk, rows in per_agent.items()}


def _badge_rows(owner: Q):
    messages = Message.objects.filter(handoff_id=OuterRef("pk"))
    marks = ReadMark.objects.filter(agent_id=OuterRef("accepted_by_id"))
    return (
        Handoff.objects.filter(owner, status=Status.ACCEPTED, conversation__isnull=False)
        .annotate(
            mark=Coalesce(
                Subquery(
                    marks.filter(conversation_id=OuterRef("conversation_id")).values(
                        "last_read_seq"
                    )[:1]
                ),
                0,
            ),
            replied=Subquery(
                messages.filter(sender=Sender.AGENT).order_by("-seq").values("seq")[:1]
            ),
            last_customer=Subquery(
                messages.filter(sender=Sender.CUSTOMER).order_by("-seq").values("seq")[:1]
            ),
            first_unanswered=Subquery(
                messages.filter(sender=Sender.CUSTOMER, seq__gt=Coalesce(OuterRef("replied"), 0))
                .order_by("seq")
                .values("created_at")[:1]
            ),
            last_at=Subquery(
                Message.objects.filter(conversation_id=OuterRef("conversation_id"))
                .exclude(sender=Sender.SYSTEM)
                .order_by("-seq")
                .values("created_at")[:1]
            ),
        )
        .values_list(
            "accepted_by_id",
            "pk",
            "conversation_id",
            "customer_name",
            "customer",
            "mark",
            "replied",
            "last_customer",
            "first_unanswered",
            "last_at",
            "waiting_since",
            "created_at",
        )
    )


# Compiled once (``handoffs.compiled``): building this query costs ten times running it.
_badge_rows_of_agents = Compiled(lambda agent_ids: _badge_rows(Q(accepted_by__in=agent_ids)))
_badge_rows_of_users = Compiled(lambda user_ids: _badge_rows(Q(accepted_by__user_id__in=user_ids)))


def _badge_order(rows) -> list[BadgeEntry]:
    waiting, answered = [], []
    for (
        pk,
        conversation_id,
        name,
        customer,
        mark,
        replied,
        last_customer,
        first_unanswered,
        last_at,
        waiting_since,
        created_at,
    ) in rows:
        entry = BadgeEntry(
            pk, conversation_id, name or customer, (last_customer or 0) > (mark or 0)
        )
        since = (waiting_since or created_at) if replied is None else first_unanswered
        if since is not None:
            waiting.append(((since, pk), entry))
        else:
            answered.append((last_at or created_at, entry))
    waiting.sort(key=lambda item: item[0])
    answered.sort(key=lambda item: item[0], reverse=True)
    return [e for _, e in waiting] + [e for _, e in answered]


def badge_context(entries: list[BadgeEntry], alert: Message | None = None) -> dict:
    context = {
        "unread_conversations": sum(1 for e in entries if e.unread),
        "inbox_order": " ".join(str(e.handoff_id) for e in entries),
        "alert": None,
    }
    if alert is not None:
        entry = next((e for e in entries if e.conversation_id == alert.conversation_id), None)
        if entry is not None and entry.unread:
            context["alert"] = {
                "message": alert,
                "handoff_id": entry.handoff_id,
                "customer": entry.customer,
            }
    return context


def render_badge(agent: Agent, entries: list[BadgeEntry] | None = None) -> str:
    entries = badge_entries(agent=agent) if entries is None else entries
    context = badge_context(entries)
    return _plain_badge(context["unread_conversations"], context["inbox_order"])


@functools.lru_cache(maxsize=1024)
def _plain_badge(unread: int, order: str) -> str:
    """The badge without an alert depends on these two only: rendered once each (a storm
    of connects sends most agents the same badge)."""
    return render_to_string(
        "handoffs/desk/_inbox_badge.html",
        {"unread_conversations": unread, "inbox_order": order, "alert": None, "oob": True},
    )


def render_rows(agent: Agent, *, rows: list[InboxRow] | None = None) -> str:
    rows = inbox_for_agent(agent=agent) if rows is None else rows
    return render_to_string(
        "handoffs/desk/my_conversations.html#inbox-rows",
        {"rows": rows, "agent": agent, "oob": True},
    )


def render_frames(user_ids: list[int], message: Message | None) -> list[tuple[int, str, str]]:
    """(user id, badge html, rows html) for each agent among ``user_ids``; the badge
    carries the alert for ``message`` (a customer message) if it is unread for them.
    The rows are rendered only while the agent has an inbox page open."""
    frames = []
    alert = message if message is not None and message.sender == Sender.CUSTOMER else None
    for user_id in sorted(set(user_ids)):
        agent = None
        if broadcast.inbox_pages_open(user_id):
            agent = Agent.objects.filter(user_id=user_id).first()
        if agent is not None:
            rows = inbox_for_agent(agent=agent)
            entries = [_entry(r) for r in rows]
            rows_html = render_rows(agent, rows=rows)
        else:  # the common case: one query, no agent row
            entries, rows_html = badge_entries(user_id=user_id), ""
        badge = render_to_string(
            "handoffs/desk/_inbox_badge.html", {**badge_context(entries, alert), "oob": True}
        )
        frames.append((user_id, badge, rows_html))
    return frames
