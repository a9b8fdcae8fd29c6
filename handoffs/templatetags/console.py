import re

from django import template

register = template.Library()

SENTIMENT_ICONS = {"positive": "▲", "neutral": "●", "frustrated": "▼", "angry": "✖"}
URGENCY_ICONS = {"low": "○", "normal": "◐", "high": "●", "critical": "‼"}


# How ``when`` writes a time; static/handoffs/localtime.js writes the same strings in
# the viewer's zone (pushed frames are rendered once for everyone, in no one's zone).
WHEN_FORMATS = {"time": "H:i", "datetime": "M j, H:i", "date": "j F Y", "full": "Y-m-d H:i"}


@register.filter
def when(value, fmt: str = "time"):
    """A ``<time>`` element in the active zone (``desk.timezones`` activates the
    agent's), which the browser rewrites in the viewer's zone (``localtime.js``)."""
    from django.utils import dateformat, timezone
    from django.utils.html import format_html

    if not value:
        return ""
    fmt = fmt if fmt in WHEN_FORMATS else "time"
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return format_html(
        '<time datetime="{}" data-fmt="{}">{}</time>',
        value.isoformat(),
        fmt,
        dateformat.format(local, WHEN_FORMATS[fmt]),
    )


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


@register.filter(is_safe=True)
def chat_text(value) -> str:
    """A chat message's text as HTML: escaped, URLs as safe links, line breaks kept.

    Django's ``urlize`` escapes everything that isn't a link and links ``http(s)://`` and
    ``www.`` addresses; nh3 (the Ammonia sanitiser) then keeps only ``<a href>`` with an
    http/https URL and ``<br>``, opens links in a new tab and sets
    ``rel="noopener noreferrer nofollow"``. User HTML is never rendered: it was escaped
    before any of this, so ``<b>`` shows as text."""
    import nh3
    from django.utils.html import urlize
    from django.utils.safestring import mark_safe

    html = urlize(str(value or ""), nofollow=False, autoescape=True)
    html = html.replace("\r\n", "\n").replace("\n", "<br>")
    cleaned = nh3.clean(
        html,
        tags={"a", "br"},
        attributes={"a": {"href"}},
        url_schemes={"http", "https"},
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
    )
    return mark_safe(cleaned)  # noqa: S308 - built from escaped text, then sanitised


@register.filter
def attachment_of(message):
    """The message's attachment or None (no exception for a message without one)."""
    from handoffs.models import Message

    try:
        return message.attachment
    except (Message.attachment.RelatedObjectDoesNotExist, AttributeError):
        return None


@register.simple_tag
def attachment_url(message, audience: str, variant: str = "file") -> str:
    """Where this audience fetches the file: the customer through their link's
    rights-checking view, people through the session's (``desk.composer``)."""
    from django.urls import reverse

    attachment = attachment_of(message)
    if attachment is None:
        return ""
    name = "customer-file" if audience == "customer" else "agent-file"
    if audience == "customer":
        args = [message.conversation.token, attachment.public_id]
    else:
        args = [attachment.public_id]
    url = reverse(name, args=args)
    return f"{url}?v=thumb" if variant == "thumb" else url


@register.simple_tag
def message_max_chars() -> int:
    from handoffs.lifecycle.messages import max_message_chars

    return max_message_chars()


@register.simple_tag
def attachment_max_bytes() -> int:
    from django.conf import settings

    return int(settings.ATTACHMENT_MAX_BYTES)
