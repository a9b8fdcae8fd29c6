"""The endings of a hop: resolve, transfer, hand back, and a supervisor's reassign."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..delivery import outbox
from ..models import (
    Agent,
    Channel,
    Conversation,
    Event,
    Handoff,
    MemoryWrite,
    Sender,
    Sentiment,
    Status,
    Team,
    Urgency,
)
from ..realtime import broadcast
from . import offers, satisfaction
from .errors import AgentAtCapacity, HandoffConflict, HandoffError, HandoffNotFound, NotReassignable
from .intake import handoff_intake
from .messages import RATINGS, _post, _webhook, on_accepted

SUMMARY_PREFIX = re.compile(r"^HANDOFF SUMMARY \([^)]*\):\s*")


def _owned_hop(*, handoff_id: int, agent: Agent) -> Handoff:
    hop = (
        Handoff.objects.select_for_update(of=("self",))
        .select_related("conversation", "team")
        .filter(pk=handoff_id)
        .first()
    )
    if hop is None or hop.accepted_by_id != agent.pk or hop.status != Status.ACCEPTED:
        raise HandoffNotFound("You don't own this conversation.")
    return hop


def _close_hop(hop: Handoff, *, status: str, agent: Agent, rating: str, note: str) -> None:
    if rating not in RATINGS:
        raise HandoffError("rating must be accurate, missing_info or unnecessary")
    now = timezone.now()
    updated = Handoff.objects.filter(pk=hop.pk, status=Status.ACCEPTED).update(
        status=status, closed_at=now, rating=rating, closing_note=note
    )
    if updated != 1:
        raise HandoffError(
            "This conversation changed meanwhile; reload it.", status=409, code="CONFLICT"
        )
    hop.status, hop.closed_at, hop.rating, hop.closing_note = status, now, rating, note
    MemoryWrite.objects.create(
        conversation=hop.conversation,
        handoff=hop,
        operation="end_session",
        payload={"summary": f"{status}: {note}"[:2000]},
    )
    outbox.kick_on_commit()
    broadcast.handoff_changed_on_commit(handoff_id=hop.pk, change=status)
    # The agent has a free slot now: offer-routed teams give it the next hop.
    offers.dispatch_on_commit(team_ids=offers.agent_team_ids(agent))


def conversation_resolve(
    *, handoff_id: int, agent: Agent, summary: str = "", rating: str = ""
) -> Handoff:
    """Resolve: end the human memory session with a summary and close the customer link."""
    with transaction.atomic():
        hop = _owned_hop(handoff_id=handoff_id, agent=agent)
        summary = summary.strip() or f"Resolved by {agent.memory_name}."
        _close_hop(hop, status=Status.RESOLVED, agent=agent, rating=rating, note=summary)
        conversation = hop.conversation
        if conversation is not None:
            _post(
                conversation=conversation,
                sender=Sender.SYSTEM,
                author="system",
                body="This conversation was resolved. Thank you for contacting us!",
                client_id=f"resolved-{hop.pk}",
                handoff=hop,
            )
            Conversation.objects.filter(pk=conversation.pk).update(closed_at=timezone.now())
            if conversation.channel == Channel.WEB:
                # The chat page asks for a rating now (the bot API asks on other channels).
                satisfaction.mark_asked(hop)
            broadcast.conversation_closed_on_commit(conversation_id=conversation.pk)
            _webhook(conversation, "conversation.resolved", {"summary": summary})
        Event.objects.create(
            handoff=hop, kind="handoff.resolved", actor=agent.memory_name, data={"rating": rating}
        )
    return hop


def _note_required(note: str) -> str:
    note = (note or "").strip()
    if not note:
        raise HandoffError("A note is required: it becomes the next agent's handoff summary.")
    if len(note) > 5000:
        raise HandoffError("The note is longer than 5000 characters.")
    return note


def _queue_handoff_memory(
    *,
    hop: Handoff,
    agent: Agent,
    to_agent: str,
    content: str,
    metadata: dict[str, Any] | None = None,
) -> MemoryWrite:
    """Queue the HANDOFF SUMMARY memory in the closing agent's session (before it ends).

    The next hop keeps its own copy of the summary; the outbox fills in its
    ``memory_id`` once the memory server has stored it.
    """
    return MemoryWrite.objects.create(
        conversation=hop.conversation,
        handoff=hop,
        operation="store",
        payload={
            "agent_id": hop.customer,
            "content": content,
            "importance": 1.0,
            "tags": ["handoff"],
            "metadata": {
                "type": "handoff",
                "from_agent": agent.memory_name,
                "to_agent": to_agent,
                "conversation_id": str(hop.conversation.public_id) if hop.conversation else "",
                **(metadata or {}),
            },
        },
    )


def _chosen(value: str | None, choices: list[str], what: str) -> str | None:
    """An agent's choice of sentiment or urgency for the next hop; None keeps the customer's."""
    if not value:
        return None
    if value not in choices:
        raise HandoffError(f"{what} must be one of {', '.join(choices)}")
    return value


def handoff_transfer(
    *,
    handoff_id: int,
    agent: Agent,
    to: str,
    note: str,
    rating: str = "",
    sentiment: str | None = None,
    urgency: str | None = None,
) -> Handoff:
    """Transfer to a team (slug) or an agent (``human:<username>``); returns the new hop.

    The next hop carries the customer's sentiment and urgency unless ``sentiment`` /
    ``urgency`` (the agent's choice) change them.
    """
    note = _note_required(note)
    sentiment = _chosen(sentiment, Sentiment.values, "sentiment")
    urgency = _chosen(urgency, Urgency.values, "urgency")
    target_agent = None
    if to.startswith("human:"):
        target_agent = Agent.objects.select_related("user").filter(user__username=to[6:]).first()
        if target_agent is None:
            raise HandoffError(f"No agent {to[6:]!r}.")
        if target_agent.pk == agent.pk:
            raise HandoffError("You can't transfer a conversation to yourself.")
    elif not Team.objects.filter(slug=to).exists():
        raise HandoffError(f"No team {to!r}.")
    with transaction.atomic():
        hop = _owned_hop(handoff_id=handoff_id, agent=agent)
        return _pass_on(
            hop=hop,
            agent=agent,
            to=to,
            content=f"HANDOFF SUMMARY ({agent.memory_name} → {to}): {note}",
            note=note,
            rating=rating,
            status=Status.TRANSFERRED,
            assigned_to=target_agent,
            customer_text="You're being transferred to a colleague who can help further. "
            "They can see everything so far.",
            sentiment=sentiment,
            urgency=urgency,
        )


def handoff_release(
    *,
    handoff_id: int,
    agent: Agent,
    note: str = "",
    rating: str = "",
    sentiment: str | None = None,
    urgency: str | None = None,
) -> Handoff:
    """Put the conversation back in its team's queue for a colleague; returns the new hop.

    The note is optional: without one the next agent reads the summary this hop had.
    Raises HandoffError when the hop has no team to go back to.
    """
    note = (note or "").strip()
    if len(note) > 5000:
        raise HandoffError("The note is longer than 5000 characters.")
    sentiment = _chosen(sentiment, Sentiment.values, "sentiment")
    urgency = _chosen(urgency, Urgency.values, "urgency")
    with transaction.atomic():
        hop = _owned_hop(handoff_id=handoff_id, agent=agent)
        if hop.team is None:
            raise HandoffError("This conversation has no team queue to go back to.")
        to = hop.team.slug
        carried = note or SUMMARY_PREFIX.sub("", hop.summary.strip())
        return _pass_on(
            hop=hop,
            agent=agent,
            to=to,
            content=f"HANDOFF SUMMARY ({agent.memory_name} → {to}): {carried}",
            note=note or "Released back to the team's queue.",
            rating=rating,
            status=Status.TRANSFERRED,
            customer_text="A colleague from the same team will continue with you shortly. "
            "They can see everything so far.",
            sentiment=sentiment,
            urgency=urgency,
            reason="release",
            client_prefix="released",
        )


def handoff_hand_back(*, handoff_id: int, agent: Agent, note: str, rating: str = "") -> Handoff:
    """Hand the conversation back to the bot that escalated it, with a required note."""
    note = _note_required(note)
    with transaction.atomic():
        hop = _owned_hop(handoff_id=handoff_id, agent=agent)
        bot_name = hop.created_by_bot.name if hop.created_by_bot else hop.from_agent
        first = Handoff.objects.filter(chain_id=hop.chain_id).order_by("hop_index").first()
        if first is not None and first.created_by_bot is not None:
            bot_name = first.created_by_bot.name
        if hop.conversation is not None:
            Conversation.objects.filter(pk=hop.conversation.pk).update(bot_muted=False)
        return _pass_on(
            hop=hop,
            agent=agent,
            to=bot_name,
            content=f"HANDBACK to {bot_name} from {agent.memory_name}: {note}",
            note=note,
            rating=rating,
            status=Status.HANDED_BACK,
            customer_text="You're back with our assistant, who has the notes from this chat.",
        )


_ENDING = {
    Status.TRANSFERRED: ("transfer", "transferred", "conversation.transferred"),
    Status.HANDED_BACK: ("handback", "handed-back", "conversation.handed_back"),
}


def _pass_on(
    *,
    hop: Handoff,
    agent: Agent,
    to: str,
    content: str,
    note: str,
    rating: str,
    status: str,
    customer_text: str,
    assigned_to: Agent | None = None,
    sentiment: str | None = None,
    urgency: str | None = None,
    reason: str = "",
    client_prefix: str = "",
    memory_metadata: dict[str, Any] | None = None,
    intake_fields: dict[str, Any] | None = None,
) -> Handoff:
    """Close ``hop`` as transferred / handed back and start the next hop to ``to``.

    Queues the HANDOFF SUMMARY memory in the closing agent's session (before it ends),
    records the new hop in the same chain and conversation, tells the customer and the
    bot, and audits it. Runs inside the caller's transaction.
    """
    default_reason, default_prefix, webhook_event = _ENDING[status]
    reason = reason or default_reason
    client_prefix = client_prefix or default_prefix
    write = _queue_handoff_memory(
        hop=hop, agent=agent, to_agent=to, content=content, metadata=memory_metadata
    )
    _close_hop(hop, status=status, agent=agent, rating=rating, note=note)
    result = handoff_intake(
        customer=hop.customer,
        source_session_id=hop.human_session_id,
        from_agent=agent.memory_name,
        to_agent=to,
        summary=content,
        importance=1.0,
        reason=reason,
        customer_name=hop.customer_name,
        bot=hop.created_by_bot,
        previous=hop,
        actor=agent.memory_name,
        assigned_to=assigned_to,
        agent_sentiment=sentiment,
        agent_urgency=urgency,
        **(intake_fields or {}),
    )
    MemoryWrite.objects.filter(pk=write.pk).update(
        payload={**write.payload, "fill_memory_id_of": result.handoff.pk}
    )
    conversation = hop.conversation
    if conversation is not None:
        _post(
            conversation=conversation,
            sender=Sender.SYSTEM,
            author="system",
            body=customer_text,
            client_id=f"{client_prefix}-{hop.pk}",
            handoff=hop,
        )
        _webhook(conversation, webhook_event, {"to": to, "note": note})
    Event.objects.create(
        handoff=hop,
        kind=f"handoff.{status}",
        actor=agent.memory_name,
        data={"to": to, "next_hop": result.handoff.pk},
    )
    return result.handoff


# ---------------------------------------------------------------- supervisors
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
            if moved == 1:
                offers.withdraw_offer(hop=handoff, now=now, why="reassigned by a supervisor")
        else:
            if handoff.accepted_by_id == to_agent.pk:
                raise NotReassignable(f"{target_name} already owns this conversation.")
            team = old_team
            # Lock the target's row so two moves to one agent can't both pass capacity.
            Agent.objects.select_for_update().filter(pk=to_agent.pk).first()
            if offers.agent_load(to_agent.pk) >= to_agent.capacity:
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
        if old_owner is not None:
            # The customer reads who is with them now, as they did for the first owner.
            handoff.team = team
            on_accepted(
                handoff=handoff, agent=to_agent, client_id=f"joined-{handoff.pk}-{now.timestamp()}"
            )
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
        # The previous owner, or the previous assignee of a waiting hop, loses it.
        previous = old_owner or handoff.assigned_to
        broadcast.handoff_reassigned_on_commit(
            handoff_id=handoff.pk,
            old_team=old_team.slug if old_team else None,
            old_user_id=previous.user_id if previous else None,
            by=by.get_full_name() or username,
        )
    handoff.refresh_from_db()
    return handoff


def handoff_move_to_team(*, handoff_id: int, team: Team, by: Any) -> Handoff:
    """A supervisor moves a waiting handoff to another team's queue (unassigned).

    One conditional UPDATE on the state that was read, audited as
    ``handoff.reassigned`` with ``team_to``. Raises HandoffNotFound, NotReassignable,
    HandoffConflict.
    """
    now = timezone.now()
    username = by.get_username()
    with transaction.atomic():
        handoff = (
            Handoff.objects.select_related("team", "assigned_to__user")
            .filter(pk=handoff_id)
            .first()
        )
        if handoff is None:
            raise HandoffNotFound("no such handoff")
        if handoff.status != Status.WAITING:
            raise NotReassignable(
                "Only a waiting handoff can move to another queue; reassign an open "
                "conversation to a person."
            )
        if handoff.team_id == team.pk and handoff.assigned_to_id is None:
            raise NotReassignable(f"It is already in {team.name}'s queue.")
        old_team = handoff.team
        moved = Handoff.objects.filter(
            pk=handoff.pk,
            status=Status.WAITING,
            team=handoff.team_id,
            assigned_to=handoff.assigned_to_id,
        ).update(team=team, assigned_to=None, misrouted=False, reassigned_at=now)
        if moved != 1:
            raise HandoffConflict("This handoff changed meanwhile; reload the floor.")
        offers.withdraw_offer(hop=handoff, now=now, why="moved to another queue")
        offers.dispatch_on_commit(team_ids=[team.pk])
        Event.objects.create(
            handoff=handoff,
            kind="handoff.reassigned",
            actor=f"human:{username}",
            data={
                "by": username,
                "status": handoff.status,
                "previously_assigned": (
                    handoff.assigned_to.user.get_username() if handoff.assigned_to else None
                ),
                "to_agent": None,
                "team_from": old_team.slug if old_team else None,
                "team_to": team.slug,
            },
        )
        broadcast.handoff_reassigned_on_commit(
            handoff_id=handoff.pk,
            old_team=old_team.slug if old_team else None,
            old_user_id=None,
            by=by.get_full_name() or username,
        )
    handoff.refresh_from_db()
    return handoff
