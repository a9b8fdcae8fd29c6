"""Customer satisfaction (CSAT): asked after resolve, answered 1-5 with an optional comment.

The answer is stored with the conversation (``csat_score``, ``csat_comment``,
``csat_at``: the latest answer wins, a customer may change their mind) and with its last
hop (``Handoff.csat_score``), so the transfer report credits the agent, team and source
bot of that hop. ``Handoff.csat_asked_at`` records that the customer was asked: set when
a web-chat conversation is resolved (the console asks on the chat page), or by the bot
API for channels the console doesn't own. An answer counts as asked too. Response rate
is answered / asked.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from ..models import Conversation, Event, Handoff
from ..realtime import broadcast
from .errors import HandoffError
from .messages import current_hop

MAX_COMMENT_CHARS = 2000
SCORES = range(1, 6)
LABELS = {1: "Very poor", 2: "Poor", 3: "Okay", 4: "Good", 5: "Very good"}


def parse_score(value: Any) -> int:
    """A 1-5 score from a form or JSON value; raises HandoffError otherwise."""
    if isinstance(value, bool):
        raise HandoffError("score must be a whole number from 1 to 5")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value not in SCORES:
        raise HandoffError("score must be a whole number from 1 to 5")
    return value


def parse_comment(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise HandoffError("comment must be a string")
    value = value.strip()
    if len(value) > MAX_COMMENT_CHARS:
        raise HandoffError(f"comment is longer than {MAX_COMMENT_CHARS} characters")
    return value


def mark_asked(hop: Handoff, *, now=None) -> bool:
    """Inside a transaction: record that the customer was asked about ``hop`` (once)."""
    now = now or timezone.now()
    marked = Handoff.objects.filter(pk=hop.pk, csat_asked_at=None).update(csat_asked_at=now)
    if marked:
        hop.csat_asked_at = now
    return bool(marked)


def csat_ask(*, conversation: Conversation, actor: str) -> Handoff:
    """Record that the customer was asked for a rating (idempotent); returns the hop.

    Raises HandoffError (409) when the conversation has no hop yet.
    """
    with transaction.atomic():
        hop = current_hop(conversation)
        if hop is None:
            raise HandoffError("This conversation has no handoff yet.", status=409, code="NO_HOP")
        if mark_asked(hop):
            Event.objects.create(handoff=hop, kind="csat.asked", actor=actor)
    return hop


def csat_record(
    *, conversation: Conversation, score: Any, comment: Any = None, actor: str, via: str
) -> Conversation:
    """Store the customer's 1-5 rating (and comment) with the conversation and its last hop.

    ``comment=None`` keeps an earlier comment (a second tap changes only the score).
    Raises HandoffError for a bad score or comment, or a conversation without hops.
    """
    score = parse_score(score)
    text = None if comment is None else parse_comment(comment)
    now = timezone.now()
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        hop = current_hop(conversation)
        if hop is None:
            raise HandoffError("This conversation has no handoff yet.", status=409, code="NO_HOP")
        conversation.csat_score, conversation.csat_at = score, now
        if text is not None:
            conversation.csat_comment = text
        conversation.save(update_fields=["csat_score", "csat_comment", "csat_at"])
        mark_asked(hop, now=now)
        Handoff.objects.filter(pk=hop.pk).update(csat_score=score)
        Event.objects.create(
            handoff=hop,
            kind="csat.recorded",
            actor=actor,
            data={"score": score, "comment": bool(conversation.csat_comment), "via": via},
        )
        broadcast.csat_recorded_on_commit(conversation_id=conversation.pk)
    return conversation
