"""The customer's side without a browser: status and estimates, webhooks of web-chat
messages to the bot, ratings (web and bot API), transcript copies, frame policy, the
report's satisfaction figures and the demo bot."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from django.core import mail
from django.utils import timezone

from handoffs import demo_bot
from handoffs.api.keys import bot_create
from handoffs.customers import status
from handoffs.delivery import outbox
from handoffs.lifecycle.accept import handoff_accept
from handoffs.lifecycle.endings import conversation_resolve, handoff_hand_back
from handoffs.lifecycle.messages import message_post
from handoffs.models import Channel, Conversation, Event, Handoff, Sender, WebhookDelivery
from handoffs.supervision import reports
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.pg]


@pytest.fixture
def hook_bot(db):
    return bot_create(name="tier1-bot", callback_url="http://127.0.0.1:9/hooks")


@pytest.fixture
def alice(teams, make_agent):
    return make_agent("alice", teams=[teams["billing-specialist"]])


def web_handoff(bot, **fields) -> Handoff:
    return factories.escalate(bot=bot, channel=Channel.WEB, **fields)


def say(conversation, text: str, client_id: str, sender: str = Sender.CUSTOMER, **kw):
    return message_post(
        conversation=conversation, sender=sender, body=text, client_id=client_id, **kw
    )


# ---------------------------------------------------------------- status and estimates
def test_the_estimate_needs_five_recent_accepts(teams, alice):
    team = teams["billing-specialist"]
    estimate = status.estimate_wait(team, 1)
    assert estimate.seconds is None
    assert estimate.usually_within_min == team.warn_after_secs // 60  # the team's target
    now = timezone.now()
    for n in range(5):  # waited 60 s each, accepted 120 s apart
        hop = factories.escalate()
        accepted = now - timedelta(seconds=600 - 120 * n)
        Handoff.objects.filter(pk=hop.pk).update(
            status="accepted",
            created_at=accepted - timedelta(seconds=60),
            accepted_at=accepted,
        )
    first, third = status.estimate_wait(team, 1), status.estimate_wait(team, 3)
    assert first.seconds == 60 and first.minutes == 1
    assert third.seconds == 60 + 2 * 120 and third.minutes == 5


def test_the_topic_is_the_reason_else_the_first_sentence(teams):
    hop = factories.escalate(summary="Charged twice. Tone: angry.", reason="")
    assert status.topic_of(hop) == "Charged twice."
    hop = factories.escalate(reason="Double charge")
    assert status.topic_of(hop) == "Double charge"


def test_a_change_in_the_queue_renders_only_watched_customers(teams, monkeypatch):
    ahead, mine = factories.escalate(), factories.escalate()
    panels = status.changed_panels(ahead.pk, lambda ids: {mine.conversation_id} & set(ids))
    assert [pk for pk, _ in panels] == [mine.conversation_id]
    assert 'data-position="2"' in panels[0][1]
    assert status.changed_panels(ahead.pk, lambda ids: set()) == []


# ---------------------------------------------------------------- the loop back to the bot
def test_web_chat_customer_messages_go_to_the_bot_while_it_owns_the_conversation(hook_bot, alice):
    bot, _key = hook_bot
    handoff = web_handoff(bot)
    conversation = handoff.conversation
    say(conversation, "Still there?", "c-1")  # waiting: the bot still owns it
    handoff_accept(handoff_id=handoff.pk, agent=alice)
    say(conversation, "Hi Alice", "c-2")  # a person owns it: not to the bot
    say(conversation, "Refund done.", "a-1", sender=Sender.AGENT, agent=alice)  # web: no relay
    handoff_hand_back(handoff_id=handoff.pk, agent=alice, note="Refund done.")
    say(conversation, "One more question", "c-3")
    say(conversation, "One more question", "c-3")  # a retry is not a second webhook
    created = WebhookDelivery.objects.filter(event="message.created").order_by("pk")
    assert [d.payload["message"]["client_id"] for d in created] == ["c-1", "c-3"]
    assert [d.payload["handoff_status"] for d in created] == ["waiting", "bot_hop"]
    assert all(d.payload["message"]["sender"] == "customer" for d in created)
    events = list(WebhookDelivery.objects.order_by("pk").values_list("event", flat=True))
    assert events == [
        "message.created",
        "agent.joined",
        "conversation.handed_back",
        "message.created",
    ]


def test_api_channel_customer_messages_are_not_echoed_back(hook_bot):
    bot, _key = hook_bot
    handoff = factories.escalate(bot=bot)  # a bot with a callback: api by default
    assert handoff.conversation.channel == Channel.API
    say(handoff.conversation, "relayed by the bot", "c-1")
    assert not WebhookDelivery.objects.exists()


def test_the_intake_api_takes_the_channel(client, hook_bot, teams):
    _bot, key = hook_bot
    body = {
        "customer": "cust-1",
        "from_agent": "tier1-bot",
        "to_agent": "billing-specialist",
        "summary": "Help",
        "channel": "web",
    }
    headers = {"Authorization": f"Bearer {key}"}
    answer = client.post("/api/v1/handoffs", body, content_type="application/json", headers=headers)
    assert answer.status_code == 201
    assert answer.json()["handoff"]["conversation"]["channel"] == "web"
    bad = client.post(
        "/api/v1/handoffs",
        {**body, "channel": "fax"},
        content_type="application/json",
        headers=headers,
    )
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_REQUEST"


# ---------------------------------------------------------------- ratings
@pytest.fixture
def resolved(alice, hook_bot):
    handoff = web_handoff(hook_bot[0])
    handoff_accept(handoff_id=handoff.pk, agent=alice)
    say(handoff.conversation, "<b>hi</b>", "c-1")
    conversation_resolve(handoff_id=handoff.pk, agent=alice, summary="Done.")
    handoff.refresh_from_db()
    return handoff


def test_resolve_asks_and_one_post_rates(client, resolved):
    assert resolved.csat_asked_at is not None
    token = resolved.conversation.token
    answer = client.post(f"/c/{token}/rating", {"score": "4", "comment": "quick"})
    assert answer.status_code == 302
    conversation = Conversation.objects.get(pk=resolved.conversation_id)
    assert (conversation.csat_score, conversation.csat_comment) == (4, "quick")
    assert Handoff.objects.get(pk=resolved.pk).csat_score == 4
    event = Event.objects.get(kind="csat.recorded")
    assert event.data == {"score": 4, "comment": True, "via": "web"}
    # A second tap changes the score and keeps the comment.
    client.post(f"/c/{token}/rating", {"score": "2"})
    conversation.refresh_from_db()
    assert (conversation.csat_score, conversation.csat_comment) == (2, "quick")
    bad = client.post(f"/c/{token}/rating", {"score": "9"})
    assert bad.status_code == 400
    assert b"score must be a whole number from 1 to 5" in bad.content
    conversation.refresh_from_db()
    assert conversation.csat_score == 2


def test_an_open_conversation_cannot_be_rated_from_the_page(client, hook_bot):
    handoff = web_handoff(hook_bot[0])
    answer = client.post(f"/c/{handoff.conversation.token}/rating", {"score": "5"})
    assert answer.status_code == 409
    assert Conversation.objects.get(pk=handoff.conversation_id).csat_score is None


def test_the_bot_api_asks_and_records(client, alice, hook_bot):
    bot, key = hook_bot
    handoff = factories.escalate(bot=bot)  # api channel: the console doesn't ask
    handoff_accept(handoff_id=handoff.pk, agent=alice)
    conversation_resolve(handoff_id=handoff.pk, agent=alice)
    assert Handoff.objects.get(pk=handoff.pk).csat_asked_at is None
    url = f"/api/v1/conversations/{handoff.conversation.public_id}/csat"
    headers = {"Authorization": f"Bearer {key}"}
    asked = client.post(url + "/ask", headers=headers)
    assert asked.status_code == 200 and asked.json()["csat"]["asked_at"]
    bad = client.post(url, {"score": 0}, content_type="application/json", headers=headers)
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_REQUEST"
    extra = client.post(url, {"score": 3, "x": 1}, content_type="application/json", headers=headers)
    assert extra.status_code == 400
    ok = client.post(
        url, {"score": 3, "comment": "ok"}, content_type="application/json", headers=headers
    )
    assert ok.status_code == 200
    assert ok.json()["csat"]["score"] == 3 and ok.json()["csat"]["comment"] == "ok"
    assert client.get(url, headers=headers).json()["csat"]["score"] == 3
    _other, other_key = bot_create(name="other-bot")
    foreign = client.get(url, headers={"Authorization": f"Bearer {other_key}"})
    assert foreign.status_code == 404


def test_the_report_and_csv_count_csat_per_agent_team_and_source(resolved, alice, hook_bot):
    satisfied = Conversation.objects.get(pk=resolved.conversation_id)
    from handoffs.lifecycle.satisfaction import csat_record

    csat_record(conversation=satisfied, score=5, actor="c", via="web")
    other = web_handoff(hook_bot[0])  # asked, never answered
    handoff_accept(handoff_id=other.pk, agent=alice)
    conversation_resolve(handoff_id=other.pk, agent=alice)
    f = reports.default_filter()
    csat = reports.csat_report(f)
    assert (csat.overall.asked, csat.overall.rated) == (2, 1)
    assert csat.overall.score == 100 and csat.overall.response_rate == 50
    assert [(r.name, r.asked, r.rated) for r in csat.by_agent] == [("alice", 2, 1)]
    assert [r.name for r in csat.by_team] == ["billing-specialist"]
    assert [r.name for r in csat.by_source] == ["tier1-bot"]

    import io

    out = io.StringIO()
    reports.write_csv(f, out)
    rows = [line.split(",") for line in out.getvalue().splitlines()]
    assert rows[0][-3:] == ["csat_asked", "csat_score", "csat_comment"]
    assert sorted(row[-3:-1] for row in rows[1:]) == [["yes", ""], ["yes", "5"]]
    assert all(len(row) == len(rows[0]) for row in rows)


# ---------------------------------------------------------------- the transcript
def test_the_read_only_page_and_downloads_expire(client, resolved, settings):
    token = resolved.conversation.token
    page = client.get(f"/c/{token}/")
    assert page.status_code == 200
    assert b"&lt;b&gt;hi&lt;/b&gt;" in page.content and b"<b>hi</b>" not in page.content
    assert b"How did we do?" in page.content
    text = client.get(f"/c/{token}/transcript.txt")
    assert "You:\n  <b>hi</b>" in text.content.decode()
    settings.TRANSCRIPT_RETENTION_DAYS = 0
    assert client.get(f"/c/{token}/").status_code == 410
    assert client.get(f"/c/{token}/transcript.txt").status_code == 404


def test_email_me_a_copy_is_rate_limited(client, resolved, settings):
    from django.core.cache import cache

    cache.clear()
    settings.TRANSCRIPT_EMAILS_PER_HOUR = 2
    token = resolved.conversation.token
    assert client.post(f"/c/{token}/transcript/email", {"email": "nope"}).status_code == 400
    for _ in range(2):
        answer = client.post(f"/c/{token}/transcript/email", {"email": "dave@example.com"})
        assert answer.status_code == 200
        assert b"We sent a copy to dave@example.com" in answer.content
    assert (
        client.post(f"/c/{token}/transcript/email", {"email": "x@example.com"}).status_code == 429
    )
    assert [m.to for m in mail.outbox] == [["dave@example.com"], ["dave@example.com"]]
    html = mail.outbox[0].alternatives[0][0]
    assert "&lt;b&gt;hi&lt;/b&gt;" in html
    cache.clear()


# ---------------------------------------------------------------- framing and the widget
def frame_ancestors(response) -> str:
    """The frame-ancestors directive of the page's (whole) Content-Security-Policy."""
    directives = dict(
        part.strip().split(" ", 1)
        for part in response["Content-Security-Policy"].split(";")
        if part.strip()
    )
    assert directives["script-src"] == "'self'"  # the site's policy, only widened
    return directives["frame-ancestors"]


def test_frames_only_from_the_console_and_the_bots_origins(client, hook_bot):
    bot, _key = hook_bot
    handoff = web_handoff(bot)
    url = f"/c/{handoff.conversation.token}/"
    page = client.get(url)
    assert frame_ancestors(page) == "'self'"
    assert "X-Frame-Options" not in page
    bot.widget_origins = "https://shop.example.com\nnot an origin\nhttps://x.example/path"
    bot.save()
    page = client.get(url)
    assert frame_ancestors(page) == "'self' https://shop.example.com"
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        bot.full_clean()
    # Other console pages stay unframable.
    assert client.get("/accounts/login/")["X-Frame-Options"] == "DENY"


def test_widget_js_and_the_demo_page(client, settings):
    script = client.get("/widget.js")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("text/javascript")
    assert b"window.HandoffChat" in script.content
    settings.CONSOLE_DEMO_PAGES = False
    assert client.get("/demo/widget/").status_code == 404
    settings.CONSOLE_DEMO_PAGES = True
    assert client.get("/demo/widget/").status_code == 200


# ---------------------------------------------------------------- the demo bot
def test_the_demo_bot_verifies_and_answers(monkeypatch):
    body = json.dumps({"event": "message.created"}).encode()
    header = outbox.sign("s3cret", int(timezone.now().timestamp()), body)
    assert demo_bot.verify_signature("s3cret", header, body)
    assert not demo_bot.verify_signature("other", header, body)
    assert not demo_bot.verify_signature("s3cret", header, body + b" ")
    assert not demo_bot.verify_signature("s3cret", "t=1,v1=00", body)

    calls: list[tuple[str, dict]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append((request.url.path, json.loads(request.content)))
        return httpx.Response(201, json={})

    bot = demo_bot.DemoBot(
        console_url="http://console",
        key="k",
        secret="s",
        client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    event = {
        "event": "message.created",
        "conversation_id": "c0ffee00-0000-0000-0000-000000000000",
        "customer": "cust-1",
        "handoff_status": "bot_hop",
        "message": {"sender": "customer", "seq": 7, "body": "Where is my refund?"},
    }
    bot.handle({**event, "handoff_status": "waiting"})  # a person is coming: quiet
    bot.handle({**event, "message": {**event["message"], "sender": "agent"}})
    assert calls == []
    bot.handle(event)
    assert calls[0][0].endswith("/messages")
    assert calls[0][1]["sender"] == "bot" and calls[0][1]["client_id"] == "demo-bot-reply-7"
    assert "“Where is my refund?”" in calls[0][1]["body"]
    bot.handle({**event, "message": {"sender": "customer", "seq": 8, "body": "human please"}})
    assert [path for path, _ in calls[1:]] == [
        "/api/v1/conversations/c0ffee00-0000-0000-0000-000000000000/messages",
        "/api/v1/handoffs",
    ]
    assert calls[2][1]["channel"] == "web" and calls[2][1]["to_agent"] == "billing-specialist"
