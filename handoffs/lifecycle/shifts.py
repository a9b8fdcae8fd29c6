"""End of shift: every open conversation is handed over with its context.

``drafts_for(agent)`` drafts, for each of the agent's open conversations, a handover
from what the console knows: the bot's original summary, what happened since the hop
was accepted (messages, private notes), the latest sentiment and urgency, and what the
customer is waiting for. The agent reviews each draft and writes a required "next
step"; ``shift_end`` then hands each conversation over in one transaction of its own,
reusing the transfer (``endings._pass_on``):

- a HANDOFF SUMMARY memory is queued in the customer's namespace (``type: handoff``,
  ``from_agent`` the person, ``to_agent`` the team or the named colleague, ``reason:
  "shift handover"``, importance 1.0), stored through the memory store by the outbox
  (embedded or remote, never inside the transaction);
- the conversation becomes the next hop of the same chain: waiting in the team's queue
  (offered to a free agent in an offer-routed team) or assigned to a named colleague,
  linked to the ``ShiftHandover`` that made it;
- the customer is told a colleague continues.

Then the agent goes offline with ``shift_ended_at`` set: their sockets don't bring them
back online until they start a shift again.

``run_due`` (the worker) does the same, marked automatic, for agents offline longer
than their team's ``handover_after_offline_secs`` with open conversations (claimed once
by a conditional UPDATE of ``Agent.shift_ended_at``), and reminds agents with a shift
end (``Agent.shift_ends_at``) ``shift_reminder_mins`` before it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from ..models import (
    SENTIMENT_RANK,
    Agent,
    Event,
    Handoff,
    Message,
    Presence,
    Sender,
    ShiftHandover,
    Status,
    Team,
)
from ..realtime import broadcast
from . import endings, estimate, offers
from .errors import HandoffError, HandoffNotFound

logger = logging.getLogger(__name__)

REASON = "shift handover"
NEXT_STEP_MAX = 500
TEXT_MAX = 5000
LAST_MESSAGES = 4
AUTOMATIC_NEXT_STEP = (
    "Read the conversation and reply to the customer: the previous agent went offline "
    "without handing over."
)
CUSTOMER_TEXT = (
    "A colleague is taking over from here and will continue with you shortly. They can "
    "see everything so far."
)


@dataclass
class Draft:
    """What the console knows about one open conversation, for its handover."""

    hop: Handoff
    original_summary: str
    original_from: str
    messages: int = 0
    customer_messages: int = 0
    notes: list[str] = field(default_factory=list)
    last_messages: list[str] = field(default_factory=list)
    sentiment: str = ""
    urgency: str = ""
    waiting_for: str = ""
    skills: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The drafted handover the agent reviews (plain text, stored as the summary)."""
        lines = [f"Waiting for: {self.waiting_for}"]
        lines.append(f"Sentiment: {self.sentiment} · urgency: {self.urgency}")
        lines.append(
            f"Since the handoff: {self.messages} message{'s' if self.messages != 1 else ''} "
            f"({self.customer_messages} from the customer), {len(self.notes)} private "
            f"note{'s' if len(self.notes) != 1 else ''}."
        )
        if self.notes:
            lines.append("Notes:")
            lines += [f"- {note}" for note in self.notes]
        if self.last_messages:
            lines.append("Last messages:")
            lines += [f"- {m}" for m in self.last_messages]
        lines.append(f"Original handoff from {self.original_from}: {self.original_summary}")
        return "\n".join(lines)[:TEXT_MAX]


def _clip(text: str, n: int = 200) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def draft_handover(hop: Handoff) -> Draft:
    """Draft the handover of one open conversation (reads only)."""
    first = Handoff.objects.filter(chain_id=hop.chain_id).order_by("hop_index", "pk").first()
    origin = first or hop
    draft = Draft(
        hop=hop,
        original_summary=_clip(endings.SUMMARY_PREFIX.sub("", origin.summary), 1000),
        original_from=origin.from_agent,
        sentiment=hop.sentiment,
        urgency=hop.urgency,
        skills=list(hop.required_skills or []),
    )
    if hop.conversation_id is None:
        draft.waiting_for = "nothing recorded (no chat)"
        return draft
    since = list(
        Message.objects.filter(
            conversation_id=hop.conversation_id, created_at__gte=hop.accepted_at or hop.created_at
        ).order_by("seq")
    )
    public = [m for m in since if m.sender != Sender.NOTE and m.sender != Sender.SYSTEM]
    draft.messages = len(public)
    draft.customer_messages = sum(1 for m in public if m.sender == Sender.CUSTOMER)
    draft.notes = [_clip(m.body) for m in since if m.sender == Sender.NOTE][-5:]
    for m in public[-LAST_MESSAGES:]:
        who = "Customer" if m.sender == Sender.CUSTOMER else (m.author_name or "Agent")
        draft.last_messages.append(f"{who}: {_clip(m.body, 160)}")
    scores = [
        m.sentiment_score
        for m in since
        if m.sender == Sender.CUSTOMER and m.sentiment_score is not None
    ][-3:]
    if scores:
        latest = estimate.sentiment_from_score(sum(scores) / len(scores))
        draft.sentiment = str(latest)
        if SENTIMENT_RANK[latest] > SENTIMENT_RANK[hop.sentiment]:
            draft.sentiment = f"{latest} (worse than at handoff: {hop.sentiment})"
    last = public[-1] if public else None
    if last is None:
        draft.waiting_for = "a first reply (nobody has written since the handoff)"
    elif last.sender == Sender.CUSTOMER:
        draft.waiting_for = f"an answer to their last message: “{_clip(last.body, 160)}”"
    else:
        draft.waiting_for = (
            "the customer's reply to the agent's last message (the customer was answered)"
        )
    return draft


def open_hops(agent: Agent) -> list[Handoff]:
    return list(
        Handoff.objects.filter(accepted_by=agent, status=Status.ACCEPTED)
        .select_related("team", "conversation")
        .order_by("accepted_at", "pk")
    )


def drafts_for(agent: Agent) -> list[Draft]:
    """A draft for each open conversation of the agent, oldest first."""
    return [draft_handover(hop) for hop in open_hops(agent)]


@dataclass(frozen=True)
class HandoverItem:
    """One reviewed handover: the conversation, the next step, the text, and to whom
    ("" = its team's queue; a team slug; ``human:<username>`` a named colleague)."""

    handoff_id: int
    next_step: str
    text: str
    to: str = ""


def _target(item: HandoverItem, hop: Handoff, agent: Agent) -> tuple[str, Agent | None]:
    to = item.to.strip()
    if not to:
        if hop.team is None:
            raise HandoffError("This conversation has no team to hand over to; name a colleague.")
        return hop.team.slug, None
    if to.startswith("human:"):
        colleague = (
            Agent.objects.select_related("user")
            .filter(user__username=to[6:], user__is_active=True)
            .first()
        )
        if colleague is None:
            raise HandoffError(f"No colleague {to[6:]!r}.")
        if colleague.pk == agent.pk:
            raise HandoffError("You can't hand a conversation over to yourself.")
        return to, colleague
    if not Team.objects.filter(slug=to).exists():
        raise HandoffError(f"No team {to!r}.")
    return to, None


def validate(items: list[HandoverItem]) -> dict[int, str]:
    """Per conversation, what is wrong with its handover (empty when all are fine)."""
    errors: dict[int, str] = {}
    for item in items:
        if not item.next_step.strip():
            errors[item.handoff_id] = "A next step is required."
        elif len(item.next_step) > NEXT_STEP_MAX:
            errors[item.handoff_id] = f"The next step is longer than {NEXT_STEP_MAX} characters."
        elif len(item.text) > TEXT_MAX:
            errors[item.handoff_id] = f"The handover is longer than {TEXT_MAX} characters."
    return errors


@dataclass
class ShiftResult:
    shift: ShiftHandover
    handed_over: list[Handoff] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)


def _hand_over(
    *, item: HandoverItem, agent: Agent, shift: ShiftHandover, automatic: bool
) -> Handoff:
    """One conversation, in one transaction: memory, next hop, customer told, audit."""
    with transaction.atomic():
        hop = endings._owned_hop(handoff_id=item.handoff_id, agent=agent)
        to, colleague = _target(item, hop, agent)
        next_step = item.next_step.strip()
        body = item.text.strip()
        marker = "Shift handover (automatic)" if automatic else "Shift handover"
        content = (
            f"HANDOFF SUMMARY ({agent.memory_name} → {to}): {marker}. "
            f"Next step: {next_step}\n{body}"
        )[: TEXT_MAX + NEXT_STEP_MAX + 200]
        new_hop = endings._pass_on(
            hop=hop,
            agent=agent,
            to=to,
            content=content,
            note=f"{marker}. Next step: {next_step}",
            rating="",
            status=Status.TRANSFERRED,
            assigned_to=colleague,
            customer_text=CUSTOMER_TEXT,
            reason=REASON,
            client_prefix="shift",
            memory_metadata={
                "reason": REASON,
                "sentiment": hop.sentiment,
                "urgency": hop.urgency,
                "next_step": next_step,
                "automatic": automatic,
            },
            intake_fields={"shift_handover": shift},
        )
        Event.objects.create(
            handoff=new_hop,
            kind="shift.handover",
            actor="system" if automatic else agent.memory_name,
            data={
                "agent": agent.user.get_username(),
                "from_hop": hop.pk,
                "to": to,
                "automatic": automatic,
                "shift": shift.pk,
            },
        )
    return new_hop


def shift_end(*, agent: Agent, items: list[HandoverItem], automatic: bool = False) -> ShiftResult:
    """End the agent's shift: hand over each conversation (one transaction each) and
    go offline. Every open conversation must be in ``items`` with a next step;
    raises HandoffError before writing anything otherwise. A conversation that stopped
    being theirs meanwhile (a supervisor moved it) is skipped and reported."""
    errors = validate(items)
    if errors:
        raise HandoffError(next(iter(errors.values())))
    hops = {hop.pk: hop for hop in open_hops(agent)}
    for item in items:
        if item.handoff_id in hops:
            _target(item, hops[item.handoff_id], agent)  # a bad target: nothing written
    mine = set(hops)
    missing = mine - {item.handoff_id for item in items}
    if missing and not automatic:
        raise HandoffError(
            "Review every open conversation: a new one arrived while you were reviewing."
        )
    now = timezone.now()
    started = (
        Event.objects.filter(
            kind="agent.presence",
            data__agent=agent.user.get_username(),
            data__presence=Presence.ONLINE,
            created_at__lte=now,
        )
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    shift = ShiftHandover.objects.create(
        agent=agent, automatic=automatic, ended_at=now, shift_started_at=started
    )
    result = ShiftResult(shift=shift)
    for item in items:
        try:
            result.handed_over.append(
                _hand_over(item=item, agent=agent, shift=shift, automatic=automatic)
            )
        except HandoffNotFound as exc:
            result.skipped[item.handoff_id] = exc.message
    with transaction.atomic():
        ShiftHandover.objects.filter(pk=shift.pk).update(conversations=len(result.handed_over))
        Agent.objects.filter(pk=agent.pk).update(shift_ended_at=now)
        agent.shift_ended_at = now
        offers.set_presence(
            agent=agent, presence=Presence.OFFLINE, actor="system" if automatic else None
        )
        Event.objects.create(
            kind="shift.ended",
            actor="system" if automatic else agent.memory_name,
            created_at=now,
            data={
                "agent": agent.user.get_username(),
                "shift": shift.pk,
                "automatic": automatic,
                "handed_over": [h.pk for h in result.handed_over],
                "skipped": list(result.skipped),
            },
        )
        broadcast.presence_changed_on_commit(agent_id=agent.pk)
    shift.conversations = len(result.handed_over)
    return result


# ---------------------------------------------------------------- the worker's pass
@dataclass
class ShiftPass:
    handed_over: list[int] = field(default_factory=list)  # agent ids
    reminded: list[int] = field(default_factory=list)


def _offline_limit(agent: Agent) -> int:
    limits = [
        t.handover_after_offline_secs for t in agent.teams.all() if t.handover_after_offline_secs
    ]
    return min(limits) if limits else 0


def automatic_handovers(now: datetime) -> list[int]:
    """Agents offline past their team's limit with open conversations: hand those over."""
    done = []
    offline = (
        Agent.objects.filter(
            presence=Presence.OFFLINE,
            shift_ended_at=None,
            accepted__status=Status.ACCEPTED,
        )
        .distinct()
        .select_related("user")
        .prefetch_related("teams")
    )
    for agent in offline:
        limit = _offline_limit(agent)
        if not limit or agent.presence_changed_at > now - timedelta(seconds=limit):
            continue
        # The claim: one worker wins the agent (conditional UPDATE), the others skip.
        claimed = Agent.objects.filter(
            pk=agent.pk,
            presence=Presence.OFFLINE,
            shift_ended_at=None,
            presence_changed_at=agent.presence_changed_at,
        ).update(shift_ended_at=now)
        if claimed != 1:
            continue
        agent.shift_ended_at = now
        items = [
            HandoverItem(handoff_id=d.hop.pk, next_step=AUTOMATIC_NEXT_STEP, text=d.text)
            for d in drafts_for(agent)
        ]
        try:
            shift_end(agent=agent, items=items, automatic=True)
        except HandoffError:
            logger.exception("automatic handover of %s failed", agent)
            continue
        done.append(agent.pk)
    return done


def _shift_end_today(agent: Agent, now: datetime) -> datetime | None:
    if agent.shift_ends_at is None:
        return None
    team = agent.teams.order_by("slug").first()
    zone = ZoneInfo(team.time_zone if team else "UTC")
    local = now.astimezone(zone)
    end = datetime.combine(local.date(), agent.shift_ends_at, tzinfo=zone)
    return end


def reminder_due(agent: Agent, now: datetime) -> datetime | None:
    """The shift end to remind this agent of now, or None."""
    end = _shift_end_today(agent, now)
    if end is None or agent.shift_ended_at is not None:
        return None
    team = agent.teams.order_by("slug").first()
    minutes = team.shift_reminder_mins if team else 15
    if end - timedelta(minutes=minutes) <= now < end + timedelta(hours=1):
        return end
    return None


def remind(now: datetime) -> list[int]:
    """Remind online agents of their shift end (once per agent and day, all workers)."""
    reminded = []
    for agent in Agent.objects.filter(
        shift_ends_at__isnull=False, presence__in=(Presence.ONLINE, Presence.AWAY)
    ).select_related("user"):
        end = reminder_due(agent, now)
        if end is None:
            continue
        if not cache.add(f"shift:reminded:{agent.pk}:{end.date()}", 1, 26 * 3600):
            continue
        broadcast.notify_user(
            agent.user_id,
            text=f"Your shift ends at {end:%H:%M}. Hand over your open conversations with "
            "End shift before you go.",
            url="/shift/end",
        )
        reminded.append(agent.pk)
    return reminded


def run_due(now: datetime | None = None) -> ShiftPass:
    """The worker's pass: automatic handovers, then shift-end reminders."""
    now = now or timezone.now()
    result = ShiftPass(handed_over=automatic_handovers(now), reminded=remind(now))
    if result.handed_over:
        broadcast.publish_floor()
    return result
