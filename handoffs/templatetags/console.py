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


SUMMARY_PREFIX = re.compile(r"^(HANDOFF SUMMARY \([^)]*\)|HANDBACK to \S+ from \S+):\s*")


@register.filter
def summary_text(value: str) -> str:
    """A summary without the "HANDOFF SUMMARY (a → b):" / "HANDBACK to b from a:"
    prefix the card already says (in names people read)."""
    return SUMMARY_PREFIX.sub("", value or "")


INTERNAL_REASONS = {"transfer", "handback", "release", "shift handover"}
MEMORY_KINDS = {
    "issue": "Issue",
    "context": "Context",
    "account": "Account",
    "fact": "Fact",
    "profile": "Profile",
    "customer_profile": "Profile",
    "action": "The bot did",
    "tool": "The bot did",
    "tool_call": "The bot did",
    "handoff": "Handoff summary",
    "agent_note": "Private note",
    "chat_message": "Chat",
}


@register.filter
def stated_reason(value: str) -> str:
    """A hop's reason as a bot stated it; "" for the console's own (transfer ...)."""
    return "" if (value or "") in INTERNAL_REASONS else value


@register.filter
def display_name(value: str, names: dict) -> str:
    """A memory agent name (``human:alice``, a team slug) as people read it."""
    return (names or {}).get(value, value)


@register.filter
def memory_label(memory: dict, handoff) -> str:
    """Who a recalled memory came from, or what kind it is, in words: "Dave said",
    "The bot said", "Issue" (never the raw upper-case type)."""
    metadata = memory.get("metadata") or {}
    role = metadata.get("role") or ""
    author = str(metadata.get("agent") or "")
    if role in {"user", "customer"}:
        name = (getattr(handoff, "customer_name", "") or "").split()
        return f"{name[0]} said" if name else "The customer said"
    if role in {"assistant", "bot"}:
        return "An agent said" if author.startswith("human:") else "The bot said"
    kind = str(metadata.get("type") or memory.get("memory_type") or "")
    return MEMORY_KINDS.get(kind, kind.replace("_", " ").capitalize() or "Noted")


@register.filter
def agent_label(value: str) -> str:
    """``human:<username>`` as the colleague's name (one query); anything else as is."""
    if not (value or "").startswith("human:"):
        return value
    from handoffs.models import Agent

    agent = Agent.objects.select_related("user").filter(user__username=value[6:]).first()
    return agent.display_name if agent else value[6:]
