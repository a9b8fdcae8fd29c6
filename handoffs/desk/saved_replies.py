"""The saved replies page: each agent manages their own, supervisors their teams'.

Everyone sees the replies they may use (their own and their teams'), with how often
each was used; supervisors sort by use to see which are used (``?sort=use``).
Writes go through ``lifecycle.saved_replies``; rights are ``access.agents``'.
"""

from __future__ import annotations

from django.contrib import messages
from django.db.models import F
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from ..access import agents as rights
from ..lifecycle import saved_replies
from ..lifecycle.errors import HandoffError
from ..models import SavedReply, Team
from ..pages import HtmxHttpRequest, form_id
from .views import agent_required


def _teams_managed(request: HtmxHttpRequest) -> list[Team]:
    if not rights.may_supervise(request.agent):
        return []
    return list(Team.objects.order_by("name"))


def _page(request: HtmxHttpRequest, *, form: dict | None = None, editing=None, status=200):
    sort = request.GET.get("sort", "")
    rows = (
        SavedReply.objects.filter(rights.saved_reply_filter(request.agent))
        .select_related("team", "owner__user")
        .distinct()
    )
    if sort == "use":
        rows = rows.order_by(F("use_count").desc(), F("last_used_at").desc(nulls_last=True), "pk")
    else:
        rows = rows.order_by("team__name", "shortcut", "pk")
    replies = [
        (
            reply,
            rights.may_manage_saved_reply(
                request.agent, owner_id=reply.owner_id, team_id=reply.team_id
            ),
        )
        for reply in rows
    ]
    return render(
        request,
        "handoffs/desk/saved_replies.html",
        {
            "agent": request.agent,
            "replies": replies,
            "teams": _teams_managed(request),
            "form": form or {},
            "editing": editing,
            "sort": sort,
            "variables": saved_replies.VARIABLES,
        },
        status=status,
    )


def _save(request: HtmxHttpRequest, reply: SavedReply | None) -> HttpResponse:
    scope = request.POST.get("scope", "personal")
    team = None
    if scope != "personal":
        team = Team.objects.filter(pk=form_id(scope)).first()
        if team is None:
            scope = ""
    form = {k: request.POST.get(k, "") for k in ("shortcut", "title", "body")} | {"scope": scope}
    if not scope:
        form["error"] = "Choose who the reply is for."
        return _page(request, form=form, editing=reply, status=400)
    try:
        saved = saved_replies.saved_reply_save(
            agent=request.agent,
            reply=reply,
            shortcut=form["shortcut"],
            title=form["title"],
            body=form["body"],
            team=team,
        )
    except HandoffError as exc:
        form["error"] = exc.message
        return _page(request, form=form, editing=reply, status=exc.status)
    messages.success(request, f"Saved /{saved.shortcut}.")
    return redirect("saved-replies")


def _managed(request: HtmxHttpRequest, reply_id: int) -> SavedReply:
    reply = SavedReply.objects.filter(pk=reply_id).first()
    if reply is None or not rights.may_manage_saved_reply(
        request.agent, owner_id=reply.owner_id, team_id=reply.team_id
    ):
        raise Http404("No such saved reply of yours.")
    return reply


@require_http_methods(["GET", "POST"])
@agent_required
def saved_reply_list(request: HtmxHttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _save(request, None)
    return _page(request)


@require_http_methods(["GET", "POST"])
@agent_required
def saved_reply_edit(request: HtmxHttpRequest, reply_id: int) -> HttpResponse:
    reply = _managed(request, reply_id)
    if request.method == "POST":
        return _save(request, reply)
    form = {
        "shortcut": reply.shortcut,
        "title": reply.title,
        "body": reply.body,
        "scope": str(reply.team_id) if reply.team_id else "personal",
    }
    return _page(request, form=form, editing=reply)


@require_POST
@agent_required
def saved_reply_delete(request: HtmxHttpRequest, reply_id: int) -> HttpResponse:
    reply = _managed(request, reply_id)
    shortcut = reply.shortcut
    saved_replies.saved_reply_delete(agent=request.agent, reply=reply)
    messages.success(request, f"Deleted /{shortcut}.")
    return redirect("saved-replies")
