"""Accept: a waiting hop becomes one agent's conversation; exactly one agent wins."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from ..memory import get_store
from ..memory.base import MemoryError as StoreError
from ..models import Agent, Event, Handoff, Status, Team
from ..realtime import broadcast
from .errors import AgentAtCapacity, HandoffConflict, HandoffNotFound
from .messages import on_accepted


def can_see(agent: Agent, handoff: Handoff) -> bool:
    """Supervisors see every team; agents see the handoffs of the teams they serve
    (their own and the shared default queue, ``Team.objects.served_by``)."""
    if agent.is_supervisor:
        return True
    return (
        handoff.team_id is not None
        and Team.objects.served_by(agent).filter(pk=handoff.team_id).exists()
    )


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
