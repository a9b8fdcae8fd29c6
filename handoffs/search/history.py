"""The closed hops an agent may read (``access.agents.history_filter``), filtered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from ..access import agents as rights
from ..models import Agent, Handoff, Team


@dataclass(frozen=True)
class HistoryFilters:
    """What the history page narrows to; ``None`` means any. Dates are whole days in
    the viewer's current time zone, both ends included."""

    team: Team | None = None
    agent: Agent | None = None
    outcome: str | None = None
    since: date | None = None
    until: date | None = None


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def history_for(*, agent: Agent, filters: HistoryFilters | None = None) -> QuerySet[Handoff]:
    """The closed hops ``agent`` may open read-only, most recently closed first."""
    filters = filters or HistoryFilters()
    hops = Handoff.objects.filter(rights.history_filter(agent))
    if filters.team is not None:
        hops = hops.filter(team=filters.team)
    if filters.agent is not None:
        hops = hops.filter(accepted_by=filters.agent)
    if filters.outcome:
        hops = hops.filter(status=filters.outcome)
    if filters.since is not None:
        hops = hops.filter(closed_at__gte=_day_start(filters.since))
    if filters.until is not None:
        hops = hops.filter(closed_at__lt=_day_start(filters.until + timedelta(days=1)))
    return hops.select_related("team", "accepted_by__user", "conversation").order_by(
        "-closed_at", "-pk"
    )


def history_teams(agent: Agent) -> QuerySet[Team]:
    """The teams the history page offers as a filter: every team for supervisors, else
    the teams the agent serves."""
    if rights.sees_every_queue(agent):
        return Team.objects.all()
    return Team.objects.served_by(agent)


def history_agents(agent: Agent) -> QuerySet[Agent]:
    """The people the history page offers as a filter: the viewer and their teams'
    members (everyone for supervisors)."""
    people = Agent.objects.select_related("user").filter(user__is_active=True)
    if rights.sees_every_queue(agent):
        return people
    teams = rights.served_team_ids(agent)
    return people.filter(pk__in=Agent.objects.filter(teams__in=teams).values("pk")) | people.filter(
        pk=agent.pk
    )
