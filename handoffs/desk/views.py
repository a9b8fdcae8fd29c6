"""The agents' pages: queue, card, accept, conversation, my conversations, presence.

Thin: permissions here, reads in ``selectors``, writes in ``lifecycle``.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from ..access import agents as rights
from ..lifecycle import accept, endings, saved_replies
from ..lifecycle.errors import HandoffError
from ..lifecycle.offers import set_presence
from ..lifecycle.presence import agent_profile_for_superuser, agent_set_alerts
from ..lifecycle.reading import conversation_mark_read
from ..models import Agent, Handoff, Sender, Status
from ..pages import HtmxHttpRequest, flash, form_id
from ..search.past import customer_past
from . import selectors
from .forms import EndingForm

FOCUS_COMPOSER = "focus_composer"


def agent_required(view):
    """Signed-in staff with a console profile (supervisors included)."""

    @login_required
    @wraps(view)
    def wrapper(request: HtmxHttpRequest, *args, **kwargs):
        agent = Agent.objects.select_related("user").filter(user=request.user).first()
        if agent is None:
            agent = agent_profile_for_superuser(user=request.user)
        if agent is None:
            return render(
                request,
                "handoffs/desk/no_profile.html",
                status=403,
            )
        request.agent = agent
        return view(request, *args, **kwargs)

    return wrapper


@require_GET
@agent_required
def queue(request: HtmxHttpRequest) -> HttpResponse:
    context = {
        "agent": request.agent,
        "handoffs": selectors.queue_for_agent(agent=request.agent),
        "teams": selectors.teams_for(request.agent),
    }
    if request.htmx:
        return render(request, "handoffs/desk/queue.html#queue-rows", context)
    return render(request, "handoffs/desk/queue.html", context)


def _card_context(request: HtmxHttpRequest, handoff: Handoff) -> dict:
    # A hop the agent no longer owns (closed) is shown as it was when they closed it.
    former = not rights.sees_every_queue(request.agent) and handoff.status in rights.CLOSED
    until = handoff.closed_at if former else None
    return {
        "agent": request.agent,
        "handoff": handoff,
        "card": selectors.handoff_card(handoff=handoff, until=until),
        "can_accept": rights.may_accept(request.agent, handoff),
        "read_only_reason": rights.why_not(request.agent, handoff) if former else "",
        "past": customer_past(agent=request.agent, handoff=handoff),
    }


@require_GET
@agent_required
def handoff_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    handoff = selectors.visible_handoff(agent=request.agent, handoff_id=pk)
    if handoff is None:
        raise Http404("No such handoff in your queues.")
    if handoff.accepted_by_id == request.agent.pk and handoff.status != Status.WAITING:
        return redirect("conversation", pk=pk)
    context = _card_context(request, handoff)
    # After a hop, the chat so far is read here before accepting (it isn't on the card).
    context["chat_messages"] = (
        list(
            handoff.conversation.messages.select_related("attachment", "conversation").order_by(
                "seq"
            )
        )
        if handoff.conversation
        else []
    )
    return render(request, "handoffs/desk/handoff.html", context)


@require_POST
@agent_required
def handoff_accept(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    try:
        accept.handoff_accept(handoff_id=pk, agent=request.agent)
    except HandoffError as exc:
        return flash(request, exc.message, status=exc.status)
    # The conversation page opens with the cursor in the composer (once).
    request.session[FOCUS_COMPOSER] = pk
    if request.htmx:
        return HttpResponseClientRedirect(f"/conversations/{pk}/")
    return redirect("conversation", pk=pk)


def _conversation_hop(request: HtmxHttpRequest, pk: int) -> tuple[Handoff, rights.ConversationView]:
    """The hop and this agent's view of its conversation (``access.agents``); 404 if none."""
    handoff = selectors.handoff_for(handoff_id=pk)
    view = rights.conversation_view(request.agent, handoff) if handoff else None
    if view is None:
        raise Http404("No such conversation.")
    return handoff, view


def _conversation_context(
    request: HtmxHttpRequest,
    handoff: Handoff,
    view: rights.ConversationView,
    *,
    ending: EndingForm | None = None,
) -> dict:
    context = _card_context(request, handoff)
    conversation = handoff.conversation
    messages_ = (
        conversation.messages.select_related("attachment", "conversation").order_by("seq")
        if conversation
        else None
    )
    if messages_ is not None and view.until_seq is not None:
        messages_ = messages_.filter(seq__lte=view.until_seq)
    transcript = list(messages_) if messages_ is not None else []
    context.update(
        conversation=conversation,
        chat_messages=transcript,
        owner=view.may_write,
        live=view.live,
        # The opener is offered to each agent who takes the conversation over, until
        # they have said something on this hop.
        agent_has_spoken=any(
            m.sender == Sender.AGENT and m.handoff_id == handoff.pk for m in transcript
        ),
        suggestion=selectors.suggested_first_message(handoff=handoff, agent=request.agent),
        # The customer's link (which reads and writes the chat) and the live trend are
        # for those who still follow the conversation, never a former owner.
        trend=selectors.sentiment_trend(conversation, handoff)
        if conversation and view.live
        else {},
        customer_url=(
            request.build_absolute_uri(reverse("customer-chat", args=[conversation.token]))
            if conversation and view.live
            else ""
        ),
        ending=ending or EndingForm(handoff=handoff, agent=request.agent),
    )
    return context


@require_GET
@agent_required
def conversation(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    handoff, view = _conversation_hop(request, pk)
    context = _conversation_context(request, handoff, view)
    context["focus_composer"] = request.session.pop(FOCUS_COMPOSER, None) == pk
    if view.live and context["chat_messages"]:
        # What this page shows is read (on every device of the agent, live).
        conversation_mark_read(
            agent=request.agent,
            conversation_id=handoff.conversation_id,
            seq=context["chat_messages"][-1].seq,
        )
    return render(request, "handoffs/desk/conversation.html", context)


@require_POST
@agent_required
def conversation_message(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    handoff, view = _conversation_hop(request, pk)
    if handoff.conversation is None:
        raise Http404("No conversation.")
    if not view.may_write:
        reason = rights.why_not(request.agent, handoff) or "You don't own this conversation."
        return flash(request, reason, status=404)
    sender = Sender.NOTE if request.POST.get("note") else Sender.AGENT
    refusal = saved_replies.refusal(request.POST.get("body"))
    if refusal:  # a saved reply's variable left unfilled: never sent raw
        return flash(request, refusal, status=400)
    try:
        result = saved_replies.message_post_counted(
            conversation=handoff.conversation,
            sender=sender,
            body=request.POST.get("body"),
            client_id=request.POST.get("client_id"),
            agent=request.agent,
            reply_id=form_id(request.POST.get("saved_reply")),
        )
    except HandoffError as exc:
        return flash(request, exc.message, status=exc.status)
    return render(
        request,
        "handoffs/chat.html#message",
        {"message": result.message, "audience": "agent"},
        status=201 if result.created else 200,
    )


@require_POST
@agent_required
def conversation_close(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Resolve, transfer, release to the team's queue or hand back (the endings form).

    On any error the page comes back with every choice kept and the error beside them;
    Resolve (which closes the customer's link for good) asks to be confirmed first.
    """
    handoff, view = _conversation_hop(request, pk)
    form = EndingForm(request.POST, handoff=handoff, agent=request.agent)

    def again(status: int) -> HttpResponse:
        context = _conversation_context(request, handoff, view, ending=form)
        return render(request, "handoffs/desk/conversation.html", context, status=status)

    if not form.is_valid():
        return again(400)
    data = form.cleaned_data
    action, note, rating = data["action"], data["note"], data["rating"]
    state = {"sentiment": data["sentiment"] or None, "urgency": data["urgency"] or None}
    if action == "resolve" and not data["confirm"]:
        form.needs_confirmation = True
        return again(200)
    try:
        if action == "resolve":
            endings.conversation_resolve(
                handoff_id=pk, agent=request.agent, summary=note, rating=rating
            )
            done = "Conversation resolved."
        elif action == "transfer":
            endings.handoff_transfer(
                handoff_id=pk, agent=request.agent, to=data["to"], note=note, rating=rating, **state
            )
            done = "Conversation transferred."
        elif action == "release":
            endings.handoff_release(
                handoff_id=pk, agent=request.agent, note=note, rating=rating, **state
            )
            done = "Conversation released to the team's queue."
        else:
            endings.handoff_hand_back(handoff_id=pk, agent=request.agent, note=note, rating=rating)
            done = "Conversation handed back to the bot."
    except HandoffError as exc:
        form.add_error(None, exc.message)
        handoff.refresh_from_db()
        if handoff.status != Status.ACCEPTED or handoff.accepted_by_id != request.agent.pk:
            messages.error(request, exc.message)
            return redirect("queue")
        return again(exc.status)
    messages.success(request, done)
    return redirect("queue")


@require_POST
@agent_required
def presence(request: HtmxHttpRequest) -> HttpResponse:
    value = request.POST.get("presence", "")
    if value not in {"online", "away"}:
        return flash(request, "Choose online or away.", status=400)
    set_presence(agent=request.agent, presence=value)
    if request.htmx:
        return HttpResponse(status=204)
    return redirect("queue")


@require_POST
@agent_required
def alerts(request: HtmxHttpRequest) -> HttpResponse:
    """Turn the agent's alerts on or off (kept for every page and every visit)."""
    agent_set_alerts(agent=request.agent, enabled=request.POST.get("enabled") == "1")
    return HttpResponse(status=204)
