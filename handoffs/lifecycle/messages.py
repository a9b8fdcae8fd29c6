"""Messages of the human-side chat, and the conversation a hop belongs to.

A message is committed (with its ``seq`` and the sender's ``client_id``) before it is
acknowledged; a retried send returns the stored message; its webhook and memory copy
are queued in the same transaction and delivered after commit by ``delivery``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from ..access import links
from ..delivery import outbox
from ..models import (
    Agent,
    Attachment,
    Bot,
    Channel,
    Conversation,
    Handoff,
    MemoryWrite,
    Message,
    Sender,
    Status,
    WebhookDelivery,
)
from ..realtime import broadcast
from . import estimate, hours
from .errors import BotMuted, ConversationClosed, HandoffError, HandoffNotFound

MAX_MESSAGE_CHARS = 10_000  # the default of settings.MESSAGE_MAX_CHARS


def max_message_chars() -> int:
    """The longest message text accepted (``MESSAGE_MAX_CHARS``)."""
    return int(getattr(settings, "MESSAGE_MAX_CHARS", MAX_MESSAGE_CHARS))


CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
RATINGS = {"", "accurate", "missing_info", "unnecessary"}


@dataclass(frozen=True)
class PostResult:
    message: Message
    created: bool


# ---------------------------------------------------------------- hops
def conversation_for_new_hop(
    *, handoff: Handoff, previous: Handoff | None, channel: str | None = None
) -> Conversation:
    """The conversation a new hop belongs to: its chain's, or a new one.

    A new conversation's channel is the one the bot named, else ``api`` for a bot with a
    callback URL (it relays its own channel) and ``web`` (the console's chat link)."""
    if previous is not None and previous.conversation_id is not None:
        conversation = previous.conversation
        if conversation.closed_at is not None:
            Conversation.objects.filter(pk=conversation.pk).update(closed_at=None)
            conversation.closed_at = None
        return conversation
    bot = handoff.created_by_bot
    return Conversation.objects.create(
        customer=handoff.customer,
        customer_name=handoff.customer_name,
        bot=bot,
        channel=channel or (Channel.API if bot is not None and bot.callback_url else Channel.WEB),
    )


def on_accepted(*, handoff: Handoff, agent: Agent, client_id: str = "") -> None:
    """Inside the accept (or reassign) transaction: mute the bot, tell the customer who
    joined, notify the bot. ``client_id`` tells a later owner's "joined" apart."""
    conversation = handoff.conversation
    if conversation is None:
        return
    Conversation.objects.filter(pk=conversation.pk).update(bot_muted=True)
    conversation.bot_muted = True
    name = agent.public_name
    team = handoff.team.name if handoff.team else ""
    _post(
        conversation=conversation,
        sender=Sender.SYSTEM,
        author="system",
        body=f"{name}{f' from {team}' if team else ''} joined the conversation.",
        client_id=client_id or f"joined-{handoff.pk}",
        handoff=handoff,
    )
    _webhook(conversation, "agent.joined", {"agent": name, "agent_id": agent.memory_name})


# ---------------------------------------------------------------- messages
def _validate(body: Any, client_id: Any, *, may_be_empty: bool = False) -> tuple[str, str]:
    if may_be_empty and body is None:
        body = ""
    if not isinstance(body, str) or (not body.strip() and not may_be_empty):
        raise HandoffError("body is required and must be a non-empty string")
    limit = max_message_chars()
    if len(body) > limit:
        raise HandoffError(
            f"body is longer than {limit:,} characters ({len(body):,}); shorten it or "
            "send it in parts",
            status=413,
            code="PAYLOAD_TOO_LARGE",
        )
    if not isinstance(client_id, str) or not CLIENT_ID_RE.match(client_id):
        raise HandoffError("client_id is required: 1-64 letters, digits, '_', '.', ':' or '-'")
    return body.strip(), client_id


def current_hop(conversation: Conversation) -> Handoff | None:
    return conversation.hops.order_by("-created_at", "-pk").first()


def _next_seq(conversation: Conversation) -> int:
    """Take the conversation's next sequence number: one ``UPDATE ... RETURNING``
    (SQLite 3.35+, PostgreSQL), which also locks the row until the transaction ends."""
    table = connection.ops.quote_name(Conversation._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET last_seq = last_seq + 1 WHERE id = %s RETURNING last_seq",  # noqa: S608
            [conversation.pk],
        )
        return cursor.fetchone()[0]


def _post(
    *,
    conversation: Conversation,
    sender: str,
    author: str,
    body: str,
    client_id: str,
    handoff: Handoff | None,
    author_name: str = "",
    checked: bool = False,
    out_of_hours: bool = False,
    attach: Callable[[Message], Any] | None = None,
) -> PostResult:
    if not checked:
        existing = Message.objects.filter(conversation=conversation, client_id=client_id).first()
        if existing is not None:
            return PostResult(existing, False)
    seq = _next_seq(conversation)
    score = estimate.estimate_sentiment(body)[1] if sender == Sender.CUSTOMER else None
    try:
        with transaction.atomic():
            message = Message.objects.create(
                conversation=conversation,
                seq=seq,
                client_id=client_id,
                sender=sender,
                author=author,
                author_name=author_name,
                body=body,
                handoff=handoff,
                sentiment_score=score,
                out_of_hours=out_of_hours,
            )
    except IntegrityError:
        return PostResult(
            Message.objects.get(conversation=conversation, client_id=client_id), False
        )
    if attach is not None:
        attach(message)  # the message's file row, in this same transaction
    # The doorbell first: on-commit callbacks run in order, and the other side should
    # see the message before its memory copy is written.
    broadcast.message_posted_on_commit(message=message)
    if sender in {Sender.CUSTOMER, Sender.AGENT, Sender.NOTE} and handoff is not None:
        _remember(handoff, message)
    return PostResult(message, True)


def message_post(
    *,
    conversation: Conversation,
    sender: str,
    body: Any,
    client_id: Any,
    agent: Agent | None = None,
    bot: Bot | None = None,
    attach: Callable[[Message], Any] | None = None,
) -> PostResult:
    """Store one chat message (or return the one already stored for ``client_id``).

    ``attach`` (``lifecycle.attachments``) adds the message's file in the same
    transaction; such a message's text (its caption) may be empty.

    Raises ConversationClosed, BotMuted (a bot speaking while a human owns the
    conversation), HandoffNotFound (an agent who doesn't own it), HandoffError.
    """
    body, client_id = _validate(body, client_id, may_be_empty=attach is not None)
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        existing = Message.objects.filter(conversation=conversation, client_id=client_id).first()
        if existing is not None:
            return PostResult(existing, False)
        if conversation.closed_at is not None:
            raise ConversationClosed("This conversation has ended.")
        hop = current_hop(conversation)
        if sender in {Sender.AGENT, Sender.NOTE}:
            if (
                agent is None
                or hop is None
                or (hop.accepted_by_id != agent.pk or hop.status != Status.ACCEPTED)
            ):
                raise HandoffNotFound("You don't own this conversation.")
            author = agent.memory_name
            author_name = agent.public_name
        elif sender == Sender.BOT:
            if conversation.bot_muted:
                raise BotMuted(
                    "A human agent owns this conversation; the bot is muted until it is "
                    "handed back."
                )
            author = f"bot:{bot.name}" if bot else "bot"
            author_name = "Assistant"
        elif sender == Sender.CUSTOMER:
            author = conversation.customer
            author_name = conversation.customer_name or "Customer"
        else:
            raise HandoffError("sender must be customer, bot, agent or note")
        out_of_hours = (
            sender == Sender.CUSTOMER
            and hop is not None
            and hop.status in (Status.WAITING, Status.ACCEPTED)
            and hop.team_id is not None
            and not hours.team_is_open(hop.team)
        )
        result = _post(
            conversation=conversation,
            sender=sender,
            author=author,
            body=body,
            client_id=client_id,
            handoff=hop,
            author_name=author_name,
            checked=True,  # no message with this client id, under the row lock
            out_of_hours=out_of_hours,
            attach=attach,
        )
        if result.created and sender == Sender.AGENT and conversation.channel == Channel.API:
            _webhook(conversation, "message.created", {"message": message_json(result.message)})
        elif (
            result.created
            and sender == Sender.CUSTOMER
            and conversation.channel == Channel.WEB
            and not conversation.bot_muted
        ):
            # The bot owns the conversation (before accept, after hand back): the web
            # chat's customer message goes to it, through the same durable outbox.
            # ``handoff_status`` "waiting" says a person is already on the way.
            _webhook(
                conversation,
                "message.created",
                {
                    "message": message_json(result.message),
                    "handoff_status": hop.status if hop is not None else None,
                },
            )
    return result


def message_attachment(message: Message) -> Any:
    """The message's attachment, or None (one query unless already loaded)."""
    try:
        return message.attachment
    except Message.attachment.RelatedObjectDoesNotExist:
        return None


def attachment_json(attachment: Attachment) -> dict[str, Any]:
    """An attachment as the bot API shows it: a signed link valid for
    ``ATTACHMENT_LINK_MAX_AGE`` seconds, and the key-authenticated route."""
    base = settings.CONSOLE_PUBLIC_URL.rstrip("/")
    pid = str(attachment.public_id)
    return {
        "id": pid,
        "kind": attachment.kind,
        "name": attachment.name,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "width": attachment.width,
        "height": attachment.height,
        "url": base + reverse("attachment-signed", args=[links.sign(pid)]),
        "thumbnail_url": (
            base + reverse("attachment-signed", args=[links.sign(pid, "thumb")])
            if attachment.thumbnail
            else None
        ),
        "url_expires_at": links.expires_at().isoformat(),
        "api_url": base
        + reverse(
            "api-conversation-attachment",
            args=[attachment.message.conversation.public_id, attachment.public_id],
        ),
    }


def message_json(message: Message) -> dict[str, Any]:
    attachment = message_attachment(message)
    return {
        "seq": message.seq,
        "client_id": message.client_id,
        "sender": message.sender,
        "author": message.author,
        "author_name": message.author_name,
        "body": message.body,
        "created_at": message.created_at.isoformat(),
        "attachment": attachment_json(attachment) if attachment is not None else None,
    }


def _remember(handoff: Handoff, message: Message) -> None:
    """Queue the memory copy of a chat message into the human's memory session."""
    role = {"customer": "user", "agent": "assistant", "note": "note"}[message.sender]
    content = message.body
    extra: dict[str, Any] = {}
    attachment = message_attachment(message)
    if attachment is not None:
        # The memory says what was attached (never the bytes): the next agent, bot or
        # human, recalls "sent invoice.pdf (PDF document, 120 KB)".
        said = f"[Attached: {attachment.describe}]"
        content = f"{message.body}\n{said}" if message.body else said
        extra["attachment"] = {
            "id": str(attachment.public_id),
            "name": attachment.name,
            "content_type": attachment.content_type,
            "size": attachment.size,
        }
    MemoryWrite.objects.create(
        conversation=message.conversation,
        handoff=handoff,
        operation="store",
        payload={
            "agent_id": handoff.customer,
            "content": content,
            "memory_type": "episodic",
            "importance": 0.6,
            "tags": [role, "console"],
            "metadata": {
                "type": "chat_message" if message.sender != Sender.NOTE else "agent_note",
                "role": role,
                "agent": message.author,
                "conversation_id": str(message.conversation.public_id),
                "seq": message.seq,
                "client_id": message.client_id,
                **extra,
            },
        },
    )
    outbox.kick_on_commit()


def _webhook(conversation: Conversation, event: str, data: dict[str, Any]) -> None:
    """Queue a signed webhook to the conversation's bot, if it has a callback URL.

    Web-chat conversations of such a bot get the lifecycle events and the customer's
    messages while the bot owns them; agent messages only go to ``api`` channels (the
    bot relays them), the web chat shows them itself."""
    bot = conversation.bot
    if bot is None or not bot.callback_url:
        return
    WebhookDelivery.objects.create(
        bot=bot,
        conversation=conversation,
        event=event,
        payload={
            "event": event,
            "conversation_id": str(conversation.public_id),
            "customer": conversation.customer,
            "sent_at": timezone.now().isoformat(),
            **data,
        },
    )
