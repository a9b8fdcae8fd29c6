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

from django.db import connection
from django.utils import timezone

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


_HOURS = OpeningHours._meta.db_table
_HOURS_SQL = f"SELECT weekday, opens, closes FROM {_HOURS} WHERE team_id = %s"  # noqa: S608
_HOLIDAYS_SQL = f'SELECT "date" FROM {Holiday._meta.db_table} WHERE team_id = %s'  # noqa: S608


def _as_time(value: time | str) -> time:
    # SQLite hands back the stored text, PostgreSQL a time (values_list converts both).
    return value if isinstance(value, time) else time.fromisoformat(value)


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def schedule_for(team: Team | None) -> Schedule:
    """The team's hours and holidays; open around the clock if none.

    Two small statements written out: every intake reads them (``team_is_open``), and
    compiling the two ORM queries cost several times running them."""
    if team is None:
        return ALWAYS_OPEN
    weekly: dict[int, list[tuple[time, time]]] = {}
    with connection.cursor() as cursor:
        cursor.execute(_HOURS_SQL, [team.pk])
        for weekday, opens, closes in cursor.fetchall():
            weekly.setdefault(weekday, []).append((_as_time(opens), _as_time(closes)))
        cursor.execute(_HOLIDAYS_SQL, [team.pk])
        holidays = frozenset(_as_date(day) for (day,) in cursor.fetchall())
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
