"""The API channel: a bot that owns the customer's channel relays customer messages in
(``/api/v1/conversations/<id>/messages``) and receives agent messages and events as
signed webhooks, delivered by the durable outbox with retries and backoff.

The bot's callback is a real HTTP server on 127.0.0.1 in a thread (``FakeBot``); the
outbox is driven by calling ``outbox.deliver_webhooks`` the way the worker does, and
"time passes" by moving ``next_attempt_at`` into the past.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from handoffs.api.keys import bot_create
from handoffs.delivery import outbox
from handoffs.lifecycle.accept import handoff_accept
from handoffs.lifecycle.endings import conversation_resolve, handoff_hand_back
from handoffs.lifecycle.intake import handoff_intake
from handoffs.lifecycle.messages import message_post
from handoffs.models import Bot, Channel, Conversation, Handoff, Message, OutboxStatus, Sender
from handoffs.models import WebhookDelivery as Delivery

pytestmark = pytest.mark.pg  # `make test` runs these again on PostgreSQL

SUMMARY = "Charged $299 but the plan is $199/mo; customer wants a refund today."


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class FakeBot:
    """A bot's webhook endpoint: records every request, answers from ``statuses``."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # consumed first; then 200

    def next_status(self) -> int:
        return self.statuses.pop(0) if self.statuses else 200


@pytest.fixture
def fake_bot() -> Iterator[FakeBot]:
    state = FakeBot()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.received.append(Received(self.path, dict(self.headers.items()), body))
            status = state.next_status()
            answer = b'{"ok": true}' if status < 300 else b"upstream exploded"
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/handoff"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def verify(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """What a bot does with ``X-Handoff-Signature: t=<ts>,v1=<hex>``."""
    parts = dict(part.split("=", 1) for part in header.split(","))
    timestamp = int(parts["t"])
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), parts["v1"])


@pytest.fixture
def api_bot(db, fake_bot) -> tuple[Bot, str]:
    return bot_create(name="tier1-bot", callback_url=fake_bot.url)


@pytest.fixture
def alice(teams, make_agent):
    return make_agent("alice", teams=[teams["billing-specialist"]])


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def intake(client, api_bot, teams) -> dict:
    """The bot escalates through ``POST /api/v1/handoffs``; returns the handoff JSON."""
    _bot, key = api_bot
    response = client.post(
        "/api/v1/handoffs",
        {
            "customer": "cust-4521",
            "customer_name": "Dana Whitfield",
            "from_agent": "tier1-bot",
            "to_agent": "billing-specialist",
            "summary": SUMMARY,
            "sentiment": "frustrated",
            "urgency": "high",
        },
        content_type="application/json",
        headers=auth(key),
    )
    assert response.status_code == 201, response.content
    return response.json()["handoff"]


def messages_url(conversation_id: str) -> str:
    return f"/api/v1/conversations/{conversation_id}/messages"


def bot_post(client, key: str, conversation_id: str, **body):
    return client.post(
        messages_url(conversation_id), body, content_type="application/json", headers=auth(key)
    )


def handoff_of(data: dict) -> Handoff:
    return Handoff.objects.get(public_id=data["id"])


def make_due() -> None:
    """Let time pass: every pending delivery is due now."""
    Delivery.objects.filter(status=OutboxStatus.PENDING).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


# ---------------------------------------------------------------- webhooks
def test_intake_returns_an_api_conversation(intake):
    conversation = intake["conversation"]
    assert conversation["channel"] == Channel.API
    assert conversation["bot_muted"] is False
    assert conversation["closed"] is False
    assert "/c/" in conversation["customer_url"]
    assert Conversation.objects.filter(public_id=conversation["id"]).exists()


def test_signed_webhooks_for_agent_joined_and_message_created(intake, api_bot, alice, fake_bot):
    bot, _key = api_bot
    handoff = handoff_of(intake)
    handoff_accept(handoff_id=handoff.pk, agent=alice)
    conversation = handoff.conversation
    message_post(
        conversation=conversation,
        sender=Sender.AGENT,
        body="Hi Dana, I can see the $299 charge.",
        client_id="a-1",
        agent=alice,
    )
    message_post(
        conversation=conversation,
        sender=Sender.NOTE,
        body="NOTE-NOT-FOR-THE-BOT",
        client_id="n-1",
        agent=alice,
    )
    # Queued in the transaction, never sent from inside it.
    assert fake_bot.received == []
    assert list(Delivery.objects.values_list("event", "status")) == [
        ("agent.joined", OutboxStatus.PENDING),
        ("message.created", OutboxStatus.PENDING),
    ]

    assert outbox.deliver_webhooks() == 2
    assert [r.headers["X-Handoff-Event"] for r in fake_bot.received] == [
        "agent.joined",
        "message.created",
    ]
    for request in fake_bot.received:
        assert request.path == "/hooks/handoff"
        assert request.headers["Content-Type"] == "application/json"
        assert verify(bot.webhook_secret, request.headers["X-Handoff-Signature"], request.body)
        # A tampered body or another secret does not verify.
        signature = request.headers["X-Handoff-Signature"]
        assert not verify(bot.webhook_secret, signature, request.body + b" ")
        assert not verify("another-secret", signature, request.body)
        assert request.json["conversation_id"] == str(conversation.public_id)
        assert request.json["customer"] == "cust-4521"
    joined, created = (r.json for r in fake_bot.received)
    assert joined["event"] == "agent.joined"
    assert joined["agent"] == "Alice"
    assert joined["agent_id"] == "human:alice"
    assert created["event"] == "message.created"
    assert created["message"]["body"] == "Hi Dana, I can see the $299 charge."
    assert created["message"]["sender"] == "agent"
    assert created["message"]["client_id"] == "a-1"
    assert created["message"]["seq"] == 2
    assert not any(b"NOTE-NOT-FOR-THE-BOT" in r.body for r in fake_bot.received)

    for delivery in Delivery.objects.all():
        assert delivery.status == OutboxStatus.DONE
        assert delivery.attempts == 1
        assert delivery.last_status_code == 200
        assert delivery.delivered_at is not None
    # Nothing is delivered twice.
    make_due()
    assert outbox.deliver_webhooks() == 0
    assert len(fake_bot.received) == 2


def test_a_failing_endpoint_is_retried_with_backoff_and_finally_succeeds(
    intake, api_bot, alice, fake_bot
):
    bot, _key = api_bot
    fake_bot.statuses = [500, 500]
    handoff_accept(handoff_id=handoff_of(intake).pk, agent=alice)
    delivery = Delivery.objects.get(event="agent.joined")

    started = timezone.now()
    assert outbox.deliver_webhooks() == 0
    delivery.refresh_from_db()
    assert delivery.status == OutboxStatus.PENDING
    assert delivery.attempts == 1
    assert delivery.last_status_code == 500
    assert "upstream exploded" in delivery.last_error
    assert started + timedelta(seconds=1) <= delivery.next_attempt_at
    assert delivery.next_attempt_at <= timezone.now() + timedelta(seconds=1)
    # Not due yet: a second pass sends nothing.
    assert outbox.deliver_webhooks() == 0
    assert len(fake_bot.received) == 1

    make_due()
    second_try = timezone.now()
    assert outbox.deliver_webhooks() == 0
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert delivery.status == OutboxStatus.PENDING
    assert delivery.next_attempt_at >= second_try + timedelta(seconds=2)  # backoff doubled

    make_due()
    assert outbox.deliver_webhooks() == 1
    delivery.refresh_from_db()
    assert delivery.status == OutboxStatus.DONE
    assert delivery.attempts == 3
    assert delivery.last_status_code == 200
    assert delivery.last_error == ""
    assert delivery.delivered_at is not None

    assert len(fake_bot.received) == 3
    assert {r.headers["X-Handoff-Delivery"] for r in fake_bot.received} == {str(delivery.pk)}
    assert all(
        verify(bot.webhook_secret, r.headers["X-Handoff-Signature"], r.body)
        for r in fake_bot.received
    )
    assert len({r.body for r in fake_bot.received}) == 1  # the same event each time


def test_an_unreachable_endpoint_is_recorded_and_retried(intake, api_bot, alice, fake_bot):
    bot, _key = api_bot
    Bot.objects.filter(pk=bot.pk).update(callback_url="http://127.0.0.1:9/nothing-listens")
    handoff_accept(handoff_id=handoff_of(intake).pk, agent=alice)
    assert outbox.deliver_webhooks() == 0
    delivery = Delivery.objects.get()
    assert delivery.status == OutboxStatus.PENDING
    assert delivery.attempts == 1
    assert delivery.last_status_code is None
    assert "ConnectError" in delivery.last_error

    Bot.objects.filter(pk=bot.pk).update(callback_url=fake_bot.url)
    make_due()
    assert outbox.deliver_webhooks() == 1
    assert len(fake_bot.received) == 1


def test_the_outbox_gives_up_and_admin_retry_now_requeues(intake, api_bot, alice, fake_bot, client):
    fake_bot.statuses = [503] * outbox.MAX_WEBHOOK_ATTEMPTS
    handoff_accept(handoff_id=handoff_of(intake).pk, agent=alice)
    for _ in range(outbox.MAX_WEBHOOK_ATTEMPTS):
        make_due()
        assert outbox.deliver_webhooks() == 0
    delivery = Delivery.objects.get()
    assert delivery.status == OutboxStatus.FAILED
    assert delivery.attempts == outbox.MAX_WEBHOOK_ATTEMPTS
    assert delivery.last_status_code == 503
    make_due()
    assert outbox.deliver_webhooks() == 0  # given up: the worker leaves it alone
    assert len(fake_bot.received) == outbox.MAX_WEBHOOK_ATTEMPTS

    # An admin sees it in the delivery log and presses "Retry now".
    client.force_login(
        get_user_model().objects.create_superuser("root", "root@example.com", "pw-for-tests-1")
    )
    changelist = "/admin/handoffs/webhookdelivery/"
    page = client.get(changelist)
    assert page.status_code == 200
    assert "Retry now" in page.content.decode()
    answer = client.post(
        changelist, {"action": "retry_now", "_selected_action": [delivery.pk]}, follow=True
    )
    assert answer.status_code == 200
    assert "Queued 1 delivery for retry." in answer.content.decode()
    delivery.refresh_from_db()
    assert delivery.status == OutboxStatus.PENDING
    assert delivery.next_attempt_at <= timezone.now()

    assert outbox.deliver_webhooks() == 1
    delivery.refresh_from_db()
    assert delivery.status == OutboxStatus.DONE
    assert delivery.last_status_code == 200
    assert delivery.attempts == outbox.MAX_WEBHOOK_ATTEMPTS + 1


def test_endings_are_webhooks_too(intake, api_bot, alice, fake_bot, make_agent, teams):
    handoff = handoff_of(intake)
    handoff_accept(handoff_id=handoff.pk, agent=alice)
    back = handoff_hand_back(handoff_id=handoff.pk, agent=alice, note="Refund issued.")
    assert back.to_agent == "tier1-bot"
    outbox.deliver_webhooks()
    events = [r.json for r in fake_bot.received]
    assert [e["event"] for e in events] == ["agent.joined", "conversation.handed_back"]
    assert events[1]["to"] == "tier1-bot"
    assert events[1]["note"] == "Refund issued."


def test_web_chat_conversations_send_no_webhooks(db, teams, alice):
    """A bot without a callback URL: its customers use the web link, nothing is queued."""
    bot, _key = bot_create(name="web-bot")
    handoff = handoff_intake(
        customer="cust-1",
        source_session_id="",
        from_agent="web-bot",
        to_agent="billing-specialist",
        summary=SUMMARY,
        bot=bot,
    ).handoff
    assert handoff.conversation.channel == Channel.WEB
    handoff_accept(handoff_id=handoff.pk, agent=alice)
    assert Delivery.objects.count() == 0


# ---------------------------------------------------------------- the bot is muted
def test_the_bot_is_muted_after_accept_and_unmuted_after_hand_back(client, intake, api_bot, alice):
    _bot, key = api_bot
    conversation_id = intake["conversation"]["id"]
    before = bot_post(
        client, key, conversation_id, sender="bot", body="Let me check", client_id="b-1"
    )
    assert before.status_code == 201, before.content

    handoff = handoff_of(intake)
    handoff_accept(handoff_id=handoff.pk, agent=alice)
    muted = bot_post(client, key, conversation_id, sender="bot", body="Me again", client_id="b-2")
    assert muted.status_code == 409
    assert muted.json()["code"] == "BOT_MUTED"
    assert "muted" in muted.json()["error"]
    assert not Message.objects.filter(client_id="b-2").exists()
    state = client.get(messages_url(conversation_id), headers=auth(key)).json()
    assert state["conversation"]["bot_muted"] is True

    handoff_hand_back(handoff_id=handoff.pk, agent=alice, note="Refund issued; over to you.")
    again = bot_post(client, key, conversation_id, sender="bot", body="Back!", client_id="b-3")
    assert again.status_code == 201, again.content
    assert again.json()["message"]["sender"] == "bot"
    assert again.json()["message"]["author"] == "bot:tier1-bot"
    state = client.get(messages_url(conversation_id), headers=auth(key)).json()
    assert state["conversation"]["bot_muted"] is False


def test_relayed_customer_messages_are_stored_once_per_client_id(client, intake, api_bot, alice):
    _bot, key = api_bot
    conversation_id = intake["conversation"]["id"]
    handoff_accept(handoff_id=handoff_of(intake).pk, agent=alice)  # muted bot ...

    first = bot_post(client, key, conversation_id, body="Is anyone there?", client_id="wa-77")
    assert first.status_code == 201  # ... still relays the customer
    assert first.json()["created"] is True
    message = first.json()["message"]
    assert message["sender"] == "customer"
    assert message["seq"] == 2
    retry = bot_post(client, key, conversation_id, body="Is anyone there?", client_id="wa-77")
    assert retry.status_code == 200
    assert retry.json()["created"] is False
    assert retry.json()["message"] == message
    assert Message.objects.filter(client_id="wa-77").count() == 1

    listed = client.get(messages_url(conversation_id), headers=auth(key)).json()["messages"]
    assert [(m["seq"], m["sender"]) for m in listed] == [(1, "system"), (2, "customer")]
    after = client.get(messages_url(conversation_id) + "?after=1", headers=auth(key)).json()
    assert [m["client_id"] for m in after["messages"]] == ["wa-77"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"body": "hi", "client_id": "x-1", "sender": "agent"}, 400, "INVALID_REQUEST"),
        ({"body": "", "client_id": "x-1"}, 400, "INVALID_REQUEST"),
        ({"body": "hi"}, 400, "INVALID_REQUEST"),
        ({"body": "x" * 10_001, "client_id": "x-1"}, 413, "PAYLOAD_TOO_LARGE"),
    ],
)
def test_bad_relayed_messages_are_refused(client, intake, api_bot, body, status, code):
    _bot, key = api_bot
    answer = bot_post(client, key, intake["conversation"]["id"], **body)
    assert answer.status_code == status
    assert answer.json()["code"] == code
    assert Message.objects.count() == 0


def test_another_bots_key_gets_404(client, intake, db):
    _other, other_key = bot_create(name="other-bot")
    conversation_id = intake["conversation"]["id"]
    got = client.get(messages_url(conversation_id), headers=auth(other_key))
    assert got.status_code == 404
    assert got.json()["code"] == "NOT_FOUND"
    posted = bot_post(client, other_key, conversation_id, body="spoof", client_id="s-1")
    assert posted.status_code == 404
    assert not Message.objects.filter(client_id="s-1").exists()
    assert client.get(messages_url(conversation_id)).status_code == 401


def test_a_closed_conversation_answers_410(client, intake, api_bot, alice):
    _bot, key = api_bot
    handoff = handoff_of(intake)
    handoff_accept(handoff_id=handoff.pk, agent=alice)
    conversation_resolve(handoff_id=handoff.pk, agent=alice, summary="Refunded.")
    answer = bot_post(client, key, intake["conversation"]["id"], body="thanks!", client_id="c-9")
    assert answer.status_code == 410
    assert answer.json()["code"] == "CONVERSATION_CLOSED"
    state = client.get(messages_url(intake["conversation"]["id"]), headers=auth(key)).json()
    assert state["conversation"]["closed"] is True
