"""The agent console's pages. Thin: permissions here, reads in selectors, writes in services."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from . import selectors, services
from .models import Agent, Handoff, Status


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails
    agent: Agent


def agent_required(view):
    """Signed-in staff with a console profile (supervisors included)."""

    @login_required
    @wraps(view)
    def wrapper(request: HtmxHttpRequest, *args, **kwargs):
        agent = Agent.objects.select_related("user").filter(user=request.user).first()
        if agent is None:
            return render(
                request,
                "handoffs/no_profile.html",
                status=403,
            )
        request.agent = agent
        return view(request, *args, **kwargs)

    return wrapper


def flash(request: HttpRequest, message: str, *, status: int, level: str = "error") -> HttpResponse:
    return render(
        request, "handoffs/_flash.html", {"message": message, "level": level}, status=status
    )


@require_GET
@agent_required
def queue(request: HtmxHttpRequest) -> HttpResponse:
    context = {
        "agent": request.agent,
        "handoffs": selectors.queue_for_agent(agent=request.agent),
        "teams": selectors.teams_for(request.agent),
    }
    if request.htmx:
        return render(request, "handoffs/queue.html#queue-rows", context)
    return render(request, "handoffs/queue.html", context)


def _card_context(request: HtmxHttpRequest, handoff: Handoff) -> dict:
    return {
        "agent": request.agent,
        "handoff": handoff,
        "card": selectors.handoff_card(handoff=handoff),
        "can_accept": handoff.status == Status.WAITING,
    }


@require_GET
@agent_required
def handoff_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    handoff = selectors.visible_handoff(agent=request.agent, handoff_id=pk)
    if handoff is None:
        raise Http404("No such handoff in your queues.")
    if handoff.status == Status.ACCEPTED and handoff.accepted_by_id == request.agent.pk:
        return redirect("conversation", pk=pk)
    return render(request, "handoffs/handoff.html", _card_context(request, handoff))


@require_POST
@agent_required
def handoff_accept(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    try:
        services.handoff_accept(handoff_id=pk, agent=request.agent)
    except services.HandoffError as exc:
        return flash(request, exc.message, status=exc.status)
    if request.htmx:
        return HttpResponseClientRedirect(f"/conversations/{pk}/")
    return redirect("conversation", pk=pk)


@require_GET
@agent_required
def conversation(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    handoff = selectors.visible_handoff(agent=request.agent, handoff_id=pk)
    if handoff is None or (
        handoff.accepted_by_id != request.agent.pk and not request.agent.is_supervisor
    ):
        raise Http404("No such conversation.")
    return render(request, "handoffs/conversation.html", _card_context(request, handoff))


@require_GET
@agent_required
def my_conversations(request: HtmxHttpRequest) -> HttpResponse:
    conversations = Handoff.objects.filter(
        accepted_by=request.agent, status=Status.ACCEPTED
    ).select_related("team")
    return render(
        request,
        "handoffs/my_conversations.html",
        {"agent": request.agent, "conversations": conversations},
    )


@require_POST
@agent_required
def presence(request: HtmxHttpRequest) -> HttpResponse:
    value = request.POST.get("presence", "")
    if value not in {"online", "away"}:
        return flash(request, "Choose online or away.", status=400)
    services.agent_set_presence(agent=request.agent, presence=value)
    if request.htmx:
        return HttpResponse(status=204)
    return redirect("queue")
