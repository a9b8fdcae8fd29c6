"""Writes of the human-side chat: messages, the endings of a hop, and the outboxes.

Conversation lifecycle::

    created with the first human-queued hop ─ accept ─> bot muted, "agent joined"
      ├─ resolve    ─> hop resolved, human memory session ended, conversation closed
      ├─ transfer   ─> hop transferred, a HANDOFF SUMMARY memory, a new waiting hop
      └─ hand back  ─> hop handed back, a handoff memory to the bot, bot un-muted

Invariants: a message is committed (with its ``seq`` and sender's ``client_id``) before
it is acknowledged; a retried send returns the stored message; webhooks and memory
copies are queued in the same transaction and delivered after commit by the outbox.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from . import broadcast, estimate, outbox
from .models import (
    Agent,
    Bot,
    Channel,
    Conversation,
    Event,
    Handoff,
    MemoryWrite,
    Message,
    Sender,
    Status,
    Team,
    WebhookDelivery,
)
from .services import HandoffError, HandoffNotFound, handoff_intake

MAX_MESSAGE_CHARS = 10_000
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
RATINGS = {"", "accurate", "missing_info", "unnecessary"}


class BotMuted(HandoffError):
    status = 409
    code = "BOT_MUTED"


class ConversationClosed(HandoffError):
    status = 410
    code = "CONVERSATION_CLOSED"


@dataclass(frozen=True)
class PostResult:
    message: Message
    created: bool


# ---------------------------------------------------------------- hooks from services
def conversation_for_new_hop(*, handoff: Handoff, previous: Handoff | None) -> Conversation:
    """The conversation a new hop belongs to: its chain's, or a new one."""
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
        channel=Channel.API if bot is not None and bot.callback_url else Channel.WEB,
    )


def on_accepted(*, handoff: Handoff, agent: Agent) -> None:
    """Inside the accept transaction: mute the bot, tell the customer, notify the bot."""
    conversation = handoff.conversation
    if conversation is None:
        return
    Conversation.objects.filter(pk=conversation.pk).update(bot_muted=True)
    conversation.bot_muted = True
    name = agent.user.first_name or agent.user.get_username()
    team = handoff.team.name if handoff.team else ""
    _post(
        conversation=conversation,
        sender=Sender.SYSTEM,
        author="system",
        body=f"{name}{f' from {team}' if team else ''} joined the conversation.",
        client_id=f"joined-{handoff.pk}",
        handoff=handoff,
    )
    _webhook(conversation, "agent.joined", {"agent": name, "agent_id": agent.memory_name})


# ---------------------------------------------------------------- messages
def _validate(body: Any, client_id: Any) -> tuple[str, str]:
    if not isinstance(body, str) or not body.strip():
        raise HandoffError("body is required and must be a non-empty string")
    if len(body) > MAX_MESSAGE_CHARS:
        raise HandoffError(
            f"body is longer than {MAX_MESSAGE_CHARS} characters",
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
            )
    except IntegrityError:
        return PostResult(
            Message.objects.get(conversation=conversation, client_id=client_id), False
        )
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
) -> PostResult:
    """Store one chat message (or return the one already stored for ``client_id``).

    Raises ConversationClosed, BotMuted (a bot speaking while a human owns the
    conversation), HandoffNotFound (an agent who doesn't own it), HandoffError.
    """
    body, client_id = _validate(body, client_id)
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
            author_name = agent.user.first_name or agent.user.get_username()
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
        result = _post(
            conversation=conversation,
            sender=sender,
            author=author,
            body=body,
            client_id=client_id,
            handoff=hop,
            author_name=author_name,
            checked=True,  # no message with this client id, under the row lock
        )
        if result.created and sender == Sender.AGENT:
            _webhook(conversation, "message.created", {"message": message_json(result.message)})
    return result


def message_json(message: Message) -> dict[str, Any]:
    return {
        "seq": message.seq,
        "client_id": message.client_id,
        "sender": message.sender,
        "author": message.author,
        "author_name": message.author_name,
        "body": message.body,
        "created_at": message.created_at.isoformat(),
    }


def _remember(handoff: Handoff, message: Message) -> None:
    """Queue the memory copy of a chat message into the human's memory session."""
    role = {"customer": "user", "agent": "assistant", "note": "note"}[message.sender]
    MemoryWrite.objects.create(
        conversation=message.conversation,
        handoff=handoff,
        operation="store",
        payload={
            "agent_id": handoff.customer,
            "content": message.body,
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
            },
        },
    )
    outbox.kick_on_commit()


def _webhook(conversation: Conversation, event: str, data: dict[str, Any]) -> None:
    bot = conversation.bot
    if bot is None or not bot.callback_url or conversation.channel != Channel.API:
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


# ---------------------------------------------------------------- endings
def _owned_hop(*, handoff_id: int, agent: Agent) -> Handoff:
    hop = (
        Handoff.objects.select_for_update(of=("self",))
        .select_related("conversation", "team")
        .filter(pk=handoff_id)
        .first()
    )
    if hop is None or hop.accepted_by_id != agent.pk or hop.status != Status.ACCEPTED:
        raise HandoffNotFound("You don't own this conversation.")
    return hop


def _close_hop(hop: Handoff, *, status: str, agent: Agent, rating: str, note: str) -> None:
    if rating not in RATINGS:
        raise HandoffError("rating must be accurate, missing_info or unnecessary")
    now = timezone.now()
    updated = Handoff.objects.filter(pk=hop.pk, status=Status.ACCEPTED).update(
        status=status, closed_at=now, rating=rating, closing_note=note
    )
    if updated != 1:
        raise HandoffError(
            "This conversation changed meanwhile; reload it.", status=409, code="CONFLICT"
        )
    hop.status, hop.closed_at, hop.rating, hop.closing_note = status, now, rating, note
    MemoryWrite.objects.create(
        conversation=hop.conversation,
        handoff=hop,
        operation="end_session",
        payload={"summary": f"{status}: {note}"[:2000]},
    )
    outbox.kick_on_commit()
    broadcast.handoff_changed_on_commit(handoff_id=hop.pk, change=status)


def conversation_resolve(
    *, handoff_id: int, agent: Agent, summary: str = "", rating: str = ""
) -> Handoff:
    """Resolve: end the human memory session with a summary and close the customer link."""
    with transaction.atomic():
        hop = _owned_hop(handoff_id=handoff_id, agent=agent)
        summary = summary.strip() or f"Resolved by {agent.memory_name}."
        _close_hop(hop, status=Status.RESOLVED, agent=agent, rating=rating, note=summary)
        conversation = hop.conversation
        if conversation is not None:
            _post(
                conversation=conversation,
                sender=Sender.SYSTEM,
                author="system",
                body="This conversation was resolved. Thank you for contacting us!",
                client_id=f"resolved-{hop.pk}",
                handoff=hop,
            )
            Conversation.objects.filter(pk=conversation.pk).update(closed_at=timezone.now())
            broadcast.conversation_closed_on_commit(conversation_id=conversation.pk)
            _webhook(conversation, "conversation.resolved", {"summary": summary})
        Event.objects.create(
            handoff=hop, kind="handoff.resolved", actor=agent.memory_name, data={"rating": rating}
        )
    return hop


def _note_required(note: str) -> str:
    note = (note or "").strip()
    if not note:
        raise HandoffError("A note is required: it becomes the next agent's handoff summary.")
    if len(note) > 5000:
        raise HandoffError("The note is longer than 5000 characters.")
    return note


def _queue_handoff_memory(
    *, hop: Handoff, agent: Agent, to_agent: str, content: str
) -> MemoryWrite:
    """Queue the HANDOFF SUMMARY memory in the closing agent's session (before it ends).

    The next hop keeps its own copy of the summary; the outbox fills in its
    ``memory_id`` once the memory server has stored it.
    """
    return MemoryWrite.objects.create(
        conversation=hop.conversation,
        handoff=hop,
        operation="store",
        payload={
            "agent_id": hop.customer,
            "content": content,
            "importance": 1.0,
            "tags": ["handoff"],
            "metadata": {
                "type": "handoff",
                "from_agent": agent.memory_name,
                "to_agent": to_agent,
                "conversation_id": str(hop.conversation.public_id) if hop.conversation else "",
            },
        },
    )


def handoff_transfer(
    *, handoff_id: int, agent: Agent, to: str, note: str, rating: str = ""
) -> Handoff:
    """Transfer to a team (slug) or an agent (``human:<username>``); returns the new hop."""
    note = _note_required(note)
    target_agent = None
    if to.startswith("human:"):
        target_agent = Agent.objects.select_related("user").filter(user__username=to[6:]).first()
        if target_agent is None:
            raise HandoffError(f"No agent {to[6:]!r}.")
        if target_agent.pk == agent.pk:
            raise HandoffError("You can't transfer a conversation to yourself.")
    elif not Team.objects.filter(slug=to).exists():
        raise HandoffError(f"No team {to!r}.")
    with transaction.atomic():
        hop = _owned_hop(handoff_id=handoff_id, agent=agent)
        return _pass_on(
            hop=hop,
            agent=agent,
            to=to,
            content=f"HANDOFF SUMMARY ({agent.memory_name} → {to}): {note}",
            note=note,
            rating=rating,
            status=Status.TRANSFERRED,
            assigned_to=target_agent,
            customer_text="You're being transferred to a colleague who can help further. "
            "They can see everything so far.",
        )


def handoff_hand_back(*, handoff_id: int, agent: Agent, note: str, rating: str = "") -> Handoff:
    """Hand the conversation back to the bot that escalated it, with a required note."""
    note = _note_required(note)
    with transaction.atomic():
        hop = _owned_hop(handoff_id=handoff_id, agent=agent)
        bot_name = hop.created_by_bot.name if hop.created_by_bot else hop.from_agent
        first = Handoff.objects.filter(chain_id=hop.chain_id).order_by("hop_index").first()
        if first is not None and first.created_by_bot is not None:
            bot_name = first.created_by_bot.name
        if hop.conversation is not None:
            Conversation.objects.filter(pk=hop.conversation.pk).update(bot_muted=False)
        return _pass_on(
            hop=hop,
            agent=agent,
            to=bot_name,
            content=f"HANDBACK to {bot_name} from {agent.memory_name}: {note}",
            note=note,
            rating=rating,
            status=Status.HANDED_BACK,
            customer_text="You're back with our assistant, who has the notes from this chat.",
        )


_ENDING = {
    Status.TRANSFERRED: ("transfer", "transferred", "conversation.transferred"),
    Status.HANDED_BACK: ("handback", "handed-back", "conversation.handed_back"),
}


def _pass_on(
    *,
    hop: Handoff,
    agent: Agent,
    to: str,
    content: str,
    note: str,
    rating: str,
    status: str,
    customer_text: str,
    assigned_to: Agent | None = None,
) -> Handoff:
    """Close ``hop`` as transferred / handed back and start the next hop to ``to``.

    Queues the HANDOFF SUMMARY memory in the closing agent's session (before it ends),
    records the new hop in the same chain and conversation, tells the customer and the
    bot, and audits it. Runs inside the caller's transaction.
    """
    reason, client_prefix, webhook_event = _ENDING[status]
    write = _queue_handoff_memory(hop=hop, agent=agent, to_agent=to, content=content)
    _close_hop(hop, status=status, agent=agent, rating=rating, note=note)
    result = handoff_intake(
        customer=hop.customer,
        source_session_id=hop.human_session_id,
        from_agent=agent.memory_name,
        to_agent=to,
        summary=content,
        importance=1.0,
        reason=reason,
        customer_name=hop.customer_name,
        bot=hop.created_by_bot,
        previous=hop,
        actor=agent.memory_name,
        assigned_to=assigned_to,
    )
    MemoryWrite.objects.filter(pk=write.pk).update(
        payload={**write.payload, "fill_memory_id_of": result.handoff.pk}
    )
    conversation = hop.conversation
    if conversation is not None:
        _post(
            conversation=conversation,
            sender=Sender.SYSTEM,
            author="system",
            body=customer_text,
            client_id=f"{client_prefix}-{hop.pk}",
            handoff=hop,
        )
        _webhook(conversation, webhook_event, {"to": to, "note": note})
    Event.objects.create(
        handoff=hop,
        kind=f"handoff.{status}",
        actor=agent.memory_name,
        data={"to": to, "next_hop": result.handoff.pk},
    )
    return result.handoff


# ---------------------------------------------------------------- continuity
_THIRD_PERSON = [
    (
        re.compile(r"^(the\s+)?(customer|user|client)(\s+[A-Z]{2,}-?\d+)?(\s*\([^)]*\))?\s+", re.I),
        "you ",
    ),
    (re.compile(r"\breports\b", re.I), "reported"),
    (re.compile(r"\bis reporting\b", re.I), "reported"),
    (re.compile(r"\bhas been\b", re.I), "were"),
    (re.compile(r"\bwas\b", re.I), "were"),
    (re.compile(r"\bthreatens\b", re.I), "are thinking"),
    (re.compile(r"\b(their|his|her)\b", re.I), "your"),
]


def suggested_first_message(*, handoff: Handoff, agent: Agent) -> str:
    """A first message that proves continuity, drafted from the handoff summary."""
    text = re.sub(r"^HANDOFF SUMMARY \([^)]*\):\s*", "", handoff.summary.strip())
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
    facts = [s for s in sentences if not re.match(r"(?i)^(customer )?tone\b", s)]
    first = facts[0] if facts else text
    for pattern, replacement in _THIRD_PERSON:
        first = pattern.sub(replacement, first, count=1)
    first = first.rstrip(".")
    detail = ""
    if len(facts) > 1 and re.search(r"\$|\d", facts[1]):
        detail = " " + facts[1].rstrip(".") + "."
    name = agent.user.first_name or agent.user.get_username()
    team = f" from {handoff.team.name}" if handoff.team else ""
    greeting = f"Hi{' ' + handoff.customer_name.split()[0] if handoff.customer_name else ''}"
    return (
        f"{greeting}, I'm {name}{team}. I can see {first[0].lower() + first[1:]}.{detail} "
        "You don't need to repeat anything: I'm looking into it now."
    )


def sentiment_trend(conversation: Conversation, handoff: Handoff) -> dict[str, Any]:
    """Customer sentiment at handoff vs now (mean of the last three customer messages)."""
    scores = list(
        conversation.messages.filter(sender=Sender.CUSTOMER, sentiment_score__isnull=False)
        .order_by("-seq")
        .values_list("sentiment_score", flat=True)[:3]
    )
    now = sum(scores) / len(scores) if scores else None
    label = estimate.sentiment_from_score(now) if now is not None else None
    direction = ""
    if now is not None:
        delta = now - handoff.sentiment_score
        direction = "improving" if delta > 0.15 else "worsening" if delta < -0.15 else "steady"
    return {"at_handoff": handoff.sentiment, "now": label, "direction": direction}
