"""The agent's offers (decline) and end of shift (review the drafted handovers, then
hand everything over and go offline). Thin: rights in ``access``, writes in
``lifecycle.offers`` / ``lifecycle.shifts``."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from ..lifecycle import offers, shifts
from ..lifecycle.errors import HandoffError
from ..models import Agent, Team
from ..pages import HtmxHttpRequest, flash, form_id
from .views import agent_required


def offers_panel(agent: Agent) -> str:
    """The agent's offer panel (every live offer, re-read) and shift reminder: the
    desk socket's snapshot and every push (an out-of-band swap of ``#offers-panel``)."""
    now = timezone.now()
    return render_to_string(
        "handoffs/desk/offers.html",
        {
            "offers": offers.live_offers_for(agent),
            "reasons": offers.DECLINE_REASONS,
            "reminder": shifts.reminder_due(agent, now),
            "oob": True,
            "agent": agent,
        },
    )


def render_offers_for_user(user_id: int) -> str:
    agent = Agent.objects.select_related("user").filter(user_id=user_id).first()
    return offers_panel(agent) if agent is not None else ""


@require_POST
@agent_required
def offer_decline(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Decline one's own live offer with a reason; the hop moves to the next agent."""
    try:
        offers.offer_decline(
            offer_id=pk,
            agent=request.agent,
            reason=request.POST.get("reason", ""),
            note=request.POST.get("note", ""),
        )
    except HandoffError as exc:
        return flash(request, exc.message, status=exc.status)
    if request.htmx:
        return flash(request, "Offer declined; it goes to a colleague.", status=200, level="info")
    messages.info(request, "Offer declined; it goes to a colleague.")
    return redirect("queue")


def _colleagues(agent: Agent) -> list[Agent]:
    teams = agent.teams.all()
    return list(
        Agent.objects.filter(teams__in=teams, user__is_active=True)
        .exclude(pk=agent.pk)
        .select_related("user")
        .distinct()
        .order_by("user__first_name", "user__username")
    )


@require_http_methods(["GET", "POST"])
@agent_required
def shift_end(request: HtmxHttpRequest) -> HttpResponse:
    """GET: every open conversation with its drafted handover. POST: hand them over
    (a next step each is required; on any error nothing is written and the page comes
    back with every text kept) and go offline."""
    agent = request.agent
    drafts = shifts.drafts_for(agent)
    entered: dict[int, dict[str, str]] = {}
    errors: dict[int, str] = {}
    status = 200
    if request.method == "POST":
        items = []
        for draft in drafts:
            pk = draft.hop.pk
            values = {
                "next_step": request.POST.get(f"next_step-{pk}", ""),
                "text": request.POST.get(f"text-{pk}", draft.text),
                "to": request.POST.get(f"to-{pk}", ""),
            }
            entered[pk] = values
            items.append(shifts.HandoverItem(handoff_id=pk, **values))
        reviewed = {form_id(v) for v in request.POST.getlist("reviewed")}
        errors = shifts.validate(items)
        for draft in drafts:
            if draft.hop.pk not in reviewed and draft.hop.pk not in errors:
                errors[draft.hop.pk] = "This conversation arrived while you were reviewing."
        if not errors:
            try:
                result = shifts.shift_end(agent=agent, items=items)
            except HandoffError as exc:
                messages.error(request, exc.message)
                status = exc.status
            else:
                count = len(result.handed_over)
                messages.success(
                    request,
                    f"Shift ended: {count} conversation{'s' if count != 1 else ''} handed "
                    "over. You are offline until you start a shift again.",
                )
                for reason in result.skipped.values():
                    messages.warning(request, reason)
                return redirect("shift-end")
        else:
            status = 400
    context = {
        "agent": agent,
        "rows": [
            {
                "draft": d,
                "entered": entered.get(d.hop.pk, {}),
                "error": errors.get(d.hop.pk, ""),
            }
            for d in drafts
        ],
        "teams": Team.objects.filter(agents=agent).order_by("slug"),
        "colleagues": _colleagues(agent),
        "shift_ended": agent.shift_ended_at is not None,
        "reminder": shifts.reminder_due(agent, timezone.now()),
    }
    return render(request, "handoffs/desk/shift_end.html", context, status=status)


@require_POST
@agent_required
def shift_start(request: HtmxHttpRequest) -> HttpResponse:
    """Start a shift: online again (offers resume in offer-routed teams)."""
    offers.set_presence(agent=request.agent, presence="online")
    messages.success(request, "Shift started: you are online.")
    return redirect("queue")
