"""Reads the console's pages need. No writes here (recall bumps access counts, so the
card browses memory with the read-only ``search``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from ..access import agents as rights
from ..delivery import outbox
from ..lifecycle import estimate
from ..memory import get_store
from ..memory.base import MemoryError as StoreError
from ..memory.base import MemoryNotFound, is_auto_summary, is_derived
from ..models import (
    SENTIMENT_RANK,
    Agent,
    Conversation,
    Handoff,
    Offer,
    Sender,
    ShiftHandover,
    Team,
)
from . import opener

FACT_TYPES = {"context", "account", "fact", "profile", "customer_profile"}


def teams_for(agent: Agent) -> QuerySet[Team]:
    return Team.objects.all() if agent.is_supervisor else Team.objects.served_by(agent)


def queue_for_agent(*, agent: Agent) -> list[Handoff]:
    """The agent's queue (``access.agents.queue_filter``): most urgent, most important,
    longest wait."""
    qs = Handoff.objects.filter(rights.queue_filter(agent))
    return list(
        qs.select_related("team", "assigned_to__user").order_by(
            "-urgency_rank", "-importance", "created_at", "pk"
        )
    )


def handoff_for(*, handoff_id: int) -> Handoff | None:
    return (
        Handoff.objects.select_related("team", "accepted_by__user", "assigned_to__user")
        .filter(pk=handoff_id)
        .first()
    )


def visible_handoff(*, agent: Agent, handoff_id: int) -> Handoff | None:
    """The handoff if this agent may see its card now (``access.agents.may_view_handoff``)."""
    handoff = handoff_for(handoff_id=handoff_id)
    if handoff is None or not rights.may_view_handoff(agent, handoff):
        return None
    return handoff


def chain_of(handoff: Handoff, *, until: datetime | None = None) -> list[Handoff]:
    """Every hop of this handoff's issue, first to last (those made by ``until``)."""
    hops = Handoff.objects.filter(chain_id=handoff.chain_id)
    if until is not None:
        hops = hops.filter(created_at__lte=until)
    return list(
        hops.select_related("team", "accepted_by__user").order_by("hop_index", "created_at")
    )


@dataclass
class HandoffCard:
    handoff: Handoff
    summary_memory: dict[str, Any] | None = None
    recalled: list[dict[str, Any]] = field(default_factory=list)
    facts: list[dict[str, Any]] = field(default_factory=list)
    bot_transcript: list[dict[str, Any]] = field(default_factory=list)
    chain: list[Handoff] = field(default_factory=list)
    context_error: str = ""
    no_session: bool = False  # the hop named no bot session, or one the store doesn't know
    from_human: Agent | None = None  # the colleague who passed this hop on, if a person
    names: dict[str, str] = field(default_factory=dict)  # memory agent name -> display name
    # A shift handover (``lifecycle.shifts``) shows first, the bot's original beneath.
    shift_handover: ShiftHandover | None = None
    original: Handoff | None = None
    # Offered without the required skills (the skill fallback): which, and to whom.
    missing_skills: list[str] = field(default_factory=list)
    fallback_agent: str = ""

    @property
    def from_name(self) -> str:
        return self.names.get(self.handoff.from_agent, self.handoff.from_agent)

    @property
    def to_name(self) -> str:
        handoff = self.handoff
        if handoff.team is not None and not handoff.to_agent.startswith("human:"):
            return handoff.team.name
        return self.names.get(handoff.to_agent, handoff.to_agent)


def display_names(hops: list[Handoff]) -> dict[str, str]:
    """How people read the agents of these hops: ``human:<username>`` as the colleague's
    name, a team slug as the team's name; bots keep their names."""
    names: dict[str, str] = {}
    usernames = {
        name[6:]
        for hop in hops
        for name in (hop.from_agent, hop.to_agent)
        if name.startswith("human:")
    }
    for agent in Agent.objects.select_related("user").filter(user__username__in=usernames):
        names[agent.memory_name] = agent.display_name
    for team in Team.objects.filter(
        slug__in={h.to_agent for h in hops} | {h.from_agent for h in hops}
    ):
        names[team.slug] = team.name
    return names


def _handover_and_skills(card: HandoffCard) -> None:
    handoff = card.handoff
    if handoff.shift_handover_id:
        card.shift_handover = ShiftHandover.objects.filter(pk=handoff.shift_handover_id).first()
        first = card.chain[0] if card.chain else None
        card.original = first if first is not None and first.pk != handoff.pk else None
    if handoff.required_skills:
        fallback = (
            Offer.objects.filter(handoff=handoff, skill_fallback=True)
            .select_related("agent__user")
            .order_by("-created_at", "-pk")
            .first()
        )
        if fallback is not None:
            card.missing_skills = sorted(set(handoff.required_skills) - fallback.agent.skill_set)
            card.fallback_agent = fallback.agent.display_name


def _chronological(memories: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(memories, key=lambda m: (m.get("created_at") or 0, m.get("id", "")))


def handoff_card(*, handoff: Handoff, until: datetime | None = None) -> HandoffCard:
    """What the receiving human reads: the summary (a colleague's note, or the bot's
    summary) first, then what the bot did, account facts, recalled context (oldest
    first) and the chain of earlier hops, every agent by the name people know them by.

    Derived memories (a real Dakera's ``dakera-curated`` sentences), auto-summaries and
    duplicates of anything already shown are hidden. A hop passed on by a colleague
    shows no transcript here: their chat is the conversation itself. "Memory context
    unavailable" is only for a failing memory server; a session the store doesn't know
    (or none) reads "no bot session recorded". With ``until`` (a former owner's
    read-only view) nothing stored or handed over after that moment is shown.
    """
    card = HandoffCard(handoff=handoff, chain=chain_of(handoff, until=until))
    card.names = display_names(card.chain or [handoff])
    _handover_and_skills(card)
    if handoff.from_agent.startswith("human:"):
        card.from_human = (
            Agent.objects.select_related("user")
            .filter(user__username=handoff.from_agent[6:])
            .first()
        )
    outbox.kicker.settle(conversation_id=handoff.conversation_id)
    store = get_store()
    transcript: list[dict[str, Any]] = []
    try:
        found = store.search(agent_id=handoff.customer, query=handoff.summary, top_k=25)
        if handoff.source_session_id and card.from_human is None:
            try:
                transcript = store.session_memories(
                    session_id=handoff.source_session_id, limit=200
                )["memories"]
            except MemoryNotFound:
                card.no_session = True
        elif card.from_human is None:
            card.no_session = True
    except StoreError as exc:
        # The card still shows the console's own snapshot; the next load searches again.
        card.context_error = f"context unavailable, retrying ({exc.message})"
        return card
    if until is not None:
        # Memory times are whole seconds: anything from the closing second on is hidden
        # (the console's own transcript still shows what was said before the handover).
        cutoff = int(until.timestamp())

        def before(m: dict[str, Any]) -> bool:  # undated memories are not shown either
            return (m.get("created_at") or float("inf")) < cutoff

        found["memories"] = [hit for hit in found["memories"] if before(hit["memory"])]
        transcript = [m for m in transcript if before(m)]
    card.bot_transcript = [
        m
        for m in transcript
        if not is_derived(m)
        and not is_auto_summary(m)
        and m["id"] != handoff.memory_id
        and m["content"].strip() != handoff.summary.strip()
    ]
    # What the transcript and the chat already show isn't repeated under "recalled".
    seen = (
        {hop.summary.strip() for hop in card.chain}
        | {handoff.summary.strip()}
        | {m["content"].strip() for m in card.bot_transcript}
    )
    if handoff.conversation_id:
        seen |= {
            body.strip()
            for body in Conversation.objects.get(pk=handoff.conversation_id).messages.values_list(
                "body", flat=True
            )
        }
    for hit in found["memories"]:
        memory = hit["memory"]
        if memory["id"] == handoff.memory_id:
            card.summary_memory = memory
            continue
        content = memory["content"].strip()
        is_fact = (memory.get("metadata") or {}).get("type") in FACT_TYPES
        if is_derived(memory) or is_auto_summary(memory):
            continue
        if is_fact and content not in {f["content"].strip() for f in card.facts}:
            card.facts.append(memory)
        elif content not in seen:
            card.recalled.append(memory)
        seen.add(content)
    card.recalled = _chronological(card.recalled)
    return card


# ---------------------------------------------------------------- the conversation page
def sentiment_trend(conversation: Conversation, handoff: Handoff) -> dict[str, Any]:
    """Customer sentiment at handoff vs now (mean of the last three customer messages).

    The direction follows the labels people read: the same label on both sides is
    "steady" whatever the scores did underneath.
    """
    scores = list(
        conversation.messages.filter(
            sender=Sender.CUSTOMER,
            sentiment_score__isnull=False,
            created_at__gte=handoff.created_at,
        )
        .order_by("-seq")
        .values_list("sentiment_score", flat=True)[:3]
    )
    now = sum(scores) / len(scores) if scores else None
    label = estimate.sentiment_from_score(now) if now is not None else None
    direction = ""
    if label is not None:
        before, after = SENTIMENT_RANK[handoff.sentiment], SENTIMENT_RANK[label]
        direction = "improving" if after < before else "worsening" if after > before else "steady"
    return {"at_handoff": handoff.sentiment, "now": label, "direction": direction}


def suggested_first_message(*, handoff: Handoff, agent: Agent) -> str:
    """The opener offered to the agent who accepted (``opener.render_opener``)."""
    return opener.render_opener(handoff=handoff, agent=agent)
