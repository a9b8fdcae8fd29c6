"""Opening hours of a team: open now?, back when?, and open seconds between two moments.

A team's weekly hours (``OpeningHours`` rows) and holidays are in its own time zone
(``Team.time_zone``). A team with neither is open around the clock. SLA timers count
only open seconds (``open_seconds``), so they pause outside hours; a handoff queued or a
customer message sent while the team is closed is marked "arrived out of hours".

Every function takes the moment as an argument (or reads ``timezone.now()``), so tests
drive it with a frozen clock. Arithmetic is done in UTC: subtracting two datetimes that
share a ``ZoneInfo`` is wall-clock arithmetic in Python and would be an hour off across
a daylight-saving change.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone

from ..compiled import Compiled
from ..models import Holiday, OpeningHours, Team

HORIZON_DAYS = 400  # how far ahead "back at" looks (a year of holidays and then some)
MIDNIGHT = time(0)


@dataclass(frozen=True)
class Schedule:
    tz: ZoneInfo
    weekly: dict[int, list[tuple[time, time]]] = field(default_factory=dict)
    holidays: frozenset[date] = frozenset()

    @property
    def always_open(self) -> bool:
        return not self.weekly and not self.holidays


ALWAYS_OPEN = Schedule(tz=ZoneInfo("UTC"))


def team_zone(team: Team) -> ZoneInfo:
    try:
        return ZoneInfo(team.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


# Compiled once (``handoffs.compiled``): every intake reads them (``team_is_open``), and
# compiling the two ORM queries anew cost several times running them.
_hours_of = Compiled(
    lambda team_ids: OpeningHours.objects.filter(team_id__in=team_ids).values_list(
        "weekday", "opens", "closes"
    )
)
_holidays_of = Compiled(
    lambda team_ids: Holiday.objects.filter(team_id__in=team_ids).values_list("date", flat=True)
)


def schedule_for(team: Team | None) -> Schedule:
    """The team's hours and holidays (two small queries); open around the clock if none."""
    if team is None:
        return ALWAYS_OPEN
    weekly: dict[int, list[tuple[time, time]]] = {}
    for weekday, opens, closes in _hours_of([team.pk]):
        weekly.setdefault(weekday, []).append((opens, closes))
    holidays = frozenset(_holidays_of([team.pk]))
    for periods in weekly.values():
        periods.sort()
    return Schedule(tz=team_zone(team), weekly=weekly, holidays=holidays)


def _day_periods(schedule: Schedule, day: date) -> Iterator[tuple[datetime, datetime]]:
    """The open periods of one local day, as UTC datetimes."""
    if day in schedule.holidays:
        return
    periods = schedule.weekly.get(day.weekday(), []) if schedule.weekly else [(MIDNIGHT, MIDNIGHT)]
    for opens, closes in periods:
        start = datetime.combine(day, opens, tzinfo=schedule.tz)
        end_day = day + timedelta(days=1) if closes == MIDNIGHT else day
        end = datetime.combine(end_day, closes, tzinfo=schedule.tz)
        yield start.astimezone(UTC), end.astimezone(UTC)


def _periods(schedule: Schedule, start: datetime, days: int) -> Iterator[tuple[datetime, datetime]]:
    """Open periods from the local day before ``start`` on, for ``days`` days."""
    first = start.astimezone(schedule.tz).date() - timedelta(days=1)
    for offset in range(days + 2):
        yield from _day_periods(schedule, first + timedelta(days=offset))


def is_open(schedule: Schedule, at: datetime | None = None) -> bool:
    """Whether the team is open at ``at`` (default: now)."""
    if schedule.always_open:
        return True
    at = (at or timezone.now()).astimezone(UTC)
    return any(start <= at < end for start, end in _periods(schedule, at, 1))


def next_open(schedule: Schedule, at: datetime | None = None) -> datetime | None:
    """When the team is next open at or after ``at`` (in its time zone); None if never."""
    at = (at or timezone.now()).astimezone(UTC)
    if schedule.always_open:
        return at.astimezone(schedule.tz)
    for start, end in _periods(schedule, at, HORIZON_DAYS):
        if end > at:
            return max(start, at).astimezone(schedule.tz)
    return None


def open_seconds(schedule: Schedule, start: datetime, end: datetime) -> float:
    """Seconds between ``start`` and ``end`` during which the team was open."""
    if end <= start:
        return 0.0
    if schedule.always_open:
        return (end - start).total_seconds()
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    days = (end - start).days + 1
    total = 0.0
    for opens, closes in _periods(schedule, start, days):
        overlap = (min(closes, end) - max(opens, start)).total_seconds()
        if overlap > 0:
            total += overlap
    return total


def team_is_open(team: Team | None, at: datetime | None = None) -> bool:
    """``is_open`` for a team (reads its schedule)."""
    return is_open(schedule_for(team), at)
