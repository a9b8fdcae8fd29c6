"""Offer routing: a waiting hop of an ``offer`` team is offered to one free agent.

A team's ``routing_mode`` is ``pull`` (agents pick from the queue, as before) or
``offer``. In offer mode every waiting hop that is not assigned to a named person is
offered to one agent who is

- a member of the team with the plain agent role, active, ``online`` and on shift;
- under capacity: open conversations + live offers held < ``Agent.capacity``;
- has every skill the hop requires (``Handoff.required_skills``); after the team's
  ``skill_fallback_secs`` a hop nobody skilled is free for goes to anyone
  (``Offer.skill_fallback``, shown on the card);
- hasn't declined or missed this hop in the last ``HANDOFF_OFFER_RETRY_SECS``.

Among them the team's ``routing_policy`` picks: ``least_busy`` (fewest open
conversations + offers, then longest since their last offer) or ``round_robin``
(longest since their last offer). The agent accepts (the ordinary atomic accept, which
in offer mode also requires holding the offer), declines with a reason, or lets it time
out (``offer_timeout_secs``; the agent is then set away if the team says so); each
moves the hop on to the next agent. With nobody free the hop waits and is offered as
soon as someone frees up or comes online.

Claims, so that any number of Daphnes and workers can route at once:

- the live offer *is* the hop's ``offered_to`` column, set by one conditional UPDATE
  (``... WHERE status = 'waiting' AND offered_to IS NULL AND assigned_to IS NULL``)
  checked by its row count: exactly one live offer per hop (and a partial unique index
  on ``Offer`` rows as a second guard);
- an agent's capacity is checked with their row locked (``SELECT ... FOR UPDATE SKIP
  LOCKED``: a busy row is skipped, never waited on, so two routers can't deadlock);
  every write that adds to an agent's load (offers, accepts, reassigns) locks that row;
- answering an offer (decline, expiry, withdrawal) is a conditional UPDATE on the same
  columns (``offered_to = <agent>``), so an offer ends once.

Whichever process sees a change first routes: intake, accept and the endings,
presence changes, declines, and the worker (``run_due``: expiries, skill fallbacks,
and a sweep that catches anything a lost doorbell missed). Each runs after its own
transaction commits (``dispatch_on_commit``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from ..compiled import Compiled
from ..models import (
    Agent,
    Event,
    Handoff,
    Offer,
    OfferStatus,
    Presence,
    Role,
    Status,
    Team,
    parse_skills,
)
from ..realtime import broadcast
from .errors import HandoffError, HandoffNotFound
from .presence import agent_set_presence, agents_set_presence

logger = logging.getLogger(__name__)

OFFER = "offer"
PULL = "pull"
ACTOR = "system"
DECLINE_REASONS = {
    "busy": "Busy with another customer",
    "skill": "Not my skill or language",
    "break": "Going on a break",
    "other": "Other",
}


# ---------------------------------------------------------------- reads
def _load_subqueries() -> dict:
    open_hops = (
        Handoff.objects.filter(accepted_by=OuterRef("pk"), status=Status.ACCEPTED)
        .order_by()
        .values("accepted_by")
        .annotate(n=Count("pk"))
        .values("n")
    )
    offered = (
        Handoff.objects.filter(offered_to=OuterRef("pk"), status=Status.WAITING)
        .order_by()
        .values("offered_to")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return {
        "open_count": Coalesce(Subquery(open_hops), Value(0)),
        "offer_count": Coalesce(Subquery(offered), Value(0)),
    }


def loads_of(agent_ids: list[int]) -> dict[int, int]:
    """Open conversations + live offers held, per agent (two grouped counts)."""
    loads: dict[int, int] = {}
    if not agent_ids:
        return loads
    for column, status in (("accepted_by", Status.ACCEPTED), ("offered_to", Status.WAITING)):
        rows = (
            Handoff.objects.filter(**{f"{column}__in": agent_ids}, status=status)
            .order_by()
            .values(column)
            .annotate(n=Count("pk"))
            .values_list(column, "n")
        )
        for agent_id, n in rows:
            loads[agent_id] = loads.get(agent_id, 0) + n
    return loads


def agent_load(agent_id: int, *, excluding_hop: int | None = None) -> int:
    """Open conversations + live offers held (the capacity ``Agent.capacity`` bounds)."""
    hops = Handoff.objects.filter(
        Q(accepted_by=agent_id, status=Status.ACCEPTED)
        | Q(offered_to=agent_id, status=Status.WAITING)
    )
    if excluding_hop is not None:
        hops = hops.exclude(pk=excluding_hop)
    return hops.count()


def is_offer_team(team: Team | None) -> bool:
    return team is not None and team.routing_mode == OFFER


def offer_routed(hop: Handoff) -> bool:
    """Whether this waiting hop is routed by offers (its team's mode, not assigned)."""
    return hop.status == Status.WAITING and hop.assigned_to_id is None and is_offer_team(hop.team)


def _retry_secs() -> int:
    return int(getattr(settings, "HANDOFF_OFFER_RETRY_SECS", 120))


def _fallback_due(hop: Handoff, team: Team, now: datetime) -> bool:
    if not team.skill_fallback_secs:
        return False
    return (now - hop.created_at).total_seconds() >= team.skill_fallback_secs


def candidates(hop: Handoff, team: Team, now: datetime) -> tuple[list[Agent], bool]:
    """The free agents who may be offered ``hop``, best first, and whether they are a
    skill fallback (nobody with the required skills is free and the fallback is due)."""
    refused = Offer.objects.filter(
        handoff=hop,
        status__in=(OfferStatus.DECLINED, OfferStatus.EXPIRED),
        answered_at__gte=now - timedelta(seconds=_retry_secs()),
    ).values("agent_id")
    pool = list(
        Agent.objects.filter(
            teams=team,
            role=Role.AGENT,
            presence=Presence.ONLINE,
            shift_ended_at=None,
            user__is_active=True,
        )
        .exclude(pk__in=refused)
        .select_related("user")
    )
    loads = loads_of([a.pk for a in pool])
    free = []
    for agent in pool:
        agent.load = loads.get(agent.pk, 0)
        if agent.load < agent.capacity:
            free.append(agent)
    never = datetime.min.replace(tzinfo=UTC)
    if team.routing_policy == "round_robin":
        free.sort(key=lambda a: (a.last_routed_at or never, a.pk))
    else:
        free.sort(key=lambda a: (a.load, a.last_routed_at or never, a.pk))
    required = set(parse_skills(hop.required_skills))
    if not required:
        return free, False
    skilled = [a for a in free if required <= a.skill_set]
    if skilled or not _fallback_due(hop, team, now):
        return skilled, False
    return free, True


# ---------------------------------------------------------------- the claim
# The claim, replaceable by tests only (``tests/lifecycle/test_offer_race.py`` swaps in a
# naive read-then-save to show the race test catches it).
def _claim(hop: Handoff, agent: Agent, *, now: datetime, expires: datetime) -> bool:
    return (
        Handoff.objects.filter(
            pk=hop.pk, status=Status.WAITING, offered_to=None, assigned_to=None
        ).update(offered_to=agent, offer_expires_at=expires)
        == 1
    )


def _lock_free_agent(agent: Agent, hop: Handoff) -> bool:
    """Lock the agent's row (skipping it if another router holds it) and recheck that
    they are still online and under capacity, reading what has committed since."""
    locked = (
        Agent.objects.select_for_update(skip_locked=True)
        .filter(pk=agent.pk, presence=Presence.ONLINE, shift_ended_at=None)
        .values_list("capacity", flat=True)
        .first()
    )
    if locked is None:
        return False
    return agent_load(agent.pk) < locked


def offer_hop(*, handoff_id: int, now: datetime | None = None) -> Offer | None:
    """Offer one waiting hop to the best free agent; None if it isn't offer-routed, is
    already offered, or nobody is free (it then waits for the next change).

    The pick is read outside any transaction (a hint); each attempt is then one short
    transaction that locks the agent's row, rechecks their capacity and claims the hop
    with the conditional UPDATE, so a stale pick can only fail, never double-book."""
    now = now or timezone.now()
    hop = (
        Handoff.objects.select_related("team")
        .filter(pk=handoff_id, status=Status.WAITING, offered_to=None, assigned_to=None)
        .first()
    )
    if hop is None or not is_offer_team(hop.team):
        return None
    team = hop.team
    agents, fallback = candidates(hop, team, now)
    for agent in agents:
        try:
            with transaction.atomic():
                if not _lock_free_agent(agent, hop):
                    continue
                expires = now + timedelta(seconds=team.offer_timeout_secs)
                if not _claim(hop, agent, now=now, expires=expires):
                    return None  # someone else offered (or took) it meanwhile
                offer = Offer.objects.create(
                    handoff=hop,
                    agent=agent,
                    team=team,
                    skill_fallback=fallback,
                    created_at=now,
                    expires_at=expires,
                )
                Agent.objects.filter(pk=agent.pk).update(last_routed_at=now)
                Event.objects.create(
                    handoff=hop,
                    kind="offer.made",
                    actor=ACTOR,
                    created_at=now,
                    data={
                        "agent": agent.user.get_username(),
                        "offer": offer.pk,
                        "team": team.slug,
                        "policy": team.routing_policy,
                        "skill_fallback": fallback,
                        "expires_in": team.offer_timeout_secs,
                    },
                )
                broadcast.offers_changed_on_commit(
                    user_ids=[agent.user_id], handoff_id=hop.pk, change="offered"
                )
                return offer
        except IntegrityError:
            return None  # a live offer row exists: another router won
    return None


def dispatch(*, team_ids: Iterable[int] | None = None, now: datetime | None = None) -> int:
    """Offer every offerable waiting hop (most urgent, most important, oldest first) of
    these teams (default: every offer team) while someone is free; returns offers made."""
    now = now or timezone.now()
    teams = Team.objects.filter(routing_mode=OFFER)
    if team_ids is not None:
        teams = teams.filter(pk__in=list(team_ids))
    made = 0
    for team_id in teams.values_list("pk", flat=True):
        hops = (
            Handoff.objects.filter(
                team_id=team_id, status=Status.WAITING, offered_to=None, assigned_to=None
            )
            .order_by("-urgency_rank", "-importance", "created_at", "pk")
            .values_list("pk", "required_skills")
        )
        for pk, required in hops[:500]:
            if offer_hop(handoff_id=pk, now=now) is not None:
                made += 1
            elif not required and not _anyone_free(team_id):
                break  # nobody is free for a hop without skills: nobody for the rest
    return made


def _anyone_free(team_id: int) -> bool:
    return (
        Agent.objects.filter(
            teams=team_id, role=Role.AGENT, presence=Presence.ONLINE, shift_ended_at=None
        )
        .annotate(**_load_subqueries())
        .filter(capacity__gt=F("open_count") + F("offer_count"))
        .exists()
    )


def dispatch_on_commit(*, team_ids: Iterable[int] | None = None) -> None:
    """Route after the current transaction commits (the change that freed or added work)."""
    ids = None if team_ids is None else list(team_ids)
    if ids is not None and not ids:
        return

    def run() -> None:
        try:
            dispatch(team_ids=ids)
        except Exception:
            # The worker's sweep (run_due) routes whatever this missed.
            logger.exception("offer dispatch failed")

    transaction.on_commit(run, robust=True)


def agent_team_ids(agent: Agent) -> list[int]:
    return list(agent.teams.filter(routing_mode=OFFER).values_list("pk", flat=True))


# ---------------------------------------------------------------- answers
def _end_offer(
    *,
    hop_id: int,
    agent_id: int,
    status: str,
    now: datetime,
    reason: str = "",
    due: datetime | None = None,
) -> Offer | None:
    """End the live offer of ``hop_id`` held by ``agent_id`` (conditional UPDATE); None
    if it isn't (any more) theirs. Runs inside the caller's transaction."""
    hop_filter = Handoff.objects.filter(pk=hop_id, offered_to=agent_id)
    if due is not None:
        hop_filter = hop_filter.filter(offer_expires_at__lte=due)
    if hop_filter.update(offered_to=None, offer_expires_at=None) != 1:
        return None
    offer = (
        Offer.objects.select_for_update()
        .filter(handoff_id=hop_id, agent_id=agent_id, status=OfferStatus.LIVE)
        .first()
    )
    if offer is not None:
        Offer.objects.filter(pk=offer.pk).update(status=status, answered_at=now, reason=reason)
        offer.status, offer.answered_at, offer.reason = status, now, reason
    return offer


def offer_decline(*, offer_id: int, agent: Agent, reason: str, note: str = "") -> Offer:
    """Decline one's live offer with a reason; the hop goes to the next agent.

    Raises HandoffError for an unknown reason, HandoffNotFound when the offer is not
    (any more) this agent's live offer.
    """
    if reason not in DECLINE_REASONS:
        raise HandoffError(f"reason must be one of {', '.join(DECLINE_REASONS)}")
    note = (note or "").strip()
    if reason == "other" and not note:
        raise HandoffError("Say why you decline (other).")
    if len(note) > 200:
        raise HandoffError("The reason is longer than 200 characters.")
    text = DECLINE_REASONS[reason] + (f": {note}" if note else "")
    now = timezone.now()
    with transaction.atomic():
        offer = Offer.objects.filter(pk=offer_id, agent=agent, status=OfferStatus.LIVE).first()
        if offer is None:
            raise HandoffNotFound("This offer is no longer yours to answer.")
        ended = _end_offer(
            hop_id=offer.handoff_id,
            agent_id=agent.pk,
            status=OfferStatus.DECLINED,
            now=now,
            reason=text,
        )
        if ended is None:
            raise HandoffNotFound("This offer is no longer yours to answer.")
        Event.objects.create(
            handoff_id=offer.handoff_id,
            kind="offer.declined",
            actor=agent.memory_name,
            created_at=now,
            data={
                "agent": agent.user.get_username(),
                "offer": offer.pk,
                "reason": reason,
                "text": text,
                "seconds": round((now - offer.created_at).total_seconds(), 3),
            },
        )
        broadcast.offers_changed_on_commit(
            user_ids=[agent.user_id], handoff_id=offer.handoff_id, change="declined"
        )
        dispatch_on_commit(team_ids=[offer.team_id] if offer.team_id else None)
    return ended


def on_offer_accepted(*, hop: Handoff, agent: Agent, now: datetime) -> None:
    """The accept took the hop (inside its transaction): close its live offer row as
    accepted (this agent's) or withdrawn (a supervisor took someone else's offer)."""
    live = Offer.objects.filter(handoff=hop, status=OfferStatus.LIVE).select_related("agent")
    for offer in live:
        mine = offer.agent_id == agent.pk
        Offer.objects.filter(pk=offer.pk, status=OfferStatus.LIVE).update(
            status=OfferStatus.ACCEPTED if mine else OfferStatus.WITHDRAWN, answered_at=now
        )
        if mine:
            Event.objects.create(
                handoff=hop,
                kind="offer.accepted",
                actor=agent.memory_name,
                created_at=now,
                data={
                    "agent": agent.user.get_username(),
                    "offer": offer.pk,
                    "seconds": round((now - offer.created_at).total_seconds(), 3),
                },
            )
        broadcast.offers_changed_on_commit(
            user_ids=[offer.agent.user_id], handoff_id=hop.pk, change="accepted"
        )


def withdraw_offer(*, hop: Handoff, now: datetime | None = None, why: str = "") -> None:
    """The hop moved (reassigned, moved to a queue, closed): end its live offer, if any.
    Runs inside the caller's transaction, after the caller's own conditional UPDATE."""
    now = now or timezone.now()
    Handoff.objects.filter(pk=hop.pk).exclude(offered_to=None).update(
        offered_to=None, offer_expires_at=None
    )
    for offer in Offer.objects.filter(handoff=hop, status=OfferStatus.LIVE).select_related("agent"):
        Offer.objects.filter(pk=offer.pk, status=OfferStatus.LIVE).update(
            status=OfferStatus.WITHDRAWN, answered_at=now, reason=why[:300]
        )
        broadcast.offers_changed_on_commit(
            user_ids=[offer.agent.user_id], handoff_id=hop.pk, change="withdrawn"
        )


def withdraw_agent_offers(*, agent: Agent, why: str) -> list[int]:
    """The agent went away or offline: their live offers go to the next agent."""
    now = timezone.now()
    hops: list[int] = []
    with transaction.atomic():
        for hop_id in Handoff.objects.filter(offered_to=agent, status=Status.WAITING).values_list(
            "pk", flat=True
        ):
            if _end_offer(
                hop_id=hop_id, agent_id=agent.pk, status=OfferStatus.WITHDRAWN, now=now, reason=why
            ):
                hops.append(hop_id)
                Event.objects.create(
                    handoff_id=hop_id,
                    kind="offer.withdrawn",
                    actor=ACTOR,
                    created_at=now,
                    data={"agent": agent.user.get_username(), "reason": why},
                )
        if hops:
            broadcast.offers_changed_on_commit(
                user_ids=[agent.user_id], handoff_id=None, change="withdrawn"
            )
    return hops


def set_presence(*, agent: Agent, presence: str, actor: str | None = None) -> bool:
    """``presence.agent_set_presence``, then route: coming online gets offers at once;
    going away or offline hands the agent's live offers to the next agent."""
    with transaction.atomic():
        changed = agent_set_presence(agent=agent, presence=presence, actor=actor)
        if changed and presence != Presence.ONLINE:
            withdraw_agent_offers(agent=agent, why=f"went {presence}")
        if changed:
            dispatch_on_commit(team_ids=agent_team_ids(agent))
    return changed


def set_presence_many(*, agents: list[Agent], presence: str, actor: str | None = None) -> list:
    """``set_presence`` for several agents at once (sockets opening together): one
    transaction, one routing pass for their teams. Returns the agents that changed."""
    if len(agents) == 1:
        changed_one = set_presence(agent=agents[0], presence=presence, actor=actor)
        return list(agents) if changed_one else []
    with transaction.atomic():
        changed = agents_set_presence(agents=agents, presence=presence, actor=actor)
        if changed and presence != Presence.ONLINE:
            for agent in changed:
                withdraw_agent_offers(agent=agent, why=f"went {presence}")
        if changed:
            dispatch_on_commit(team_ids=set(_offer_teams_of([a.pk for a in changed])))
    return changed


# Compiled once (``handoffs.compiled``): every batch of connects runs it with its agents.
_offer_teams_of = Compiled(
    lambda agent_ids: Team.agents.through.objects.filter(
        agent_id__in=agent_ids, team__routing_mode=OFFER
    ).values_list("team_id", flat=True)
)


# ---------------------------------------------------------------- the worker's pass
@dataclass
class OfferPass:
    expired: list[int] = field(default_factory=list)
    away: list[int] = field(default_factory=list)
    offered: int = 0


def expire_due(now: datetime | None = None) -> OfferPass:
    """End every offer past its time (once each, however many workers run)."""
    now = now or timezone.now()
    result = OfferPass()
    due = Handoff.objects.filter(
        status=Status.WAITING, offered_to__isnull=False, offer_expires_at__lte=now
    ).values_list("pk", "offered_to", "team_id")
    missed_by: dict[int, int] = {}
    for hop_id, agent_id, _team_id in list(due[:1000]):
        with transaction.atomic():
            offer = _end_offer(
                hop_id=hop_id, agent_id=agent_id, status=OfferStatus.EXPIRED, now=now, due=now
            )
            if offer is None:
                continue
            agent = Agent.objects.select_related("user").get(pk=agent_id)
            Event.objects.create(
                handoff_id=hop_id,
                kind="offer.expired",
                actor=ACTOR,
                created_at=now,
                data={
                    "agent": agent.user.get_username(),
                    "offer": offer.pk,
                    "seconds": round((now - offer.created_at).total_seconds(), 3),
                },
            )
            broadcast.offers_changed_on_commit(
                user_ids=[agent.user_id], handoff_id=hop_id, change="expired"
            )
            result.expired.append(hop_id)
            if (
                offer.team_id
                and Team.objects.filter(pk=offer.team_id, away_after_missed_offer=True).exists()
            ):
                missed_by[agent_id] = hop_id
    # Set away in transactions of their own: never an agent row lock while holding a hop's.
    for agent_id in missed_by:
        agent = Agent.objects.select_related("user").get(pk=agent_id)
        if agent.presence == Presence.ONLINE and set_presence(
            agent=agent, presence=Presence.AWAY, actor=ACTOR
        ):
            result.away.append(agent_id)
            broadcast.notify_user_on_commit(
                user_id=agent.user_id,
                text="You missed an offer, so your status is now Away. Set yourself Online "
                "to get offers again.",
                level="error",
            )
    return result


def run_due(now: datetime | None = None) -> OfferPass:
    """The worker's pass: expire due offers, then route every offer team (which also
    makes skill fallbacks that came due and anything a lost doorbell missed)."""
    result = expire_due(now)
    result.offered = dispatch(now=now)
    if result.expired or result.offered:
        broadcast.publish_floor()
    return result


# ---------------------------------------------------------------- for pages
def live_offers_for(agent: Agent) -> list[Offer]:
    """The agent's live offers, oldest first, with their hops (the offer panel)."""
    return list(
        Offer.objects.filter(agent=agent, status=OfferStatus.LIVE, handoff__offered_to=agent)
        .select_related("handoff", "handoff__team")
        .order_by("created_at", "pk")
    )
