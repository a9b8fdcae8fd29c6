"""Customer satisfaction through the bot API, for channels the console doesn't own.

``GET /api/v1/conversations/{id}/csat`` reads the state; ``POST .../csat/ask`` records
that the bot asked its customer (counts towards the response rate); ``POST .../csat``
``{"score": 1-5, "comment"?}`` records the answer (with the conversation and its last
hop, as the web chat does). Only the conversation's bot may use them (others get 404).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

from ..access import bots as bot_rights
from ..lifecycle import satisfaction
from ..lifecycle.messages import current_hop
from ..memory.base import MemoryValidationError
from ..memory.http import bot_api, bot_namespace, error_response, json_body
from ..models import Conversation

FIELDS = {"score", "comment"}


def csat_json(conversation: Conversation) -> dict[str, Any]:
    hop = current_hop(conversation)
    return {
        "conversation_id": str(conversation.public_id),
        "score": conversation.csat_score,
        "comment": conversation.csat_comment,
        "rated_at": conversation.csat_at.isoformat() if conversation.csat_at else None,
        "asked_at": hop.csat_asked_at.isoformat() if hop and hop.csat_asked_at else None,
        "handoff_id": str(hop.public_id) if hop else None,
    }


def _own_conversation(request: HttpRequest, public_id: str) -> Conversation | JsonResponse:
    conversation = Conversation.objects.filter(public_id=public_id).first()
    if conversation is not None and not bot_rights.owns_conversation(request.bot, conversation):
        conversation = None
    if conversation is None:
        return error_response(
            404, f"conversation {public_id} not found", "NOT_FOUND", resource="conversation"
        )
    bot_namespace(request, conversation.customer)
    return conversation


@bot_api(("GET", "POST"), scope={"GET": "read", "POST": "write"})
def conversation_csat(request: HttpRequest, public_id: str) -> JsonResponse:
    """GET the rating state; POST ``{"score", "comment"?}`` records the customer's answer."""
    conversation = _own_conversation(request, public_id)
    if isinstance(conversation, JsonResponse):
        return conversation
    if request.method == "POST":
        data = json_body(request)
        unknown = sorted(set(data) - FIELDS)
        if unknown:
            raise MemoryValidationError(f"unknown field(s): {', '.join(unknown)}")
        if "score" not in data:
            raise MemoryValidationError("score is required (1 to 5)")
        conversation = satisfaction.csat_record(
            conversation=conversation,
            score=data["score"],
            comment=data.get("comment"),
            actor=f"bot:{request.bot.name}",
            via="api",
        )
    return JsonResponse({"csat": csat_json(conversation)})


@bot_api(("POST",), scope="write")
def conversation_csat_ask(request: HttpRequest, public_id: str) -> JsonResponse:
    """Record that the bot asked its customer for a rating (idempotent)."""
    conversation = _own_conversation(request, public_id)
    if isinstance(conversation, JsonResponse):
        return conversation
    satisfaction.csat_ask(conversation=conversation, actor=f"bot:{request.bot.name}")
    return JsonResponse({"csat": csat_json(conversation)})
