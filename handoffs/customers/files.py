"""The customer's attachments: sending a file, and fetching the conversation's files.

The conversation's link is the customer's credential (``customers.views``): a file is
served under it only if it belongs to that conversation, is public (never a private
note's) and the transcript is still readable; anything else is a 404.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from ..lifecycle import attachments
from ..lifecycle.errors import HandoffError
from ..models import Attachment, Sender
from ..pages import attachment_response
from . import transcript
from .views import _conversation


@csrf_exempt
@require_POST
@xframe_options_exempt
def customer_attachment(request: HttpRequest, token: str) -> HttpResponse:
    """Multipart ``file`` + ``client_id`` (+ ``caption``): JSON ``{"html", "created"}``
    or ``{"error", "code"}``."""
    conversation = _conversation(token)
    try:
        result = attachments.attachment_post(
            conversation=conversation,
            sender=Sender.CUSTOMER,
            upload=request.FILES.get("file"),
            client_id=request.POST.get("client_id"),
            caption=request.POST.get("caption", ""),
        )
    except HandoffError as exc:
        return JsonResponse({"error": exc.message, "code": exc.code}, status=exc.status)
    html = render_to_string(
        "handoffs/chat.html#message", {"message": result.message, "audience": "customer"}
    )
    return JsonResponse(
        {"html": html, "created": result.created, "seq": result.message.seq},
        status=201 if result.created else 200,
    )


@require_GET
@xframe_options_exempt
def customer_file(request: HttpRequest, token: str, public_id: str) -> HttpResponse:
    conversation = _conversation(token)
    attachment = (
        Attachment.objects.select_related("message")
        .filter(public_id=public_id, message__conversation=conversation)
        .exclude(message__sender=Sender.NOTE)
        .first()
    )
    if attachment is None or not transcript.is_readable(conversation):
        raise Http404("No such file.")
    return attachment_response(attachment, "thumb" if request.GET.get("v") == "thumb" else "file")
