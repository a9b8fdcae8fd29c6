"""Attachments on the bot API, and the signed download links handed to bots.

- ``POST /api/v1/conversations/{id}/attachments`` (multipart/form-data: ``file``,
  ``client_id``, optional ``sender`` = customer | bot and ``caption``): a bot relays a
  customer's file (API channel) or sends one itself while it owns the conversation.
  201 new, 200 replayed (same ``client_id``: the file is not stored again), 413
  ``PAYLOAD_TOO_LARGE``, 415 ``UNSUPPORTED_MEDIA_TYPE``, 409 ``BOT_MUTED``, 410 closed.
- ``GET /api/v1/conversations/{id}/attachments/{attachment_id}``: the file, with the key.
- ``GET /files/s/{signed}/``: the file for whoever holds an unexpired signed link
  (``access.links``; in API answers and webhooks as ``attachment.url``), 403 after.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from ..access import bots as bot_rights
from ..access import links
from ..lifecycle import attachments, messages
from ..memory.base import MemoryValidationError
from ..memory.http import bot_api, bot_namespace, error_response
from ..models import Attachment, Conversation, Sender
from ..pages import attachment_response


def _owned(request: HttpRequest, public_id: str) -> Conversation | JsonResponse:
    conversation = Conversation.objects.filter(public_id=public_id).first()
    if conversation is None or not bot_rights.owns_conversation(request.bot, conversation):
        return error_response(
            404, f"conversation {public_id} not found", "NOT_FOUND", resource="conversation"
        )
    bot_namespace(request, conversation.customer)
    return conversation


@bot_api(("POST",), scope="write")
def conversation_attachments(request: HttpRequest, public_id: str) -> JsonResponse:
    conversation = _owned(request, public_id)
    if isinstance(conversation, JsonResponse):
        return conversation
    sender = request.POST.get("sender", Sender.CUSTOMER)
    if sender not in {Sender.CUSTOMER, Sender.BOT}:
        raise MemoryValidationError("sender must be customer or bot")
    result = attachments.attachment_post(
        conversation=conversation,
        sender=sender,
        upload=request.FILES.get("file"),
        client_id=request.POST.get("client_id"),
        caption=request.POST.get("caption", ""),
        bot=request.bot,
    )
    return JsonResponse(
        {"message": messages.message_json(result.message), "created": result.created},
        status=201 if result.created else 200,
    )


@bot_api(("GET",), scope="read")
def conversation_attachment(
    request: HttpRequest, public_id: str, attachment_id: str
) -> HttpResponse:
    conversation = _owned(request, public_id)
    if isinstance(conversation, JsonResponse):
        return conversation
    attachment = (
        Attachment.objects.filter(public_id=attachment_id, message__conversation=conversation)
        .exclude(message__sender=Sender.NOTE)
        .first()
    )
    if attachment is None:
        return error_response(
            404, f"attachment {attachment_id} not found", "NOT_FOUND", resource="attachment"
        )
    variant = "thumb" if request.GET.get("variant") == "thumb" else "file"
    return attachment_response(attachment, variant)


@require_GET
def signed_download(request: HttpRequest, signed: str) -> HttpResponse:
    """A signed link's file; expired, altered or unknown: 403 (nothing says which)."""
    found = links.unsign(signed)
    attachment = None
    if found is not None:
        attachment = (
            Attachment.objects.filter(public_id=found[0]).exclude(message__sender=Sender.NOTE)
        ).first()
    if attachment is None:
        response = HttpResponse(
            "This link has expired or is not valid.\n",
            status=403,
            content_type="text/plain; charset=utf-8",
        )
        response["X-Content-Type-Options"] = "nosniff"
        return response
    return attachment_response(attachment, found[1])
