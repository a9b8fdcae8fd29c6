"""Looking back: the history of closed conversations, their read-only transcripts, and
search. Thin: rights in ``access.agents``, reads in ``search``."""

from __future__ import annotations

from django import forms
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from ..access import agents as rights
from ..models import Agent, Handoff, Status, Team
from ..pages import HtmxHttpRequest
from ..search import finder
from ..search.history import HistoryFilters, history_agents, history_for, history_teams
from ..search.past import customer_past
from . import selectors
from .views import agent_required

PAGE_SIZE = 25
OUTCOMES = [
    ("", "Any outcome"),
    (Status.RESOLVED, "Resolved"),
    (Status.TRANSFERRED, "Transferred"),
    (Status.HANDED_BACK, "Handed back"),
]


class AgentChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Agent) -> str:
        return obj.display_name


class HistoryForm(forms.Form):
    """The history page's filters (a GET form): every field optional."""

    team = forms.ModelChoiceField(
        queryset=Team.objects.none(), required=False, empty_label="Any team"
    )
    agent = AgentChoice(queryset=Agent.objects.none(), required=False, empty_label="Anyone")
    outcome = forms.ChoiceField(choices=OUTCOMES, required=False)
    since = forms.DateField(
        required=False, label="Closed from", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="to", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, viewer: Agent, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = history_teams(viewer)
        self.fields["agent"].queryset = history_agents(viewer)

    def clean(self) -> dict:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            raise forms.ValidationError("The first day comes after the last one.")
        return data

    def filters(self) -> HistoryFilters:
        data = self.cleaned_data
        return HistoryFilters(
            team=data.get("team"),
            agent=data.get("agent"),
            outcome=data.get("outcome") or None,
            since=data.get("since"),
            until=data.get("until"),
        )


@require_GET
@agent_required
def history(request: HtmxHttpRequest) -> HttpResponse:
    """The closed conversations the agent may read, filtered, 25 to a page."""
    form = HistoryForm(request.GET or None, viewer=request.agent)
    status = 200
    page = None
    if form.is_bound and not form.is_valid():
        status = 400
    else:
        hops = history_for(agent=request.agent, filters=form.filters() if form.is_bound else None)
        page = Paginator(hops, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"agent": request.agent, "form": form, "page": page, "query": query.urlencode()}
    template = "handoffs/desk/history.html"
    if request.htmx and not request.htmx.boosted:
        template += "#results"
    return render(request, template, context, status=status)


@require_GET
@agent_required
def transcript(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """A closed hop's read-only transcript: its chain of hops, their handoff cards (the
    bot's summary, each transfer note) and the chat up to where the viewer may read."""
    hop = selectors.handoff_for(handoff_id=pk)
    view = rights.transcript_view(request.agent, hop) if hop else None
    if view is None:
        if hop is not None and rights.conversation_view(request.agent, hop) is not None:
            return redirect("conversation", pk=pk)
        if hop is not None and rights.may_view_handoff(request.agent, hop):
            return redirect("handoff", pk=pk)
        raise Http404("No such conversation in your history.")
    whole = view.until_seq is None
    chain = selectors.chain_of(hop, until=None if whole else hop.closed_at)
    messages = []
    if hop.conversation_id is not None:
        qs = hop.conversation.messages.order_by("seq")
        if not whole:
            qs = qs.filter(seq__lte=view.until_seq)
        messages = list(qs)
    context = {
        "agent": request.agent,
        "handoff": hop,
        "chain": [(link, _transcript_link(request.agent, link)) for link in chain],
        "names": selectors.display_names(chain or [hop]),
        "chat_messages": messages,
        "whole": whole,
        "past": customer_past(agent=request.agent, handoff=hop),
    }
    return render(request, "handoffs/desk/transcript.html", context)


def _transcript_link(agent: Agent, hop: Handoff) -> str:
    if rights.transcript_view(agent, hop) is not None:
        return reverse("transcript", args=[hop.pk])
    if rights.conversation_view(agent, hop) is not None:
        return reverse("conversation", args=[hop.pk])
    if rights.may_view_handoff(agent, hop):
        return reverse("handoff", args=[hop.pk])
    return ""


@require_GET
@agent_required
def search(request: HtmxHttpRequest) -> HttpResponse:
    """Search what the agent may see: customers, handoff summaries and notes, messages."""
    query = request.GET.get("q", "").strip()
    context = {"agent": request.agent, "search_query": query, "results": None, "error": ""}
    status = 200
    try:
        if query:
            context["results"] = finder.search_for_agent(
                agent=request.agent,
                query=query,
                messages=finder.messages_limit(request.GET.get("messages", "")),
            )
    except finder.SearchError as exc:
        context["error"], status = exc.message, 400
    return render(request, "handoffs/desk/search.html", context, status=status)
