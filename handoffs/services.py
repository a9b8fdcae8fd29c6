"""Every write of the handoff console goes through these functions.

State machine of a handoff (one hop)::

    waiting --accept--> accepted --resolve--> resolved
                                 --transfer--> transferred  (a new hop starts waiting)
                                 --hand back-> handed_back  (a new bot hop is recorded)
    bot_hop  (a hop to a registered bot: recorded for analytics, never queued)

Invariants: each function is one transaction; every state change writes an ``Event``
row; broadcasts are sent only after commit; intake is idempotent (``dedupe_key``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import broadcast, estimate
from .memory.embedded import EmbeddedStore
from .models import URGENCY_RANK, Agent, Bot, Event, Handoff, Presence, Source, Status, Team

HANDOFF_TYPE = "handoff"
AGENT_NAME_MAX = 241  # Handoff.from_agent / to_agent max_length
CHAIN_WINDOW_DAYS = 14


class HandoffError(Exception):
    """A domain rule refused the operation; ``status``/``code`` shape the API answer."""

    status = 400
    code = "INVALID_REQUEST"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status


@dataclass(frozen=True)
class IntakeResult:
    handoff: Handoff
    created: bool


def dedupe_key(
    *, customer: str, source_session_id: str, from_agent: str, to_agent: str, summary: str
) -> str:
    raw = json.dumps([customer, source_session_id, from_agent, to_agent, summary.strip()])
    return hashlib.sha256(raw.encode()).hexdigest()


def _route(to_agent: str) -> tuple[Team | None, Bot | None, bool]:
    """The team (or bot) a ``to_agent`` names; unknown targets go to the default team.

    ``human:<username>`` routes to that agent's first team (the hop is assigned to them).
    """
    if to_agent.startswith("human:"):
        agent = Agent.objects.filter(user__username=to_agent[6:]).first()
        team = agent.teams.order_by("slug").first() if agent is not None else None
        if team is not None:
            return team, None, False
    team = Team.objects.filter(slug=to_agent).first()
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


def _previous_hop(*, customer: str, from_agent: str) -> Handoff | None:
    """The hop this one continues: the customer's latest open hop that ended at ``from_agent``."""
    since = timezone.now() - timezone.timedelta(days=CHAIN_WINDOW_DAYS)
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
) -> IntakeResult:
    """Record one handoff hop (or return the one already recorded for the same data).

    Sentiment and urgency the bot gave are kept ("from bot"); missing or unreadable
    ones are estimated ("estimated"). Raises nothing for routing: unknown targets land
    in the default team, flagged ``misrouted``.
    """
    key = dedupe_key(
        customer=customer,
        source_session_id=source_session_id,
        from_agent=from_agent,
        to_agent=to_agent,
        summary=summary,
    )
    with transaction.atomic():
        existing = Handoff.objects.filter(dedupe_key=key).first()
        if existing is not None:
            return IntakeResult(existing, False)

        parsed_sentiment = estimate.parse_sentiment(sentiment)
        if parsed_sentiment is not None:
            sentiment_label, sentiment_score = parsed_sentiment
            sentiment_source = Source.BOT
        else:
            sentiment_label, sentiment_score = estimate.estimate_sentiment(summary)
            sentiment_source = Source.ESTIMATED
        urgency_label = estimate.parse_urgency(urgency)
        urgency_source = Source.BOT
        if urgency_label is None:
            urgency_label = estimate.estimate_urgency(
                text=summary, importance=importance, sentiment=sentiment_label
            )
            urgency_source = Source.ESTIMATED

        team, to_bot, misrouted = _route(to_agent)
        if previous is None:
            previous = _previous_hop(customer=customer, from_agent=from_agent)
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
            sentiment=sentiment_label,
            sentiment_score=sentiment_score,
            sentiment_source=sentiment_source,
            urgency=urgency_label,
            urgency_rank=URGENCY_RANK[urgency_label],
            urgency_source=urgency_source,
            status=Status.BOT_HOP if to_bot else Status.WAITING,
            memory_id=memory_id,
            dedupe_key=key,
            assigned_to=assigned_to,
        )
        if previous is not None:
            handoff.chain_id = previous.chain_id
            handoff.hop_index = previous.hop_index + 1
            handoff.previous = previous
        if handoff.team is not None or (previous is not None and previous.conversation_id):
            from .chat import conversation_for_new_hop

            handoff.conversation = conversation_for_new_hop(handoff=handoff, previous=previous)
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
            },
        )
        broadcast.handoff_changed_on_commit(handoff_id=handoff.pk, change="created")
    return IntakeResult(handoff, True)


def _is_handoff_memory(memory: dict[str, Any]) -> bool:
    return (memory.get("metadata") or {}).get("type") == HANDOFF_TYPE


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
    )


def memory_store(*, bot: Bot | None, **fields: Any) -> dict[str, Any]:
    """Store one memory in the embedded server; a handoff memory also becomes a handoff."""
    with transaction.atomic():
        result = EmbeddedStore().store(**fields)
        if _is_handoff_memory(result["memory"]):
            handoff_intake_from_memory(memory=result["memory"], bot=bot)
    return result


def memory_store_batch(
    *, bot: Bot | None, agent_id: str, memories: list[dict[str, Any]]
) -> dict[str, Any]:
    """Store a batch (all or nothing); each handoff memory in it becomes a handoff."""
    with transaction.atomic():
        result = EmbeddedStore().store_batch(agent_id=agent_id, memories=memories)
        for memory in result["stored"]:
            if _is_handoff_memory(memory):
                handoff_intake_from_memory(memory=memory, bot=bot)
    return result


def bot_create(*, name: str, callback_url: str = "") -> tuple[Bot, str]:
    """Create a bot and its key; returns the bot and the raw key (shown once)."""
    bot = Bot(name=name, callback_url=callback_url)
    raw_key = bot.set_new_key()
    bot.save()
    return bot, raw_key


def bot_revoke(*, bot: Bot) -> None:
    """Revoke a bot's key: the next request with it is refused."""
    Bot.objects.filter(pk=bot.pk, revoked_at=None).update(revoked_at=timezone.now())


# ---------------------------------------------------------------- accept and presence
class HandoffNotFound(HandoffError):
    status = 404
    code = "NOT_FOUND"


class HandoffConflict(HandoffError):
    status = 409
    code = "ALREADY_ACCEPTED"


class AgentAtCapacity(HandoffError):
    status = 409
    code = "AT_CAPACITY"


def can_see(agent: Agent, handoff: Handoff) -> bool:
    """Supervisors see every team; agents see their own teams' handoffs."""
    if agent.is_supervisor:
        return True
    return handoff.team_id is not None and agent.teams.filter(pk=handoff.team_id).exists()


def open_conversations(agent: Agent) -> int:
    return Handoff.objects.filter(accepted_by=agent, status=Status.ACCEPTED).count()


def handoff_accept(*, handoff_id: int, agent: Agent) -> Handoff:
    """Accept a waiting handoff; exactly one agent wins.

    The winner is decided by one conditional UPDATE (``... WHERE status = 'waiting'``)
    checked by its row count, so concurrent accepts can't both succeed on SQLite or
    PostgreSQL. Raises HandoffNotFound (unknown or another team's), AgentAtCapacity,
    or HandoffConflict (someone else won, or it is no longer waiting).
    """
    now = timezone.now()
    with transaction.atomic():
        handoff = Handoff.objects.select_related("team").filter(pk=handoff_id).first()
        if handoff is None or handoff.team_id is None or not can_see(agent, handoff):
            raise HandoffNotFound("no such handoff in your queues")
        if handoff.assigned_to_id not in (None, agent.pk) and not agent.is_supervisor:
            raise HandoffNotFound("this handoff was transferred to another agent")
        # Lock the agent row so two accepts by the same agent can't both pass capacity.
        Agent.objects.select_for_update().filter(pk=agent.pk).first()
        if open_conversations(agent) >= agent.capacity:
            raise AgentAtCapacity(
                f"You already have {agent.capacity} open conversations (your limit). "
                "Resolve or transfer one before accepting another."
            )
        won = Handoff.objects.filter(pk=handoff_id, status=Status.WAITING).update(
            status=Status.ACCEPTED, accepted_by=agent, accepted_at=now
        )
        if won != 1:
            handoff.refresh_from_db()
            if handoff.accepted_by_id:
                name = handoff.accepted_by.user.get_full_name() or str(handoff.accepted_by)
                raise HandoffConflict(f"Already accepted by {name}.")
            raise HandoffConflict(f"This handoff is {handoff.get_status_display().lower()}.")
        handoff.refresh_from_db()
        from .chat import on_accepted

        on_accepted(handoff=handoff, agent=agent)
        Event.objects.create(
            handoff=handoff,
            kind="handoff.accepted",
            actor=agent.memory_name,
            data={"wait_seconds": round((now - handoff.created_at).total_seconds(), 3)},
        )
        broadcast.handoff_changed_on_commit(handoff_id=handoff.pk, change="accepted")
    _start_human_session(handoff=handoff, agent=agent)
    return handoff


def _start_human_session(*, handoff: Handoff, agent: Agent) -> None:
    """Start the human's memory session in the customer's namespace (after commit).

    Memory I/O may be remote and slow, so it never runs inside the accept transaction.
    A failure leaves the conversation accepted without a session; the chat retries.
    """
    from .memory import get_store
    from .memory.base import MemoryError as StoreError

    try:
        session = get_store().start_session(
            agent_id=handoff.customer,
            metadata={
                "agent": agent.memory_name,
                "handoff_id": str(handoff.public_id),
                "channel": "console",
            },
        )["session"]
    except StoreError:
        return
    Handoff.objects.filter(pk=handoff.pk).update(human_session_id=session["id"])
    handoff.human_session_id = session["id"]


AWAY_KEY = "presence:away:{}"  # set while an away agent has no socket open


def agent_set_presence(*, agent: Agent, presence: str, actor: str | None = None) -> bool:
    """Set online / away / offline; returns True if it changed (and broadcasts then)."""
    if presence not in Presence.values:
        raise HandoffError(f"presence must be one of {', '.join(Presence.values)}")
    if presence == Presence.ONLINE:
        from django.core.cache import cache

        cache.delete(AWAY_KEY.format(agent.pk))
    with transaction.atomic():
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


# ---------------------------------------------------------------- supervisors
class NotReassignable(HandoffError):
    status = 409
    code = "NOT_REASSIGNABLE"


def handoff_reassign(*, handoff_id: int, to_agent: Agent, by: Any) -> Handoff:
    """A supervisor moves a waiting handoff or an open conversation to ``to_agent``.

    Waiting: it is assigned to them (only they, or a supervisor, may accept it), moving
    to one of their teams if they don't serve its team. Accepted: they become its owner
    (within their capacity) and both agents are told. One conditional UPDATE on the
    state that was read, audited as ``handoff.reassigned`` with ``by`` (the user).
    Raises HandoffNotFound, NotReassignable, AgentAtCapacity, HandoffConflict.
    """
    now = timezone.now()
    username = by.get_username()
    with transaction.atomic():
        handoff = (
            Handoff.objects.select_related("team", "accepted_by__user", "assigned_to__user")
            .filter(pk=handoff_id)
            .first()
        )
        if handoff is None:
            raise HandoffNotFound("no such handoff")
        if handoff.status not in (Status.WAITING, Status.ACCEPTED):
            raise NotReassignable(
                f"This handoff is {handoff.get_status_display().lower()}; only waiting or "
                "open conversations can be reassigned."
            )
        old_team = handoff.team
        old_owner = handoff.accepted_by if handoff.status == Status.ACCEPTED else None
        target_name = to_agent.user.get_full_name() or to_agent.user.get_username()
        if handoff.status == Status.WAITING:
            if handoff.assigned_to_id == to_agent.pk:
                raise NotReassignable(f"It is already assigned to {target_name}.")
            team = old_team
            serves = team is not None and (
                to_agent.is_supervisor or to_agent.teams.filter(pk=team.pk).exists()
            )
            if not serves:
                team = to_agent.teams.order_by("slug").first()
                if team is None:
                    raise NotReassignable(f"{target_name} is in no team; add them to one first.")
            moved = Handoff.objects.filter(
                pk=handoff.pk, status=Status.WAITING, assigned_to=handoff.assigned_to_id
            ).update(assigned_to=to_agent, team=team, reassigned_at=now)
        else:
            if handoff.accepted_by_id == to_agent.pk:
                raise NotReassignable(f"{target_name} already owns this conversation.")
            team = old_team
            # Lock the target's row so two moves to one agent can't both pass capacity.
            Agent.objects.select_for_update().filter(pk=to_agent.pk).first()
            if open_conversations(to_agent) >= to_agent.capacity:
                raise AgentAtCapacity(
                    f"{target_name} already has {to_agent.capacity} open conversations "
                    "(their limit)."
                )
            # The new owner gets a memory session of their own (started by the outbox on
            # their first message) and a fresh unanswered timer.
            moved = Handoff.objects.filter(
                pk=handoff.pk, status=Status.ACCEPTED, accepted_by=handoff.accepted_by_id
            ).update(
                accepted_by=to_agent,
                assigned_to=to_agent,
                reassigned_at=now,
                unanswered_alerted_at=None,
                human_session_id="",
            )
        if moved != 1:
            raise HandoffConflict("This handoff changed meanwhile; reload the floor.")
        Event.objects.create(
            handoff=handoff,
            kind="handoff.reassigned",
            actor=f"human:{username}",
            data={
                "by": username,
                "status": handoff.status,
                "from_agent": old_owner.user.get_username() if old_owner else None,
                "previously_assigned": (
                    handoff.assigned_to.user.get_username() if handoff.assigned_to else None
                ),
                "to_agent": to_agent.user.get_username(),
                "team_from": old_team.slug if old_team else None,
                "team_to": team.slug if team else None,
            },
        )
        broadcast.handoff_reassigned_on_commit(
            handoff_id=handoff.pk,
            old_team=old_team.slug if old_team else None,
            old_user_id=old_owner.user_id if old_owner else None,
            by=by.get_full_name() or username,
        )
    handoff.refresh_from_db()
    return handoff
