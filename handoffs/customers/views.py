"""The customer's web chat page: anyone holding the conversation's link."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from ..lifecycle import messages
from ..lifecycle.errors import HandoffError
from ..models import Conversation, Sender
from ..pages import flash


def _open_conversation(token: str) -> Conversation | None:
    return Conversation.objects.filter(token=token).first()


@require_GET
def customer_chat(request: HttpRequest, token: str) -> HttpResponse:
    """The customer's web chat: anyone holding the link, until the conversation closes."""
    conversation = _open_conversation(token)
    if conversation is None:
        raise Http404("No such conversation.")
    if not conversation.is_open:
        return render(request, "handoffs/customers/closed.html", status=410)
    messages_ = conversation.messages.exclude(sender=Sender.NOTE).order_by("seq")
    return render(
        request,
        "handoffs/customers/chat.html",
        {"conversation": conversation, "chat_messages": messages_},
    )


@require_POST
def customer_message(request: HttpRequest, token: str) -> HttpResponse:
    conversation = _open_conversation(token)
    if conversation is None:
        raise Http404("No such conversation.")
    try:
        result = messages.message_post(
            conversation=conversation,
            sender=Sender.CUSTOMER,
            body=request.POST.get("body"),
            client_id=request.POST.get("client_id"),
        )
    except HandoffError as exc:
        return flash(request, exc.message, status=exc.status)
    return render(
        request,
        "handoffs/chat.html#message",
        {"message": result.message, "audience": "customer"},
        status=201 if result.created else 200,
    )
