"""The agent's inbox page, read marks and profile (time zone).

Thin: rights in ``access.agents``, reads in ``inbox``, writes in ``lifecycle.reading``.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ..access import agents as rights
from ..lifecycle.errors import HandoffError
from ..lifecycle.reading import agent_set_time_zone, conversation_mark_read, known_zones
from ..pages import HtmxHttpRequest, flash
from . import inbox, selectors
from .views import agent_required


@require_GET
@agent_required
def my_conversations(request: HtmxHttpRequest) -> HttpResponse:
    rows = inbox.inbox_for_agent(agent=request.agent)
    context = {"agent": request.agent, "rows": rows}
    if request.htmx:
        return render(request, "handoffs/desk/my_conversations.html#inbox-rows", context)
    return render(request, "handoffs/desk/my_conversations.html", context)


@require_POST
@agent_required
def conversation_read(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Mark the conversation of hop ``pk`` read up to ``seq`` (its last message if not
    given): the badge clears on every device of the agent. 204, or 400 / 404."""
    handoff = selectors.handoff_for(handoff_id=pk)
    view = rights.conversation_view(request.agent, handoff) if handoff else None
    if view is None or not view.live or handoff.conversation_id is None:
        raise Http404("No such conversation.")
    raw = request.POST.get("seq", "")
    if raw and not raw.isdigit():
        return flash(request, "seq must be a whole number.", status=400)
    try:
        conversation_mark_read(
            agent=request.agent,
            conversation_id=handoff.conversation_id,
            seq=int(raw) if raw else None,
        )
    except HandoffError as exc:
        return flash(request, exc.message, status=exc.status)
    return HttpResponse(status=204)


class ProfileForm(forms.Form):
    time_zone = forms.ChoiceField(label="Time zone", choices=())

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [(z, z) for z in sorted(known_zones())]


@require_http_methods(["GET", "POST"])
@agent_required
def profile(request: HtmxHttpRequest) -> HttpResponse:
    """The agent's time zone: stored by the browser on the first visit (``detected=1``,
    answered 204; an agent who already chose one keeps it), changed here any time."""
    agent = request.agent
    if request.method == "POST":
        form = ProfileForm(request.POST)
        detected = request.POST.get("detected") == "1"
        if detected and agent.time_zone:
            return HttpResponse(status=204)
        if form.is_valid():
            try:
                agent_set_time_zone(agent=agent, zone=form.cleaned_data["time_zone"])
            except HandoffError as exc:
                return flash(request, exc.message, status=exc.status)
            if detected:
                return HttpResponse(status=204)
            messages.success(request, f"Times are now shown in {agent.time_zone}.")
            return redirect("profile")
        if detected:
            return flash(request, "Unknown time zone.", status=400)
        status = 400
    else:
        form = ProfileForm(initial={"time_zone": agent.time_zone})
        status = 200
    return render(
        request, "handoffs/desk/profile.html", {"agent": agent, "form": form}, status=status
    )
