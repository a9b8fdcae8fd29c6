"""The customer's web chat: anyone holding the conversation's link.

The link (an unguessable token) is the only credential: no cookie authorises anything
here, so these views are exempt from CSRF checks (a forged request would have to know
the token, and whoever knows it may post anyway). That is also what lets the chat work
inside the widget's frame on another site, where browsers withhold cookies.

Every page of a conversation may be framed only by the console itself and the origins
its bot lists (``Bot.widget_origins``): ``Content-Security-Policy: frame-ancestors``.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import get_template
from django.urls import reverse
from django.views.decorators.cache import cache_control
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from ..lifecycle import messages, satisfaction
from ..lifecycle.errors import HandoffError
from ..models import Channel, Conversation, Sender
from ..pages import flash
from . import status, transcript


def _conversation(token: str) -> Conversation:
    conversation = Conversation.objects.select_related("bot").filter(token=token).first()
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


def frame_ancestors(conversation: Conversation | None) -> list[str]:
    origins = ["'self'"]
    if conversation is not None and conversation.bot is not None:
        origins.extend(conversation.bot.frame_origins())
    return origins


def _framable(response: HttpResponse, conversation: Conversation | None) -> HttpResponse:
    """The site's whole CSP (django-csp), with frame-ancestors widened to this
    conversation's bot's widget origins."""
    response._csp_replace = {"frame-ancestors": frame_ancestors(conversation)}  # type: ignore[attr-defined]
    return response


class EmailForm(forms.Form):
    email = forms.EmailField(max_length=254)


def _page(
    request: HttpRequest,
    conversation: Conversation,
    *,
    email_form: EmailForm | None = None,
    notice: str = "",
    status_code: int = 200,
) -> HttpResponse:
    if not transcript.is_readable(conversation):
        return _framable(
            render(request, "handoffs/customers/closed.html", status=410), conversation
        )
    context = {
        "conversation": conversation,
        "chat_messages": transcript.public_messages(conversation),
        "status": status.customer_status(conversation),
        "closed": not conversation.is_open,
        "visible_until": transcript.visible_until(conversation),
        "email_form": email_form or EmailForm(),
        "notice": notice,
        "scores": [(n, satisfaction.LABELS[n]) for n in satisfaction.SCORES],
        "web": conversation.channel == Channel.WEB,
    }
    response = render(request, "handoffs/customers/chat.html", context, status=status_code)
    return _framable(response, conversation)


@require_GET
@xframe_options_exempt
def customer_chat(request: HttpRequest, token: str) -> HttpResponse:
    """The chat while open; read-only with the rating form for a while after resolve."""
    return _page(request, _conversation(token))


@csrf_exempt
@require_POST
@xframe_options_exempt
def customer_message(request: HttpRequest, token: str) -> HttpResponse:
    conversation = _conversation(token)
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


@csrf_exempt
@require_POST
@xframe_options_exempt
def customer_rating(request: HttpRequest, token: str) -> HttpResponse:
    """One tap: a 1-5 score (and the comment typed so far), after resolve."""
    conversation = _conversation(token)
    if conversation.is_open or not transcript.is_readable(conversation):
        return _page(
            request, conversation, notice="You can rate once the chat has ended.", status_code=409
        )
    comment = request.POST.get("comment")
    score = request.POST.get("score") or conversation.csat_score
    try:
        satisfaction.csat_record(
            conversation=conversation,
            score=score,
            comment=comment,
            actor=conversation.customer,
            via="web",
        )
    except HandoffError as exc:
        return _page(request, conversation, notice=exc.message, status_code=400)
    return redirect(reverse("customer-chat", args=[token]) + "#rating")


def _download(conversation: Conversation, body: str, content_type: str, ext: str) -> HttpResponse:
    response = HttpResponse(body, content_type=f"{content_type}; charset=utf-8")
    stamp = conversation.created_at.strftime("%Y-%m-%d")
    response["Content-Disposition"] = f'attachment; filename="conversation-{stamp}.{ext}"'
    response["X-Content-Type-Options"] = "nosniff"
    return _framable(response, conversation)


@require_GET
@xframe_options_exempt
def transcript_text(request: HttpRequest, token: str) -> HttpResponse:
    conversation = _conversation(token)
    if not transcript.is_readable(conversation):
        raise Http404("This conversation is no longer available.")
    return _download(conversation, transcript.as_text(conversation), "text/plain", "txt")


@require_GET
@xframe_options_exempt
def transcript_html(request: HttpRequest, token: str) -> HttpResponse:
    conversation = _conversation(token)
    if not transcript.is_readable(conversation):
        raise Http404("This conversation is no longer available.")
    return _download(conversation, transcript.as_html(conversation), "text/html", "html")


@csrf_exempt
@require_POST
@xframe_options_exempt
def transcript_email(request: HttpRequest, token: str) -> HttpResponse:
    """Email a copy to the address the customer typed (rate-limited per conversation)."""
    conversation = _conversation(token)
    if not transcript.is_readable(conversation):
        raise Http404("This conversation is no longer available.")
    form = EmailForm(request.POST)
    if not form.is_valid():
        return _page(request, conversation, email_form=form, status_code=400)
    try:
        transcript.email_transcript(conversation=conversation, address=form.cleaned_data["email"])
    except transcript.RateLimited:
        return _page(
            request,
            conversation,
            email_form=form,
            notice="You've asked for several copies already; please try again in an hour.",
            status_code=429,
        )
    return _page(request, conversation, notice=f"We sent a copy to {form.cleaned_data['email']}.")


# ---------------------------------------------------------------- the widget
@require_GET
@cache_control(max_age=300, public=True)
def widget_js(request: HttpRequest) -> HttpResponse:
    """``/widget.js``: the launcher bubble and the chat frame for a company's site."""
    source = get_template("handoffs/customers/widget.js").template.source
    response = HttpResponse(source, content_type="text/javascript; charset=utf-8")
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
def widget_demo(request: HttpRequest) -> HttpResponse:
    """An example company page with the widget (demo mode only: it lists open chats)."""
    if not settings.CONSOLE_DEMO_PAGES:
        raise Http404("The widget's example page is served in demo mode only.")
    open_chats = [
        (c, request.build_absolute_uri(reverse("customer-chat", args=[c.token])))
        for c in Conversation.objects.filter(closed_at=None, channel=Channel.WEB).order_by(
            "-created_at"
        )[:20]
    ]
    response = render(request, "handoffs/customers/widget_demo.html", {"open_chats": open_chats})
    # The page plays a company's own site, which frames the console's chat: a real site's
    # policy names the console's origin; this demo accepts any, so it works on any host.
    response._csp_update = {"frame-src": ["'self'", "http:", "https:"]}  # type: ignore[attr-defined]
    return response
