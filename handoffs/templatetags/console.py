import re

from django import template

register = template.Library()

SENTIMENT_ICONS = {"positive": "▲", "neutral": "●", "frustrated": "▼", "angry": "✖"}
URGENCY_ICONS = {"low": "○", "normal": "◐", "high": "●", "critical": "‼"}


@register.filter
def unix_ms(value) -> int:
    return int(value.timestamp() * 1000) if value else 0


@register.filter
def sentiment_icon(value: str) -> str:
    return SENTIMENT_ICONS.get(value, "●")


@register.filter
def urgency_icon(value: str) -> str:
    return URGENCY_ICONS.get(value, "◐")


@register.filter
def unix_to_datetime(value):
    import datetime as dt

    if value in (None, ""):
        return None
    return dt.datetime.fromtimestamp(int(value), tz=dt.UTC)


@register.filter
def score_label(value) -> str:
    from handoffs.lifecycle.estimate import sentiment_from_score

    return sentiment_from_score(float(value)).value if value is not None else ""


SUMMARY_PREFIX = re.compile(r"^HANDOFF SUMMARY \([^)]*\):\s*")


@register.filter
def summary_text(value: str) -> str:
    """A summary without the "HANDOFF SUMMARY (a → b):" prefix the card already says."""
    return SUMMARY_PREFIX.sub("", value or "")
