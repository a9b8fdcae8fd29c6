"""The customer's copy of the conversation: kept readable after resolve for
``TRANSCRIPT_RETENTION_DAYS``, downloadable as text or HTML, and sent by email (Django's
email framework) to an address the customer typed, at most
``TRANSCRIPT_EMAILS_PER_HOUR`` times an hour per conversation.

The customer never sees private notes. Customer and agent text is hostile: the HTML copy
is rendered from a template (autoescaped), the text copy is plain text.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone

from ..models import Conversation, Message, Sender


def visible_until(conversation: Conversation) -> datetime | None:
    """Until when a closed conversation's link still shows it (None: it is open)."""
    if conversation.closed_at is None:
        return None
    return conversation.closed_at + timedelta(days=settings.TRANSCRIPT_RETENTION_DAYS)


def is_readable(conversation: Conversation, now: datetime | None = None) -> bool:
    until = visible_until(conversation)
    return until is None or (now or timezone.now()) < until


def public_messages(conversation: Conversation) -> list[Message]:
    return list(
        conversation.messages.exclude(sender=Sender.NOTE)
        .select_related("attachment", "conversation")
        .order_by("seq")
    )


def speaker(message: Message) -> str:
    """How a message's author is named in the customer's copy."""
    if message.sender == Sender.CUSTOMER:
        return "You"
    if message.sender == Sender.BOT:
        return "Assistant"
    if message.sender == Sender.AGENT:
        return f"{message.author_name or 'Support'} (support)"
    return "Support"


def as_text(conversation: Conversation) -> str:
    zone = timezone.get_current_timezone()
    lines = [
        "Conversation with support",
        f"Started {timezone.localtime(conversation.created_at, zone):%Y-%m-%d %H:%M %Z}",
        "",
    ]
    for message in public_messages(conversation):
        stamp = timezone.localtime(message.created_at, zone).strftime("%Y-%m-%d %H:%M")
        if message.sender == Sender.SYSTEM:
            lines.append(f"[{stamp}] -- {message.body} --")
        else:
            lines.append(f"[{stamp}] {speaker(message)}:")
            lines.extend(f"  {line}" for line in message.body.splitlines())
            attachment = getattr(message, "attachment", None)
            if attachment is not None:
                lines.append(f"  [Attached: {attachment.describe}]")
        lines.append("")
    return "\n".join(lines)


def as_html(conversation: Conversation) -> str:
    messages = [(m, speaker(m)) for m in public_messages(conversation)]
    return render_to_string(
        "handoffs/customers/transcript.html",
        {"conversation": conversation, "entries": messages},
    )


class RateLimited(Exception):
    """Too many transcript emails for this conversation in the last hour."""


def email_transcript(*, conversation: Conversation, address: str) -> None:
    """Send the transcript to ``address`` (already validated); raises RateLimited."""
    key = f"transcript-email:{conversation.pk}"
    cache.add(key, 0, 3600)
    try:
        sent = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, 3600)
        sent = 1
    if sent > settings.TRANSCRIPT_EMAILS_PER_HOUR:
        raise RateLimited
    email = EmailMultiAlternatives(
        subject="Your conversation with support",
        body=as_text(conversation),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[address],
    )
    email.attach_alternative(as_html(conversation), "text/html")
    email.send()
