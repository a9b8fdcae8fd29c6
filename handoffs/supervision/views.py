"""The supervisors' pages: the live floor, reassigning, and the transfer report (+ CSV).

Supervisors and admins only (``supervisor_required``); agents get 403. Reads go through
``floor`` and ``reports``, the one write through
``lifecycle.endings.handoff_reassign``.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import wraps

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.validators import MaxValueValidator, MinValueValidator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from ..access import agents as rights
from ..lifecycle.endings import handoff_move_to_team, handoff_reassign
from ..lifecycle.errors import HandoffError
from ..lifecycle.presence import agent_profile_for_superuser
from ..models import Agent, Handoff, Status, Team
from ..pages import HtmxHttpRequest, form_id
from . import charts, floor, reports, routing


def supervisor_required(view):
    """Signed-in supervisors and admins (staff or superusers) with a console profile."""

    @login_required
    @wraps(view)
    def wrapper(request: HtmxHttpRequest, *args, **kwargs):
        agent = Agent.objects.select_related("user").filter(user=request.user).first()
        if agent is None:
            agent = agent_profile_for_superuser(user=request.user)
        if agent is None:
            return render(request, "handoffs/desk/no_profile.html", status=403)
        if not rights.may_supervise(agent):
            return render(request, "handoffs/forbidden.html", {"agent": agent}, status=403)
        request.agent = agent
        return view(request, *args, **kwargs)

    return wrapper


# ---------------------------------------------------------------- the floor
@require_GET
@supervisor_required
def floor_page(request: HtmxHttpRequest) -> HttpResponse:
    context = {"agent": request.agent, "summary": floor.floor_summary()}
    if request.htmx:
        return render(request, "handoffs/supervision/floor.html#floor-summary", context)
    return render(request, "handoffs/supervision/floor.html", context)


@require_http_methods(["GET", "POST"])
@supervisor_required
def floor_reassign(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Move a waiting handoff or an open conversation to another agent, or a waiting
    handoff to another team's queue (``team``)."""
    handoff = get_object_or_404(
        Handoff.objects.select_related("team", "accepted_by__user", "assigned_to__user"), pk=pk
    )
    error, status = "", 200
    if request.method == "POST" and request.POST.get("team"):
        team = Team.objects.filter(slug=request.POST["team"]).first()
        if team is None:
            error, status = "Choose the team to move it to.", 400
        else:
            try:
                handoff_move_to_team(handoff_id=pk, team=team, by=request.user)
            except HandoffError as exc:
                error, status = exc.message, exc.status
            else:
                messages.success(
                    request,
                    f"{handoff.customer_name or handoff.customer} moved to the {team.name} queue.",
                )
                if request.htmx:
                    return HttpResponseClientRedirect("/floor/")
                return redirect("floor")
    elif request.method == "POST":
        to = request.POST.get("to", "")
        target = (
            Agent.objects.select_related("user").filter(pk=pk_of).first()
            if (pk_of := form_id(to)) is not None
            else None
        )
        if target is None:
            error, status = "Choose the agent to move it to.", 400
        else:
            try:
                handoff_reassign(handoff_id=pk, to_agent=target, by=request.user)
            except HandoffError as exc:
                error, status = exc.message, exc.status
            else:
                name = target.user.get_full_name() or target.user.get_username()
                messages.success(
                    request, f"{handoff.customer_name or handoff.customer} moved to {name}."
                )
                if request.htmx:
                    return HttpResponseClientRedirect("/floor/")
                return redirect("floor")
        handoff.refresh_from_db()
    movable = handoff.status in (Status.WAITING, Status.ACCEPTED)
    return render(
        request,
        "handoffs/supervision/reassign.html",
        {
            "agent": request.agent,
            "handoff": handoff,
            "movable": movable,
            "choices": floor.reassign_choices(handoff=handoff) if movable else [],
            "teams": Team.objects.exclude(pk=handoff.team_id) if movable else [],
            "error": error,
        },
        status=status,
    )


# ---------------------------------------------------------------- the transfer report
DATES = [
    MinValueValidator(date(2000, 1, 1), "Choose a date from 2000-01-01 on."),
    MaxValueValidator(date(2999, 12, 31), "Choose a date before 3000-01-01."),
]


class ReportForm(forms.Form):
    """``?from=YYYY-MM-DD&to=YYYY-MM-DD&team=<slug>``; missing dates mean the last 7 days."""

    date_from = forms.DateField(required=False, input_formats=["%Y-%m-%d"], validators=DATES)
    date_to = forms.DateField(required=False, input_formats=["%Y-%m-%d"], validators=DATES)
    team = forms.ModelChoiceField(queryset=Team.objects.all(), to_field_name="slug", required=False)

    @classmethod
    def from_query(cls, query) -> ReportForm:
        return cls(
            {
                "date_from": query.get("from", ""),
                "date_to": query.get("to", ""),
                "team": query.get("team", ""),
            }
        )

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        default = reports.default_filter()
        data["date_from"] = data.get("date_from") or default.date_from
        data["date_to"] = data.get("date_to") or default.date_to
        if data["date_from"] > data["date_to"]:
            raise forms.ValidationError("The start date is after the end date.")
        return data

    def report_filter(self) -> reports.ReportFilter:
        data = self.cleaned_data
        return reports.ReportFilter(
            date_from=data["date_from"], date_to=data["date_to"], team=data.get("team")
        )


def _error_list(form: ReportForm) -> list[str]:
    names = {"date_from": "from", "date_to": "to", "team": "team"}
    return [
        f"{names[field]}: {error}" if field in names else error
        for field, errors in form.errors.items()
        for error in errors
    ]


@require_GET
@supervisor_required
def transfer_report(request: HtmxHttpRequest) -> HttpResponse:
    form = ReportForm.from_query(request.GET)
    context = {
        "agent": request.agent,
        "teams": Team.objects.all(),
        "query": request.GET,
    }
    if not form.is_valid():
        # Shown inside the page, beside the filters: htmx swaps a 422 (base.html's
        # htmx-config), a page without JS gets the whole page with a 400.
        context["errors"] = _error_list(form)
        if request.htmx:
            return render(
                request, "handoffs/supervision/report.html#report-body", context, status=422
            )
        return render(request, "handoffs/supervision/report.html", context, status=400)
    report = reports.transfer_report(form.report_filter())
    context.update(
        report=report,
        csat=reports.csat_report(report.filter),
        f=report.filter,
        length_chart=charts.length_chart(report),
        accept_chart=charts.accept_chart(report) if report.accept else None,
    )
    if request.htmx:
        return render(request, "handoffs/supervision/report.html#report-body", context)
    return render(request, "handoffs/supervision/report.html", context)


@require_GET
@supervisor_required
def transfer_report_csv(request: HtmxHttpRequest) -> HttpResponse:
    form = ReportForm.from_query(request.GET)
    if not form.is_valid():
        return HttpResponse(
            "\n".join(_error_list(form)) + "\n",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    f = form.report_filter()
    name = f"transfers-{f.date_from.isoformat()}-{f.date_to.isoformat()}"
    if f.team is not None:
        name += f"-{f.team.slug}"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    reports.write_csv(f, response)
    return response


# ---------------------------------------------------------------- offers and shifts
ROUTING_DAYS = (1, 7, 30, 90)


@require_GET
@supervisor_required
def routing_report(request: HtmxHttpRequest) -> HttpResponse:
    """Offers (accepted, declined with reasons, timed out, time to accept) and shift
    handovers (per shift: handed over, picked up, time to pick up)."""
    days = form_id(request.GET.get("days")) or 7
    if days not in ROUTING_DAYS:
        days = 7
    until = timezone.now() + timedelta(seconds=1)
    report = routing.routing_report(since=until - timedelta(days=days), until=until)
    return render(
        request,
        "handoffs/supervision/routing_report.html",
        {"agent": request.agent, "report": report, "days": days, "day_choices": ROUTING_DAYS},
    )
