"""Attachments on the bot API: a bot relays a customer's file and sends its own, gets
agents' files in webhooks (a signed link) and through its key, and nobody else's."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from handoffs.api.keys import bot_create
from handoffs.lifecycle.accept import handoff_accept
from handoffs.lifecycle.attachments import attachment_post
from handoffs.models import Attachment, Channel, Message, Sender, WebhookDelivery
from tests.files import images

pytestmark = [pytest.mark.pg, pytest.mark.django_db(transaction=True)]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def api_bot(db):
    return bot_create(name="tier1-bot", callback_url="http://127.0.0.1:9/hook")


@pytest.fixture
def conversation_id(client, api_bot, teams) -> str:
    _bot, key = api_bot
    response = client.post(
        "/api/v1/handoffs",
        {
            "customer": "cust-4521",
            "customer_name": "Dana Whitfield",
            "from_agent": "tier1-bot",
            "to_agent": "billing-specialist",
            "summary": "Refund request",
            "channel": "api",
        },
        content_type="application/json",
        headers=auth(key),
    )
    assert response.status_code == 201, response.content
    return response.json()["handoff"]["conversation"]["id"]


def upload(client, key, conversation_id, data, name, client_id="f-1", **fields):
    return client.post(
        f"/api/v1/conversations/{conversation_id}/attachments",
        {"file": SimpleUploadedFile(name, data), "client_id": client_id, **fields},
        headers=auth(key),
    )


def test_bot_relays_a_customer_file_once_and_reads_it_back(client, api_bot, conversation_id):
    _bot, key = api_bot
    first = upload(client, key, conversation_id, images.png(), "photo.png", caption="my card")
    assert first.status_code == 201, first.content
    message = first.json()["message"]
    assert message["sender"] == "customer" and message["body"] == "my card"
    attachment = message["attachment"]
    assert attachment["content_type"] == "image/png" and attachment["kind"] == "image"
    again = upload(client, key, conversation_id, images.png(), "photo.png", caption="my card")
    assert again.status_code == 200 and again.json()["created"] is False
    assert Attachment.objects.count() == 1
    # With the key, and through the signed link without it.
    got = client.get(attachment["api_url"].split("127.0.0.1:8000")[-1], headers=auth(key))
    assert got.status_code == 200 and got["Content-Type"] == "image/png"
    signed = Client().get(attachment["url"].split("127.0.0.1:8000")[-1])
    assert signed.status_code == 200
    thumb = Client().get(attachment["thumbnail_url"].split("127.0.0.1:8000")[-1])
    assert thumb.status_code == 200
    listed = client.get(f"/api/v1/conversations/{conversation_id}/messages", headers=auth(key))
    assert listed.json()["messages"][-1]["attachment"]["id"] == attachment["id"]


def test_refusals_and_other_bots(client, api_bot, conversation_id):
    _bot, key = api_bot
    html = upload(client, key, conversation_id, images.HTML, "a.png")
    assert html.status_code == 415 and html.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"
    missing = client.post(
        f"/api/v1/conversations/{conversation_id}/attachments",
        {"client_id": "x"},
        headers=auth(key),
    )
    assert missing.status_code == 400 and missing.json()["code"] == "INVALID_REQUEST"
    bad_sender = upload(client, key, conversation_id, images.png(), "a.png", sender="agent")
    assert bad_sender.status_code == 400
    _other, other_key = bot_create(name="other-bot")
    assert upload(client, other_key, conversation_id, images.png(), "a.png").status_code == 404
    assert not Message.objects.filter(sender=Sender.CUSTOMER).exists()


def test_an_agent_file_reaches_the_bot_in_its_webhook(
    client, api_bot, conversation_id, teams, make_agent
):
    from handoffs.models import Conversation

    alice = make_agent("alice", teams=[teams["billing-specialist"]])
    conversation = Conversation.objects.get(public_id=conversation_id)
    assert conversation.channel == Channel.API
    hop = conversation.hops.get()
    handoff_accept(handoff_id=hop.pk, agent=alice)
    muted = upload(client, api_bot[1], conversation_id, images.png(), "b.png", sender="bot")
    assert muted.status_code == 409 and muted.json()["code"] == "BOT_MUTED"
    attachment_post(
        conversation=conversation,
        sender=Sender.AGENT,
        upload=SimpleUploadedFile("refund.pdf", images.pdf()),
        client_id="a-1",
        agent=alice,
    )
    delivery = WebhookDelivery.objects.filter(event="message.created").get()
    sent = delivery.payload["message"]["attachment"]
    assert sent["name"] == "refund.pdf" and sent["content_type"] == "application/pdf"
    got = Client().get(sent["url"].split("127.0.0.1:8000")[-1])
    assert got.status_code == 200 and got["Content-Disposition"].startswith("attachment")
