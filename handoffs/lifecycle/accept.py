"""Accept: a waiting hop becomes one agent's conversation; exactly one agent wins."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from ..access import agents as rights
from ..memory import get_store
from ..memory.base import MemoryError as StoreError
from ..models import Agent, Event, Handoff, Presence, Status
from ..realtime import broadcast
from . import offers
from .errors import AgentAtCapacity, HandoffConflict, HandoffNotFound
from .messages import on_accepted


def open_conversations(agent: Agent) -> int:
    return Handoff.objects.filter(accepted_by=agent, status=Status.ACCEPTED).count()


def handoff_accept(*, handoff_id: int, agent: Agent) -> Handoff:
    """Accept a waiting handoff; exactly one agent wins.

    The winner is decided by one conditional UPDATE (``... WHERE status = 'waiting'``)
    checked by its row count, so concurrent accepts can't both succeed on SQLite or
    PostgreSQL. In an offer-routed team (``offers``) an agent may only accept the hop
    offered to them: the same UPDATE then also requires ``offered_to = <agent>`` (a
    supervisor may take any). Capacity counts open conversations and live offers held
    (``offers.agent_load``). Raises HandoffNotFound (unknown or another team's),
    AgentAtCapacity, or HandoffConflict (someone else won, it is no longer waiting, or
    it is offered to someone else).
    """
    now = timezone.now()
    with transaction.atomic():
        handoff = Handoff.objects.select_related("team").filter(pk=handoff_id).first()
        if handoff is None or handoff.team_id is None:
            raise HandoffNotFound("no such handoff in your queues")
        if not rights.may_accept(agent, handoff):
            in_team = rights.sees_every_queue(agent) or rights.serves_team(agent, handoff.team_id)
            if not in_team:
                raise HandoffNotFound("no such handoff in your queues")
            if handoff.status == Status.WAITING and handoff.assigned_to_id is not None:
                raise HandoffNotFound("this handoff was transferred to another agent")
            gap = rights.skill_gap(agent, handoff)
            if handoff.status == Status.WAITING and not offers.is_offer_team(handoff.team) and gap:
                raise HandoffConflict(
                    f"This customer needs {', '.join(gap)}: colleagues with "
                    f"{'that skill' if len(gap) == 1 else 'those skills'} get it first"
                    + (
                        f" (anyone may take it {handoff.team.skill_fallback_secs} s after it "
                        "arrived)."
                        if handoff.team.skill_fallback_secs
                        else "."
                    )
                )
            if handoff.status == Status.WAITING:  # offer routing: someone else's offer
                raise HandoffConflict(
                    "This team's handoffs are offered to one agent at a time; this one is "
                    "not offered to you."
                )
            # Not waiting any more: the conditional UPDATE below says who won.
        must_hold_offer = offers.offer_routed(handoff) and not rights.sees_every_queue(agent)
        # Lock the agent row so two accepts (or an accept and an offer) for the same
        # agent can't both pass capacity.
        Agent.objects.select_for_update().filter(pk=agent.pk).first()
        if offers.agent_load(agent.pk, excluding_hop=handoff.pk) >= agent.capacity:
            raise AgentAtCapacity(
                f"You already have {agent.capacity} open conversations (your limit). "
                "Resolve or transfer one before accepting another."
            )
        claim = Handoff.objects.filter(pk=handoff_id, status=Status.WAITING)
        if must_hold_offer:
            claim = claim.filter(offered_to=agent)
        won = claim.update(
            status=Status.ACCEPTED,
            accepted_by=agent,
            accepted_at=now,
            offered_to=None,
            offer_expires_at=None,
        )
        if won != 1:
            handoff.refresh_from_db()
            if handoff.accepted_by_id:
                name = handoff.accepted_by.user.get_full_name() or str(handoff.accepted_by)
                raise HandoffConflict(f"Already accepted by {name}.")
            if handoff.status == Status.WAITING:
                raise HandoffConflict("This offer timed out or moved on to a colleague.")
            raise HandoffConflict(f"This handoff is {handoff.get_status_display().lower()}.")
        handoff.refresh_from_db()
        offers.on_offer_accepted(hop=handoff, agent=agent, now=now)
        on_accepted(handoff=handoff, agent=agent)
        Event.objects.create(
            handoff=handoff,
            kind="handoff.accepted",
            actor=agent.memory_name,
            data={"wait_seconds": round((now - handoff.created_at).total_seconds(), 3)},
        )
        broadcast.handoff_changed_on_commit(handoff_id=handoff.pk, change="accepted")
        if agent.shift_ended_at is not None:
            # Off shift (End shift) yet taking work from the queue: that is working, so
            # the shift starts again (online), as "Start shift" would.
            offers.set_presence(agent=agent, presence=Presence.ONLINE)
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
