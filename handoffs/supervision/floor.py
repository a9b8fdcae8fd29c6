"""Reads for the supervisors' live floor, and who may see it.

The floor is small (the waiting queue, the open conversations, the agents), so the whole
summary is re-read and re-rendered for every floor event: once per event, in
``broadcast.publish_floor``, never once per watching socket.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Q
from django.template.loader import render_to_string
from django.utils import timezone

from ..access import agents as rights
from ..models import Agent, Event, Handoff, Presence, Status, Team
from . import routing

WAITING_SHOWN = 50
ALERTS_SHOWN = 8
ALERT_KINDS = (
    "sla.breach",
    "conversation.unanswered",
    "handoff.requeued",
    "handoff.reassigned",
)
PRESENCE_ORDER = {Presence.ONLINE: 0, Presence.AWAY: 1, Presence.OFFLINE: 2}


def supervisor_of(user) -> Agent | None:
    """The user's console profile if they may supervise (supervisor role, staff or
    superuser, with a profile); None otherwise."""
    if user is None or not user.is_authenticated:
        return None
    agent = Agent.objects.select_related("user").filter(user=user).first()
    if not rights.may_supervise(agent):
        return None
    return agent


@dataclass
class TeamRow:
    team: Team
    waiting: int = 0
    oldest: Handoff | None = None
    warns: int = 0
    breaches: int = 0
    online: int = 0
    away: int = 0


@dataclass
class WaitingRow:
    handoff: Handoff
    wait_secs: float
    level: str  # "ok", "warn" or "breach"


@dataclass
class StuckRow:
    handoff: Handoff
    reason: str


@dataclass
class AgentRow:
    agent: Agent
    open: int
    teams: list[str]

    @property
    def load_pct(self) -> int:
        capacity = self.agent.capacity or 1
        return min(100, round(100 * self.open / capacity))


@dataclass
class FloorSummary:
    now: datetime
    teams: list[TeamRow] = field(default_factory=list)
    waiting: list[WaitingRow] = field(default_factory=list)
    waiting_total: int = 0
    oldest: WaitingRow | None = None
    breaches: int = 0
    warns: int = 0
    stuck: list[StuckRow] = field(default_factory=list)
    agents: list[AgentRow] = field(default_factory=list)
    presence_counts: dict[str, int] = field(default_factory=dict)
    alerts: list[Event] = field(default_factory=list)
    routing: routing.FloorRouting | None = None  # offers and declines (offer routing)


def _level(handoff: Handoff, wait_secs: float) -> str:
    team = handoff.team
    if team is None:
        return "ok"
    if wait_secs >= team.breach_after_secs:
        return "breach"
    if wait_secs >= team.warn_after_secs:
        return "warn"
    return "ok"


def floor_summary(*, now: datetime | None = None) -> FloorSummary:
    """Waiting per team, the oldest wait, SLA breaches, stuck conversations and agents."""
    now = now or timezone.now()
    summary = FloorSummary(now=now)
    rows = {team.pk: TeamRow(team=team) for team in Team.objects.all()}

    waiting = list(
        Handoff.objects.filter(status=Status.WAITING, team__isnull=False)
        .select_related("team", "assigned_to__user")
        .order_by("created_at", "pk")
    )
    for handoff in waiting:
        wait = (now - handoff.created_at).total_seconds()
        level = _level(handoff, wait)
        row = rows.get(handoff.team_id)
        if row is not None:
            row.waiting += 1
            row.oldest = row.oldest or handoff
            row.warns += level == "warn"
            row.breaches += level == "breach"
        summary.warns += level == "warn"
        summary.breaches += level == "breach"
        if len(summary.waiting) < WAITING_SHOWN:
            summary.waiting.append(WaitingRow(handoff=handoff, wait_secs=wait, level=level))
    summary.waiting_total = len(waiting)
    summary.oldest = summary.waiting[0] if summary.waiting else None

    agents = list(
        Agent.objects.select_related("user")
        .prefetch_related("teams")
        .annotate(open=Count("accepted", filter=Q(accepted__status=Status.ACCEPTED)))
    )
    agents.sort(key=lambda a: (PRESENCE_ORDER.get(a.presence, 3), a.user.get_username()))
    counts = dict.fromkeys(Presence.values, 0)
    for agent in agents:
        counts[agent.presence] = counts.get(agent.presence, 0) + 1
        teams = sorted(team.slug for team in agent.teams.all())
        summary.agents.append(AgentRow(agent=agent, open=agent.open, teams=teams))
        for team in agent.teams.all():
            row = rows.get(team.pk)
            if row is not None and agent.presence == Presence.ONLINE:
                row.online += 1
            elif row is not None and agent.presence == Presence.AWAY:
                row.away += 1
    # The default queue without members of its own is served by every agent.
    staffed = set(
        Team.objects.with_has_agents().filter(has_agents=True).values_list("pk", flat=True)
    )
    for row in rows.values():
        if row.team.is_default and row.team.pk not in staffed:
            row.online = counts.get(Presence.ONLINE, 0)
            row.away = counts.get(Presence.AWAY, 0)
    summary.presence_counts = counts

    accepted = (
        Handoff.objects.filter(status=Status.ACCEPTED)
        .filter(~Q(accepted_by__presence=Presence.ONLINE) | Q(unanswered_alerted_at__isnull=False))
        .select_related("team", "accepted_by__user")
        .order_by("accepted_at", "pk")
    )
    for handoff in accepted:
        agent = handoff.accepted_by
        if agent is not None and agent.presence != Presence.ONLINE:
            reason = f"{agent} is {agent.get_presence_display().lower()}"
        else:
            reason = "customer not answered"
        summary.stuck.append(StuckRow(handoff=handoff, reason=reason))

    summary.teams = sorted(rows.values(), key=lambda r: (-r.waiting, r.team.slug))
    summary.alerts = list(
        Event.objects.filter(kind__in=ALERT_KINDS)
        .select_related("handoff")
        .order_by("-created_at", "-pk")[:ALERTS_SHOWN]
    )
    summary.routing = routing.floor_routing(now=now)
    return summary


def render_floor_summary() -> str:
    """The floor summary as the out-of-band fragment every floor socket receives."""
    return render_to_string(
        "handoffs/supervision/floor.html#floor-summary", {"summary": floor_summary(), "oob": True}
    )


def reassign_choices(*, handoff: Handoff) -> list[AgentRow]:
    """Agents a supervisor may move this handoff to: the team's first, online first."""
    agents = list(
        Agent.objects.select_related("user")
        .prefetch_related("teams")
        .annotate(open=Count("accepted", filter=Q(accepted__status=Status.ACCEPTED)))
        .exclude(pk=handoff.accepted_by_id)
    )

    def order(agent: Agent) -> tuple:
        in_team = any(team.pk == handoff.team_id for team in agent.teams.all())
        return (not in_team, PRESENCE_ORDER.get(agent.presence, 3), agent.open, str(agent))

    agents.sort(key=order)
    return [
        AgentRow(agent=a, open=a.open, teams=sorted(t.slug for t in a.teams.all())) for a in agents
    ]
