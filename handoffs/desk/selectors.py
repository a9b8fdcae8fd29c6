"""Reads the console's pages need. No writes here (recall bumps access counts, so the
card browses memory with the read-only ``search``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from ..access import agents as rights
from ..delivery import outbox
from ..lifecycle import estimate
from ..memory import get_store
from ..memory.base import MemoryError as StoreError
from ..memory.base import is_auto_summary, is_derived
from ..models import Agent, Conversation, Handoff, Sender, Team

FACT_TYPES = {"context", "account", "fact", "profile", "customer_profile"}


def teams_for(agent: Agent) -> QuerySet[Team]:
    return Team.objects.all() if agent.is_supervisor else agent.teams.all()


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


def handoff_card(*, handoff: Handoff, until: datetime | None = None) -> HandoffCard:
    """What the receiving human reads: the summary first, then recalled context, facts,
    the bot's session in order, and the chain of earlier hops.

    Derived memories (a real Dakera's ``dakera-curated`` sentences), auto-summaries and
    duplicates of anything already shown are hidden. With ``until`` (a former owner's
    read-only view) nothing stored or handed over after that moment is shown.
    """
    card = HandoffCard(handoff=handoff, chain=chain_of(handoff, until=until))
    outbox.kicker.settle(conversation_id=handoff.conversation_id)
    store = get_store()
    try:
        found = store.search(agent_id=handoff.customer, query=handoff.summary, top_k=25)
        transcript = (
            store.session_memories(session_id=handoff.source_session_id, limit=200)["memories"]
            if handoff.source_session_id
            else []
        )
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
    # What the transcript already shows isn't repeated under "recalled context".
    seen = (
        {hop.summary.strip() for hop in card.chain}
        | {handoff.summary.strip()}
        | {m["content"].strip() for m in card.bot_transcript}
    )
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
    return card


# ---------------------------------------------------------------- the conversation page
_THIRD_PERSON = [
    (
        re.compile(r"^(the\s+)?(customer|user|client)(\s+[A-Z]{2,}-?\d+)?(\s*\([^)]*\))?\s+", re.I),
        "you ",
    ),
    (re.compile(r"\breports\b", re.I), "reported"),
    (re.compile(r"\bis reporting\b", re.I), "reported"),
    (re.compile(r"\bhas been\b", re.I), "were"),
    (re.compile(r"\bwas\b", re.I), "were"),
    (re.compile(r"\bthreatens\b", re.I), "are thinking"),
    (re.compile(r"\b(their|his|her)\b", re.I), "your"),
]


def suggested_first_message(*, handoff: Handoff, agent: Agent) -> str:
    """A first message that proves continuity, drafted from the handoff summary."""
    text = re.sub(r"^HANDOFF SUMMARY \([^)]*\):\s*", "", handoff.summary.strip())
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
    facts = [s for s in sentences if not re.match(r"(?i)^(customer )?tone\b", s)]
    first = facts[0] if facts else text
    for pattern, replacement in _THIRD_PERSON:
        first = pattern.sub(replacement, first, count=1)
    first = first.rstrip(".")
    detail = ""
    if len(facts) > 1 and re.search(r"\$|\d", facts[1]):
        detail = " " + facts[1].rstrip(".") + "."
    name = agent.user.first_name or agent.user.get_username()
    team = f" from {handoff.team.name}" if handoff.team else ""
    greeting = f"Hi{' ' + handoff.customer_name.split()[0] if handoff.customer_name else ''}"
    return (
        f"{greeting}, I'm {name}{team}. I can see {first[0].lower() + first[1:]}.{detail} "
        "You don't need to repeat anything: I'm looking into it now."
    )


def sentiment_trend(conversation: Conversation, handoff: Handoff) -> dict[str, Any]:
    """Customer sentiment at handoff vs now (mean of the last three customer messages)."""
    scores = list(
        conversation.messages.filter(sender=Sender.CUSTOMER, sentiment_score__isnull=False)
        .order_by("-seq")
        .values_list("sentiment_score", flat=True)[:3]
    )
    now = sum(scores) / len(scores) if scores else None
    label = estimate.sentiment_from_score(now) if now is not None else None
    direction = ""
    if now is not None:
        delta = now - handoff.sentiment_score
        direction = "improving" if delta > 0.15 else "worsening" if delta < -0.15 else "steady"
    return {"at_handoff": handoff.sentiment, "now": label, "direction": direction}
