"""Timers: SLA alerts for waiting handoffs, and conversations the agent hasn't answered.

``run_due(now)`` is called by the outbox worker on every pass (``manage.py run_worker``)
and takes the time as an argument, so tests drive it with a controllable clock. Per team:

- a waiting handoff older than ``warn_after_secs`` is marked (``sla.warn``), older than
  ``breach_after_secs`` alerts the supervisors once (``sla.breach`` + the floor);
- an accepted conversation whose customer has waited ``unanswered_after_secs`` for the
  agent (since the accept, a supervisor's reassign, or the first customer message after
  the agent's last reply) alerts once (``conversation.unanswered``) and, when the team
  says so, goes back to the queue once (``handoff.requeued``).

Only open seconds count (the team's opening hours, ``hours``): outside them the timers
pause; a team without opening hours is open around the clock.

Every alert and requeue is claimed by one conditional UPDATE on a mark column
(``... WHERE sla_breached_at IS NULL``) checked by its row count, in the same transaction
as its audit row, so several workers can run at once and each fires exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import OuterRef, Q, Subquery
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from ..models import Event, Handoff, Message, Sender, Status, Team
from ..realtime import broadcast
from . import hours, offers

logger = logging.getLogger(__name__)

ACTOR = "system"


@dataclass
class TimerResult:
    """Which handoffs each kind of timer fired for in one pass."""

    warned: list[int] = field(default_factory=list)
    breached: list[int] = field(default_factory=list)
    unanswered: list[int] = field(default_factory=list)
    requeued: list[int] = field(default_factory=list)

    @property
    def fired(self) -> int:
        return len(self.warned) + len(self.breached) + len(self.unanswered) + len(self.requeued)


def run_due(now: datetime | None = None) -> TimerResult:
    """Fire every timer due at ``now`` (default: the current time); returns what fired."""
    now = now or timezone.now()
    result = TimerResult()
    for team in Team.objects.all():
        _sla(team, now, result)
        if team.unanswered_after_secs:
            _unanswered(team, now, result)
    if result.fired:
        broadcast.publish_floor()
    return result


# ---------------------------------------------------------------- waiting handoffs
def _clock(team: Team, now: datetime) -> Callable[[datetime], float]:
    """Seconds a timer has run since a moment: only the team's open hours count, so
    the timers pause outside opening hours (``hours``)."""
    schedule = hours.schedule_for(team)
    return lambda since: hours.open_seconds(schedule, since, now)


def _sla(team: Team, now: datetime, result: TimerResult) -> None:
    waiting = Handoff.objects.filter(team=team, status=Status.WAITING)
    elapsed = _clock(team, now)
    # Open seconds never exceed wall-clock ones: the wall clock pre-selects in SQL.
    breach_due = now - timedelta(seconds=team.breach_after_secs)
    for pk, created_at in waiting.filter(
        sla_breached_at=None, created_at__lte=breach_due
    ).values_list("pk", "created_at"):
        waited = elapsed(created_at)
        if waited < team.breach_after_secs:
            continue
        if _mark(
            pk,
            "sla_breached_at",
            now,
            kind="sla.breach",
            team=team,
            since=created_at,
            waited=waited,
        ):
            result.breached.append(pk)
    warn_due = now - timedelta(seconds=team.warn_after_secs)
    for pk, created_at in waiting.filter(
        sla_warned_at=None, sla_breached_at=None, created_at__lte=warn_due
    ).values_list("pk", "created_at"):
        waited = elapsed(created_at)
        if waited < team.warn_after_secs:
            continue
        if _mark(
            pk, "sla_warned_at", now, kind="sla.warn", team=team, since=created_at, waited=waited
        ):
            result.warned.append(pk)


def _mark(
    pk: int,
    column: str,
    now: datetime,
    *,
    kind: str,
    team: Team,
    since: datetime,
    waited: float | None = None,
) -> bool:
    """Claim one SLA mark (conditional UPDATE) and audit it; False if already taken."""
    with transaction.atomic():
        still = {"sla_breached_at": None} if column == "sla_warned_at" else {}
        claimed = Handoff.objects.filter(
            pk=pk, status=Status.WAITING, **{column: None}, **still
        ).update(**{column: now})
        if claimed != 1:
            return False
        Event.objects.create(
            handoff_id=pk,
            kind=kind,
            actor=ACTOR,
            created_at=now,
            data={
                "team": team.slug,
                "waited_secs": round((now - since).total_seconds() if waited is None else waited),
                "threshold_secs": (
                    team.breach_after_secs if kind == "sla.breach" else team.warn_after_secs
                ),
            },
        )
    return True


# ---------------------------------------------------------------- unanswered conversations
def _unanswered_candidates(team: Team, due: datetime):
    """Accepted conversations old enough to be unanswered, with what decides it."""
    pending_marks = Q(unanswered_alerted_at=None)
    if team.requeue_unanswered:
        pending_marks |= Q(requeued_at=None)
    agent_replies = Message.objects.filter(handoff=OuterRef("pk"), sender=Sender.AGENT)
    return (
        Handoff.objects.filter(team=team, status=Status.ACCEPTED, accepted_at__lte=due)
        .filter(pending_marks)
        .annotate(
            owned_since=Greatest("accepted_at", Coalesce("reassigned_at", "accepted_at")),
            last_reply=Subquery(agent_replies.order_by("-seq").values("created_at")[:1]),
        )
        .annotate(
            first_unanswered=Subquery(
                Message.objects.filter(
                    handoff=OuterRef("pk"),
                    sender=Sender.CUSTOMER,
                    created_at__gt=OuterRef("last_reply"),
                )
                .order_by("seq")
                .values("created_at")[:1]
            )
        )
        .select_related("accepted_by__user")
    )


def _waiting_since(hop: Handoff) -> datetime | None:
    """Since when the customer has waited for this owner; None if they're answered."""
    if hop.last_reply is None or hop.last_reply < hop.owned_since:
        return hop.owned_since  # the owner hasn't said a word yet
    return hop.first_unanswered


def _unanswered(team: Team, now: datetime, result: TimerResult) -> None:
    due = now - timedelta(seconds=team.unanswered_after_secs)
    elapsed = _clock(team, now)
    for hop in _unanswered_candidates(team, due):
        since = _waiting_since(hop)
        if since is None or since > due:
            continue
        unanswered = elapsed(since)
        if unanswered < team.unanswered_after_secs:
            continue  # the customer waited mostly outside opening hours
        owner = hop.accepted_by
        with transaction.atomic():
            mine = Handoff.objects.filter(
                pk=hop.pk, status=Status.ACCEPTED, accepted_by=hop.accepted_by_id
            )
            data = {
                "team": team.slug,
                "agent": owner.user.get_username() if owner else None,
                "unanswered_secs": round(unanswered),
                "threshold_secs": team.unanswered_after_secs,
            }
            if mine.filter(unanswered_alerted_at=None).update(unanswered_alerted_at=now) == 1:
                Event.objects.create(
                    handoff=hop,
                    kind="conversation.unanswered",
                    actor=ACTOR,
                    created_at=now,
                    data=data,
                )
                result.unanswered.append(hop.pk)
            if not team.requeue_unanswered:
                continue
            requeued = mine.filter(requeued_at=None).update(
                status=Status.WAITING,
                accepted_by=None,
                accepted_at=None,
                assigned_to=None,
                requeued_at=now,
                human_session_id="",
            )
            if requeued != 1:
                continue
            Event.objects.create(
                handoff=hop,
                kind="handoff.requeued",
                actor=ACTOR,
                created_at=now,
                data={**data, "reason": "unanswered", "accepted_at": hop.accepted_at.isoformat()},
            )
            result.requeued.append(hop.pk)
            broadcast.handoff_changed_on_commit(handoff_id=hop.pk, change="requeued")
            offers.dispatch_on_commit(team_ids=[team.pk])
            if owner is not None:
                broadcast.inbox_changed_on_commit(user_ids=[owner.user_id])
            if owner is not None:
                who = hop.customer_name or hop.customer
                broadcast.notify_user_on_commit(
                    user_id=owner.user_id,
                    text=f"The conversation with {who} went back to the queue: the customer "
                    f"waited {round(unanswered / 60)} min for a reply.",
                    level="error",
                )
