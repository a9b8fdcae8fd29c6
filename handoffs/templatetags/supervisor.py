"""Filters of the supervisors' pages (the floor and the transfer report)."""

from __future__ import annotations

from django import template

from handoffs.lifecycle.estimate import sentiment_from_score
from handoffs.supervision.charts import short_duration, tick_duration

register = template.Library()


@register.filter
def duration(secs) -> str:
    """Seconds as 42s, 3m 05s or 2h 10m."""
    return short_duration(None if secs in (None, "") else float(secs))


@register.filter
def limit(secs) -> str:
    """A threshold as 90s, 2m or 1h (whole units read fastest)."""
    return tick_duration(float(secs or 0))


@register.filter
def signed(score) -> str:
    """A sentiment score as +0.42 / -0.30."""
    return "–" if score is None else f"{float(score):+.2f}"


@register.filter
def sentiment_word(score) -> str:
    return "" if score is None else sentiment_from_score(float(score)).label


@register.filter
def sentiment_css(score) -> str:
    return "" if score is None else sentiment_from_score(float(score)).value


@register.filter
def heat(value: int, top: int) -> int:
    """0 (empty) .. 5 (the busiest cell): the matrix cell's shade."""
    if not value or not top:
        return 0
    return max(1, min(5, round(5 * value / top)))


@register.filter
def share(part: int, whole: int) -> int:
    """``part`` as a whole percentage of ``whole``."""
    return round(100 * part / whole) if whole else 0
