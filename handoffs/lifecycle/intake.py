"""Intake: a bot's handoff (or a person's transfer) becomes a hop, routed to a team or bot.

Idempotent: the same data (``dedupe_key``) never makes a second hop, even under
concurrent retries (a unique column decides).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..compiled import Compiled
from ..models import (
    SENTIMENT_RANK,
    SKILL_RE,
    URGENCY_RANK,
    Agent,
    Bot,
    Channel,
    Event,
    Handoff,
    Sentiment,
    Source,
    Status,
    Team,
    Urgency,
    parse_skills,
)
from ..realtime import broadcast
from . import estimate, hours, offers
from .messages import conversation_for_new_hop

AGENT_NAME_MAX = 241  # Handoff.from_agent / to_agent max_length
CHAIN_WINDOW_DAYS = 14
CHANNELS = {Channel.WEB.value, Channel.API.value}


@dataclass(frozen=True)
class IntakeResult:
    handoff: Handoff
    created: bool


def dedupe_key(
    *, customer: str, source_session_id: str, from_agent: str, to_agent: str, summary: str
) -> str:
    raw = json.dumps([customer, source_session_id, from_agent, to_agent, summary.strip()])
    return hashlib.sha256(raw.encode()).hexdigest()


def human_assignee(to_agent: str) -> tuple[Agent, Team] | None:
    """``human:<username>``: that active agent and their first team, or None (unknown,
    deactivated or in no team: the handoff then falls back like any unknown target)."""
    if not to_agent.startswith("human:"):
        return None
    agent = (
        Agent.objects.select_related("user")
        .filter(user__username=to_agent[6:], user__is_active=True)
        .first()
    )
    team = agent.teams.order_by("slug").first() if agent is not None else None
    return (agent, team) if team is not None else None


# Compiled once (``handoffs.compiled``): every intake runs these, and compiling each
# query anew cost more than running it.
_team_by_slug = Compiled(lambda slugs: Team.objects.filter(slug__in=slugs))
_dedupe_hits = Compiled(
    lambda keys: Handoff.objects.filter(dedupe_key__in=keys).values_list("pk", flat=True)
)
_newest_open_hop = Compiled(
    lambda customers: (
        Handoff.objects.filter(customer__in=customers)
        .exclude(status=Status.RESOLVED)
        .order_by("-created_at")
        .values_list("created_at", flat=True)[:1]
    )
)


def _route(to_agent: str) -> tuple[Team | None, Bot | None, bool]:
    """The team (or bot) a ``to_agent`` names; unknown targets go to the default team.

    ``human:<username>`` routes to that agent's first team (the hop is assigned to them).
    """
    assignee = human_assignee(to_agent)
    if assignee is not None:
        return assignee[1], None, False
    team = next(iter(_team_by_slug([to_agent])), None)  # slug is unique
    if team is not None:
        return team, None, False
    bot = Bot.objects.filter(name=to_agent).first()
    if bot is not None:
        return None, bot, False
    default = (
        Team.objects.filter(is_default=True).first()
        or Team.objects.filter(slug=settings.HANDOFF_DEFAULT_TEAM).first()
    )
    if default is None:
        default, _ = Team.objects.get_or_create(
            slug=settings.HANDOFF_DEFAULT_TEAM,
            defaults={"name": "General queue", "is_default": True},
        )
    return default, None, True


def path_flags(nodes: list[str]) -> tuple[bool, bool]:
    """(ping_pong, loop): A → B → A somewhere; any node visited twice."""
    ping_pong = any(
        nodes[i] == nodes[i + 2] and nodes[i] != nodes[i + 1] for i in range(len(nodes) - 2)
    )
    return ping_pong, len(set(nodes)) < len(nodes)


def chain_bounce(hops: list[Handoff]) -> str:
    """ "ping_pong", "loop" or "" for a chain's hops (first to last).

    Read two ways, flagged if either bounces: by person (who received each hop: the
    human who accepted it, else its target) and by queue (each hop's team, else its
    target bot; consecutive hops within one team count once).
    """
    if not hops:
        return ""
    people = [hops[0].from_agent]
    queues = [hops[0].from_agent]
    for hop in hops:
        people.append(hop.accepted_by.memory_name if hop.accepted_by_id else hop.to_agent)
        queue = hop.team.slug if hop.team_id else hop.to_agent
        if queue != queues[-1]:
            queues.append(queue)
    flags = [path_flags(people), path_flags(queues)]
    if any(ping_pong for ping_pong, _ in flags):
        return "ping_pong"
    return "loop" if any(loop for _, loop in flags) else ""


def _customer_state(
    *,
    summary: str,
    importance: float,
    sentiment: Any,
    urgency: Any,
    previous: Handoff | None,
    agent_sentiment: str | None,
    agent_urgency: str | None,
) -> dict[str, Any]:
    """Sentiment and urgency of a new hop, with where each came from.

    What the bot said wins ("from bot"), then what the transferring agent chose ("set by
    agent"). Otherwise a later hop carries the customer's state from the previous hop:
    the estimate from the new summary (often an agent's calm note) may raise it, never
    lower it. A first hop with nothing given is estimated.
    """
    state: dict[str, Any] = {}
    estimated_label, estimated_score = estimate.estimate_sentiment(summary)
    parsed = estimate.parse_sentiment(sentiment)
    if parsed is not None:
        state.update(sentiment=parsed[0], sentiment_score=parsed[1], sentiment_source=Source.BOT)
    elif agent_sentiment in Sentiment.values:
        nominal = estimate.nominal_score(agent_sentiment)
        state.update(
            sentiment=agent_sentiment, sentiment_score=nominal, sentiment_source=Source.AGENT
        )
    elif previous is not None and (
        SENTIMENT_RANK[previous.sentiment] >= SENTIMENT_RANK[estimated_label]
    ):
        state.update(
            sentiment=previous.sentiment,
            sentiment_score=min(previous.sentiment_score, estimated_score),
            sentiment_source=previous.sentiment_source,
        )
    else:
        state.update(
            sentiment=estimated_label,
            sentiment_score=estimated_score,
            sentiment_source=Source.ESTIMATED,
        )
    label = estimate.parse_urgency(urgency)
    if label is not None:
        state.update(urgency=label, urgency_source=Source.BOT)
    elif agent_urgency in Urgency.values:
        state.update(urgency=agent_urgency, urgency_source=Source.AGENT)
    else:
        guess = estimate.estimate_urgency(
            text=summary, importance=importance, sentiment=state["sentiment"]
        )
        if previous is not None and URGENCY_RANK[previous.urgency] >= URGENCY_RANK[guess]:
            state.update(urgency=previous.urgency, urgency_source=previous.urgency_source)
        else:
            state.update(urgency=guess, urgency_source=Source.ESTIMATED)
    state["urgency_rank"] = URGENCY_RANK[state["urgency"]]
    return state


def _previous_hop(*, customer: str, from_agent: str) -> Handoff | None:
    """The hop this one continues: the customer's latest open hop that ended at ``from_agent``."""
    since = timezone.now() - timezone.timedelta(days=CHAIN_WINDOW_DAYS)
    # Most intakes are a customer's first hop: ask whether there is any candidate (is
    # the customer's newest open hop recent enough?) with a narrow, precompiled query
    # before compiling the wide one (select_related over three tables costs more Python
    # than the whole intake's SQL).
    newest = _newest_open_hop([customer])
    if not newest or newest[0] < since:
        return None
    candidates = Handoff.objects.filter(customer=customer, created_at__gte=since).exclude(
        status=Status.RESOLVED
    )
    for hop in candidates.select_related("accepted_by__user").order_by("-created_at")[:20]:
        if hop.to_agent == from_agent:
            return hop
        if hop.accepted_by is not None and hop.accepted_by.memory_name == from_agent:
            return hop
    return None


def handoff_intake(
    *,
    customer: str,
    source_session_id: str,
    from_agent: str,
    to_agent: str,
    summary: str,
    importance: float = 1.0,
    sentiment: Any = None,
    urgency: Any = None,
    reason: str = "",
    customer_name: str = "",
    memory_id: str = "",
    bot: Bot | None = None,
    previous: Handoff | None = None,
    actor: str | None = None,
    assigned_to: Agent | None = None,
    channel: str | None = None,
    agent_sentiment: str | None = None,
    agent_urgency: str | None = None,
    required_skills: list[str] | None = None,
    shift_handover: Any = None,
) -> IntakeResult:
    """Record one handoff hop (or return the one already recorded for the same data).

    Sentiment and urgency the bot gave are kept ("from bot"), then those the
    transferring agent chose; a later hop otherwise carries the previous hop's (an
    estimate may raise them, never lower them); a first hop's missing ones are
    estimated. Raises nothing for routing: unknown targets land in the default team,
    flagged ``misrouted``. ``required_skills`` (the bot's skills and language) route
    offers; a later hop carries the previous hop's unless given. A waiting hop of an
    offer-routed team is offered once this commits (``offers``).
    """
    key = dedupe_key(
        customer=customer,
        source_session_id=source_session_id,
        from_agent=from_agent,
        to_agent=to_agent,
        summary=summary,
    )
    with transaction.atomic():
        # The id alone first (a retry is rare): the whole row costs more to compile.
        existing = _dedupe_hits([key])  # dedupe_key is unique
        if existing:
            return IntakeResult(Handoff.objects.get(pk=existing[0]), False)

        team, to_bot, misrouted = _route(to_agent)
        if assigned_to is None and not misrouted and to_bot is None:
            # ``human:<username>``: only that agent (or a supervisor) may take it.
            assignee = human_assignee(to_agent)
            assigned_to = assignee[0] if assignee is not None else None
        now = timezone.now()
        if previous is None:
            previous = _previous_hop(customer=customer, from_agent=from_agent)
        state = _customer_state(
            summary=summary,
            importance=importance,
            sentiment=sentiment,
            urgency=urgency,
            previous=previous,
            agent_sentiment=agent_sentiment,
            agent_urgency=agent_urgency,
        )
        handoff = Handoff(
            customer=customer,
            customer_name=customer_name,
            source_session_id=source_session_id,
            from_agent=from_agent,
            to_agent=to_agent,
            team=None if to_bot else team,
            to_bot=to_bot,
            misrouted=misrouted,
            created_by_bot=bot,
            summary=summary,
            reason=reason,
            importance=importance,
            **state,
            status=Status.BOT_HOP if to_bot else Status.WAITING,
            memory_id=memory_id,
            dedupe_key=key,
            assigned_to=assigned_to,
            created_at=now,
            arrived_out_of_hours=(
                team is not None and to_bot is None and not hours.team_is_open(team, now)
            ),
        )
        handoff.waiting_since = handoff.created_at
        handoff.shift_handover = shift_handover
        if required_skills is None and previous is not None:
            required_skills = previous.required_skills
        handoff.required_skills = parse_skills(required_skills or [])
        if previous is not None:
            handoff.chain_id = previous.chain_id
            handoff.hop_index = previous.hop_index + 1
            handoff.previous = previous
            handoff.waiting_since = previous.waiting_since or previous.created_at
            earlier = list(
                Handoff.objects.filter(chain_id=previous.chain_id)
                .select_related("team", "accepted_by__user")
                .order_by("hop_index", "created_at")
            )
            handoff.bounce = chain_bounce([*earlier, handoff])
        if handoff.team is not None or (previous is not None and previous.conversation_id):
            handoff.conversation = conversation_for_new_hop(
                handoff=handoff, previous=previous, channel=channel
            )
        try:
            with transaction.atomic():
                handoff.save()
        except IntegrityError:
            # A concurrent retry of the same intake won the insert.
            return IntakeResult(Handoff.objects.get(dedupe_key=key), False)
        Event.objects.create(
            handoff=handoff,
            kind="handoff.created",
            actor=actor or (f"bot:{bot.name}" if bot else from_agent),
            data={
                "from": from_agent,
                "to": to_agent,
                "team": team.slug if team and not to_bot else None,
                "misrouted": misrouted,
                "memory_id": memory_id,
                **({"out_of_hours": True} if handoff.arrived_out_of_hours else {}),
                "bounce": handoff.bounce,
            },
        )
        if offers.offer_routed(handoff):
            # Route first: the row then goes out once, already showing its offer.
            offers.dispatch_on_commit(team_ids=[handoff.team_id])
        broadcast.handoff_changed_on_commit(handoff_id=handoff.pk, change="created")
    return IntakeResult(handoff, True)


def handoff_intake_from_memory(*, memory: dict[str, Any], bot: Bot | None) -> IntakeResult:
    """Turn a stored handoff memory (``metadata.type == "handoff"``) into a handoff."""
    metadata = memory.get("metadata") or {}
    from_agent = str(
        metadata.get("from_agent") or metadata.get("agent") or (bot.name if bot else "unknown")
    )[:AGENT_NAME_MAX]
    importance = memory.get("importance")
    return handoff_intake(
        customer=memory["agent_id"],
        source_session_id=memory.get("session_id") or "",
        from_agent=from_agent,
        # Metadata is free-form; the columns hold 241 characters (PostgreSQL enforces it).
        to_agent=str(metadata.get("to_agent") or "")[:AGENT_NAME_MAX],
        summary=memory["content"],
        importance=float(importance) if importance is not None else 1.0,
        sentiment=metadata.get("sentiment"),
        urgency=metadata.get("urgency"),
        reason=str(metadata.get("reason") or "")[:500],
        customer_name=str(metadata.get("customer_name") or "")[:200],
        memory_id=memory["id"],
        bot=bot,
        channel=metadata.get("channel") if metadata.get("channel") in CHANNELS else None,
        required_skills=skills_from_metadata(metadata),
    )


def skills_from_metadata(metadata: dict[str, Any]) -> list[str] | None:
    """The skills a bot's handoff asks for: ``skills`` (a list or a comma-separated
    string) plus ``language`` (a code such as "de", itself a skill). Free-form metadata:
    anything that isn't a short token is ignored, never an error."""
    wanted: list[str] = []
    skills = metadata.get("skills")
    if isinstance(skills, str | list | tuple):
        wanted += parse_skills(skills if isinstance(skills, str) else [str(s) for s in skills])
    language = metadata.get("language")
    if isinstance(language, str) and language.strip():
        wanted.append(language.strip().lower())
    tokens = [s for s in parse_skills(wanted) if SKILL_RE.match(s)]
    return tokens[:10] or None


def on_handoff_memory_stored(
    sender: Any, *, memory: dict[str, Any], bot: Bot | None, **_: Any
) -> None:
    """``memory.signals.handoff_memory_stored`` receiver: the memory becomes a hop."""
    handoff_intake_from_memory(memory=memory, bot=bot)
