"""The agent's composer beyond plain text: attachments, saved replies, files.

- ``conversation_attachment``: an agent's upload (multipart ``file``, ``client_id``,
  optional ``caption`` and ``note``), stored by ``lifecycle.attachments``; answers JSON
  (``{"html", "created"}``, or the error shape ``{"error", "code"}``).
- ``agent_file``: a file of a message the signed-in person may see
  (``access.agents.may_see_message``), else 404; never a public path.
- ``conversation_saved_replies`` / ``saved_reply_fill``: the replies this agent may
  use, and one filled from this conversation (``lifecycle.saved_replies``).
"""

from __future__ import annotations

from django.http import Http404, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_POST

from ..access import agents as rights
from ..lifecycle import attachments, saved_replies
from ..lifecycle.errors import HandoffError
from ..lifecycle.presence import agent_profile_for_superuser
from ..models import Agent, Attachment, Handoff, SavedReply, Sender
from ..pages import HtmxHttpRequest, attachment_response
from . import opener
from .views import _conversation_hop, agent_required


def error_json(message: str, code: str, status: int, **extra) -> JsonResponse:
    return JsonResponse({"error": message, "code": code, **extra}, status=status)


@require_POST
@agent_required
def conversation_attachment(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    handoff, view = _conversation_hop(request, pk)
    if handoff.conversation is None:
        raise Http404("No conversation.")
    if not view.may_write:
        reason = rights.why_not(request.agent, handoff) or "You don't own this conversation."
        return error_json(reason, "NOT_FOUND", 404)
    caption = request.POST.get("caption", "")
    refusal = saved_replies.refusal(caption)
    if refusal:
        return error_json(refusal, "UNFILLED_VARIABLES", 400)
    try:
        result = attachments.attachment_post(
            conversation=handoff.conversation,
            sender=Sender.NOTE if request.POST.get("note") else Sender.AGENT,
            upload=request.FILES.get("file"),
            client_id=request.POST.get("client_id"),
            caption=caption,
            agent=request.agent,
        )
    except HandoffError as exc:
        return error_json(exc.message, exc.code, exc.status)
    html = render_to_string(
        "handoffs/chat.html#message", {"message": result.message, "audience": "agent"}
    )
    return JsonResponse(
        {"html": html, "created": result.created, "seq": result.message.seq},
        status=201 if result.created else 200,
    )


@require_GET
def agent_file(request: HtmxHttpRequest, public_id: str) -> HttpResponse:
    """Not signed in, no profile, no right to the message: the same 404 (never a
    redirect that would confirm the file exists)."""
    agent = None
    if request.user.is_authenticated:
        agent = Agent.objects.select_related("user").filter(user=request.user).first()
        agent = agent or agent_profile_for_superuser(user=request.user)
    attachment = Attachment.objects.select_related("message").filter(public_id=public_id).first()
    if attachment is None or not rights.may_see_message(agent, attachment.message):
        raise Http404("No such file.")
    return attachment_response(attachment, "thumb" if request.GET.get("v") == "thumb" else "file")


# ---------------------------------------------------------------- saved replies
def values_for(*, handoff: Handoff, agent: Agent) -> dict[str, str]:
    """The variables' values in this conversation ("" where there is none)."""
    name = " ".join((handoff.customer_name or "").split())
    team = handoff.team
    return {
        "customer.name": name,
        "customer.first_name": name.split()[0] if name else "",
        "agent.name": agent.public_name,
        "team.name": team.name if team else "",
        "topic": opener.stated_topic(handoff) or opener._clean(team.topic if team else ""),
    }


def reply_json(reply: SavedReply) -> dict:
    return {
        "id": reply.pk,
        "shortcut": reply.shortcut,
        "title": reply.title,
        "preview": " ".join(reply.body.split())[:140],
        "scope": "personal" if reply.owner_id else "team",
        "team": reply.team.name if reply.team_id else None,
    }


def usable_replies(agent: Agent):
    return (
        SavedReply.objects.filter(rights.saved_reply_filter(agent))
        .select_related("team")
        .distinct()
        .order_by("shortcut", "team__slug", "pk")
    )


@require_GET
@agent_required
def conversation_saved_replies(request: HtmxHttpRequest, pk: int) -> JsonResponse:
    handoff, view = _conversation_hop(request, pk)
    if not view.may_write:
        return error_json("You don't own this conversation.", "NOT_FOUND", 404)
    return JsonResponse({"replies": [reply_json(r) for r in usable_replies(request.agent)]})


@require_POST
@agent_required
def saved_reply_fill(request: HtmxHttpRequest, pk: int, reply_id: int) -> JsonResponse:
    """One saved reply, filled from this conversation: ``{"text", "problems"}``."""
    handoff, view = _conversation_hop(request, pk)
    reply = usable_replies(request.agent).filter(pk=reply_id).first()
    if not view.may_write or reply is None:
        return error_json("No such saved reply.", "NOT_FOUND", 404)
    filled = saved_replies.fill(reply.body, values=values_for(handoff=handoff, agent=request.agent))
    return JsonResponse(
        {
            "id": reply.pk,
            "shortcut": reply.shortcut,
            "text": filled.text,
            "problems": [p.as_json() for p in filled.problems],
        }
    )
