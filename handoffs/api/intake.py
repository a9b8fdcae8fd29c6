"""The console's own bot API: explicit handoff intake (``POST /api/v1/handoffs``)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.urls import reverse

from ..access import bots as bot_rights
from ..lifecycle import estimate, intake, messages
from ..lifecycle.errors import HandoffError
from ..memory.base import (
    MAX_JSON_INT,
    MemoryValidationError,
    validate_agent_id,
    validate_content,
    validate_importance,
)
from ..memory.http import (
    bot_api,
    bot_namespace,
    error_response,
    json_body,
    query_int,
    string_field,
)
from ..models import SKILL_RE, Conversation, Handoff, IdempotencyRecord, Sender, parse_skills

INTAKE_FIELDS = {
    "customer",
    "source_session_id",
    "from_agent",
    "to_agent",
    "summary",
    "sentiment",
    "urgency",
    "reason",
    "customer_name",
    "importance",
    "channel",
    "skills",
    "language",
}


def conversation_json(conversation: Conversation | None) -> dict[str, Any] | None:
    if conversation is None:
        return None
    return {
        "id": str(conversation.public_id),
        "channel": conversation.channel,
        "customer_url": settings.CONSOLE_PUBLIC_URL.rstrip("/")
        + reverse("customer-chat", args=[conversation.token]),
        "bot_muted": conversation.bot_muted,
        "closed": conversation.closed_at is not None,
        "last_seq": conversation.last_seq,
    }


def handoff_json(handoff: Handoff) -> dict[str, Any]:
    return {
        "id": str(handoff.public_id),
        "customer": handoff.customer,
        "customer_name": handoff.customer_name,
        "source_session_id": handoff.source_session_id,
        "from_agent": handoff.from_agent,
        "to_agent": handoff.to_agent,
        "team": handoff.team.slug if handoff.team else None,
        "misrouted": handoff.misrouted,
        "status": handoff.status,
        "summary": handoff.summary,
        "reason": handoff.reason,
        "importance": handoff.importance,
        "sentiment": handoff.sentiment,
        "sentiment_source": handoff.sentiment_source,
        "urgency": handoff.urgency,
        "urgency_source": handoff.urgency_source,
        "chain_id": str(handoff.chain_id),
        "hop_index": handoff.hop_index,
        "memory_id": handoff.memory_id or None,
        "accepted_by": handoff.accepted_by.user.get_username() if handoff.accepted_by else None,
        "created_at": handoff.created_at.isoformat(),
        "accepted_at": handoff.accepted_at.isoformat() if handoff.accepted_at else None,
        "conversation": conversation_json(handoff.conversation),
        "required_skills": list(handoff.required_skills or []),
        "offered_to": handoff.offered_to.user.get_username() if handoff.offered_to else None,
    }


def _parse_intake(data: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(data) - INTAKE_FIELDS)
    if unknown:
        raise MemoryValidationError(f"unknown field(s): {', '.join(unknown)}")
    customer = validate_agent_id(data.get("customer"), "customer")
    summary = validate_content(data.get("summary"))
    from_agent = string_field(data, "from_agent", required=True, max_length=241)
    to_agent = string_field(data, "to_agent", required=True, max_length=241)
    sentiment = data.get("sentiment")
    if sentiment is not None and estimate.parse_sentiment(sentiment) is None:
        raise MemoryValidationError(
            "sentiment must be positive, neutral, frustrated, angry (or a number from -1 to 1)"
        )
    urgency = data.get("urgency")
    if urgency is not None and estimate.parse_urgency(urgency) is None:
        raise MemoryValidationError("urgency must be low, normal, high or critical")
    importance = data.get("importance")
    channel = data.get("channel")
    if channel is not None and channel not in intake.CHANNELS:
        raise MemoryValidationError("channel must be web or api")
    return {
        "required_skills": _parse_skills(data.get("skills"), data.get("language")),
        "customer": customer,
        "source_session_id": string_field(data, "source_session_id", max_length=64) or "",
        "from_agent": from_agent,
        "to_agent": to_agent,
        "summary": summary,
        # Handoffs default to importance 1.0 (validate_importance's default is 0.5).
        "importance": 1.0 if importance is None else validate_importance(importance),
        "sentiment": sentiment,
        "urgency": urgency,
        "reason": string_field(data, "reason", max_length=500) or "",
        "customer_name": string_field(data, "customer_name", max_length=200) or "",
        "channel": channel,
    }


def _parse_skills(skills: Any, language: Any) -> list[str] | None:
    """``skills``: a list of short tokens; ``language``: a code such as "de" (a skill)."""
    wanted: list[str] = []
    if skills is not None:
        if not isinstance(skills, list) or not all(isinstance(s, str) for s in skills):
            raise MemoryValidationError("skills must be a list of strings")
        wanted += skills
    if language is not None:
        if not isinstance(language, str) or not language.strip():
            raise MemoryValidationError("language must be a language code such as de")
        wanted.append(language)
    tokens = parse_skills(wanted)
    bad = [t for t in tokens if not SKILL_RE.match(t)]
    if bad:
        raise MemoryValidationError(
            "skills are short tokens (letters, digits, _ . : -, up to 40 characters)"
        )
    if len(tokens) > 10:
        raise MemoryValidationError("at most 10 skills")
    return tokens or None


def _replay(record: IdempotencyRecord, request_hash: str) -> JsonResponse:
    if record.request_hash != request_hash:
        return error_response(
            422,
            "this Idempotency-Key was already used with a different request body",
            "IDEMPOTENCY_KEY_REUSED",
        )
    response = JsonResponse(record.response, status=record.status_code)
    response["Idempotent-Replayed"] = "true"
    return response


class HandoffOwnedElsewhere(HandoffError):
    status = 409
    code = "HANDOFF_OWNED_BY_ANOTHER_BOT"


@bot_api(("POST",), scope="write")
def handoff_create(request: HttpRequest) -> JsonResponse:
    """Create a handoff; 201 when new, 200 with ``created: false`` when already recorded.

    The same handoff already recorded for another bot's conversation is a 409
    ``HANDOFF_OWNED_BY_ANOTHER_BOT`` with no handoff in it: its customer link and
    conversation belong to that bot.
    """
    data = json_body(request)
    bot_namespace(request, data.get("customer"))
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > 255:
        raise MemoryValidationError("Idempotency-Key is longer than 255 characters")
    request_hash = hashlib.sha256(
        json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    if key:
        record = IdempotencyRecord.objects.filter(bot=request.bot, key=key).first()
        if record is not None:
            return _replay(record, request_hash)
    fields = _parse_intake(data)
    try:
        with transaction.atomic():
            result = intake.handoff_intake(bot=request.bot, **fields)
            if not result.created and not bot_rights.owns_handoff(request.bot, result.handoff):
                raise HandoffOwnedElsewhere(
                    "this handoff was already recorded by another bot; its conversation "
                    "is not yours to use"
                )
            status = 201 if result.created else 200
            body = {"handoff": handoff_json(result.handoff), "created": result.created}
            if key:
                IdempotencyRecord.objects.create(
                    bot=request.bot,
                    key=key,
                    request_hash=request_hash,
                    status_code=status,
                    response=body,
                )
    except IntegrityError:
        # A concurrent request with the same key committed first: answer as it did.
        record = IdempotencyRecord.objects.get(bot=request.bot, key=key)
        return _replay(record, request_hash)
    return JsonResponse(body, status=status)


@bot_api(("GET",), scope="read")
def handoff_detail(request: HttpRequest, public_id: str) -> JsonResponse:
    """A handoff of this bot's (another bot's is a 404, as if it didn't exist)."""
    handoff = (
        Handoff.objects.select_related("team", "accepted_by__user", "conversation")
        .filter(public_id=public_id)
        .first()
    )
    if handoff is None or not bot_rights.owns_handoff(request.bot, handoff):
        return error_response(
            404, f"handoff {public_id} not found", "NOT_FOUND", resource="handoff"
        )
    bot_namespace(request, handoff.customer)
    return JsonResponse({"handoff": handoff_json(handoff)})


@bot_api(("GET", "POST"), scope={"GET": "read", "POST": "write"})
def conversation_messages(request: HttpRequest, public_id: str) -> JsonResponse:
    """The API channel: a bot relays customer messages (and speaks when not muted).

    POST ``{"client_id", "body", "sender": "customer" | "bot"}``: 201 new, 200 replayed
    (same ``client_id``), 409 ``BOT_MUTED`` for a bot message while a human owns the
    conversation, 410 once it is closed. GET ``?after=<seq>`` lists public messages.
    Only the bot that owns the conversation may use it (others get 404).
    """
    conversation = Conversation.objects.filter(public_id=public_id).first()
    if conversation is None or not bot_rights.owns_conversation(request.bot, conversation):
        return error_response(
            404, f"conversation {public_id} not found", "NOT_FOUND", resource="conversation"
        )
    bot_namespace(request, conversation.customer)
    if request.method == "GET":
        after = query_int(request, "after", 0, MAX_JSON_INT)
        rows = conversation.messages.exclude(sender=Sender.NOTE).filter(seq__gt=after)
        return JsonResponse(
            {
                "conversation": conversation_json(conversation),
                "messages": [messages.message_json(m) for m in rows.order_by("seq")[:500]],
            }
        )
    data = json_body(request)
    sender = data.get("sender", "customer")
    if not isinstance(sender, str) or sender not in {Sender.CUSTOMER, Sender.BOT}:
        raise MemoryValidationError("sender must be customer or bot")
    result = messages.message_post(
        conversation=conversation,
        sender=sender,
        body=data.get("body"),
        client_id=data.get("client_id"),
        bot=request.bot,
    )
    return JsonResponse(
        {"message": messages.message_json(result.message), "created": result.created},
        status=201 if result.created else 200,
    )
