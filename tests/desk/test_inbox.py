"""The agent's inbox: unread counts from read marks, who waits longest, the pushed
badge and rows (to the owner only), the read endpoint, the profile's time zone and the
middleware that renders every console time in it."""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone

from handoffs.desk import inbox
from handoffs.lifecycle.accept import handoff_accept
from handoffs.lifecycle.errors import HandoffError
from handoffs.lifecycle.messages import message_post
from handoffs.lifecycle.reading import agent_set_time_zone, conversation_mark_read
from handoffs.models import Handoff, Message, ReadMark, Sender
from handoffs.realtime import broadcast
from tests import factories

from .test_consumers import socket

pytestmark = [pytest.mark.django_db(transaction=True)]


def say(handoff: Handoff, sender: str, body: str, agent=None, at=None) -> Message:
    with transaction.atomic():
        message = message_post(
            conversation=handoff.conversation,
            sender=sender,
            body=body,
            client_id=uuid.uuid4().hex,
            agent=agent,
        ).message
    if at is not None:
        Message.objects.filter(pk=message.pk).update(created_at=at)
        message.created_at = at
    return message


def accepted(agent, **fields) -> Handoff:
    hop = factories.escalate("billing-specialist", **fields)
    handoff_accept(handoff_id=hop.pk, agent=agent)
    return Handoff.objects.select_related("conversation").get(pk=hop.pk)


def badge_of(agent, rows: list[inbox.InboxRow]) -> dict:
    """The badge's one-query reading of the inbox, held to the full inbox's rules."""
    entries = inbox.badge_entries(agent=agent)
    assert [e.handoff_id for e in entries] == [r.handoff.pk for r in rows]
    assert [e.unread for e in entries] == [bool(r.unread) for r in rows]
    return inbox.badge_context(entries)


@pytest.fixture
def alice(teams, make_agent):
    return make_agent("alice", teams=[teams["billing-specialist"]], capacity=5)


@pytest.fixture
def bob(teams, make_agent):
    return make_agent("bob", teams=[teams["billing-specialist"]])


@pytest.mark.pg
def test_unread_waiting_and_order(alice):
    now = timezone.now()
    answered = accepted(alice, customer_name="Ann")
    quiet = accepted(alice, customer_name="Ben")
    newer = accepted(alice, customer_name="Cy")
    say(answered, Sender.CUSTOMER, "Hello?", at=now - timedelta(minutes=9))
    say(answered, Sender.AGENT, "Here, looking.", agent=alice, at=now - timedelta(minutes=8))
    say(newer, Sender.CUSTOMER, "First", at=now - timedelta(minutes=7))
    say(newer, Sender.AGENT, "Yes?", agent=alice, at=now - timedelta(minutes=6))
    first = say(newer, Sender.CUSTOMER, "Are you still there?", at=now - timedelta(minutes=5))
    say(newer, Sender.CUSTOMER, "Please answer!", at=now - timedelta(minutes=1))
    Handoff.objects.filter(pk=quiet.pk).update(waiting_since=now - timedelta(minutes=3))

    rows = inbox.inbox_for_agent(agent=alice)
    # Longest-waiting first (Cy since 5 min, Ben since his handoff 3 min ago), then the
    # answered one.
    assert [r.handoff.pk for r in rows] == [newer.pk, quiet.pk, answered.pk]
    by_pk = {r.handoff.pk: r for r in rows}
    assert by_pk[newer.pk].waiting_since == first.created_at
    assert by_pk[newer.pk].unread == 3
    assert by_pk[newer.pk].last_message.body == "Please answer!"
    assert by_pk[quiet.pk].waiting_since == now - timedelta(minutes=3)
    assert by_pk[answered.pk].waiting_since is None
    assert badge_of(alice, rows)["unread_conversations"] == 2
    assert by_pk[quiet.pk].sentiment_now is None  # Ben hasn't written

    # Read marks: up to a seq, never backwards, never past the last message.
    conversation_mark_read(agent=alice, conversation_id=newer.conversation_id, seq=first.seq)
    assert {r.handoff.pk: r.unread for r in inbox.inbox_for_agent(agent=alice)}[newer.pk] == 1
    assert not conversation_mark_read(agent=alice, conversation_id=newer.conversation_id, seq=1)
    assert conversation_mark_read(agent=alice, conversation_id=newer.conversation_id, seq=10**6)
    mark = ReadMark.objects.get(agent=alice, conversation_id=newer.conversation_id)
    assert mark.last_read_seq == newer.conversation.messages.order_by("-seq").first().seq
    rows = inbox.inbox_for_agent(agent=alice)
    assert {r.handoff.pk: r.unread for r in rows}[newer.pk] == 0
    assert badge_of(alice, rows)["unread_conversations"] == 1
    # The mood now, from what the customer wrote on this hop.
    say(quiet, Sender.CUSTOMER, "This is awful. I am furious, I hate this, worst service ever!")
    rows = inbox.inbox_for_agent(agent=alice)
    assert {r.handoff.pk: r for r in rows}[quiet.pk].sentiment_now == "angry"
    badge_of(alice, rows)  # the badge still agrees with the inbox


@pytest.mark.usefixtures("fresh_socket_counts")
def test_reading_pushes_the_badge_to_every_socket_of_the_agent(alice, bob, sent):
    hop = accepted(alice, customer_name="Ann")
    say(hop, Sender.CUSTOMER, "Before her inbox page is open")
    assert not [e for _, e in sent if e["type"] == "inbox.rows"]  # rows only for a page
    assert [e for _, e in sent if e["type"] == "inbox.update"]  # the badge always
    broadcast.inbox_page_opened(alice.user_id, 1)
    conversation_mark_read(agent=alice, conversation_id=hop.conversation_id)
    sent.clear()
    say(hop, Sender.CUSTOMER, "Still there?")
    frames = [(g, e) for g, e in sent if e["type"].startswith("inbox.")]
    assert {g for g, _ in frames} == {
        broadcast.user_group(alice.user_id),
        broadcast.inbox_group(alice.user_id),
    }  # nothing of Alice's inbox reaches Bob
    badge = next(e["html"] for g, e in frames if e["type"] == "inbox.update")
    assert 'data-count="1"' in badge and f'data-alert-handoff="{hop.pk}"' in badge
    assert 'data-alert-preview="Still there?"' in badge
    sent.clear()
    with transaction.atomic():
        conversation_mark_read(agent=alice, conversation_id=hop.conversation_id)
    badge = next(e["html"] for g, e in sent if e["type"] == "inbox.update")
    assert 'data-count="0"' in badge and "data-alert" not in badge and " hidden" in badge
    sent.clear()
    # Her own reply alerts no one but updates her rows (the customer no longer waits).
    say(hop, Sender.AGENT, "Yes, here.", agent=alice)
    rows = next(e["html"] for g, e in sent if e["type"] == "inbox.rows")
    assert "Answered" in rows and "data-alert" not in next(
        e["html"] for g, e in sent if e["type"] == "inbox.update"
    )


@pytest.mark.usefixtures("fresh_socket_counts")
def test_hostile_customer_text_is_escaped_in_the_badge_and_rows(alice, sent):
    broadcast.inbox_page_opened(alice.user_id, 1)
    hop = accepted(alice, customer_name='<img src=x onerror="alert(1)">')
    say(hop, Sender.CUSTOMER, '"><script>alert(2)</script>')
    html = " ".join(e["html"] for _, e in sent if e["type"].startswith("inbox."))
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html


def test_the_read_endpoint(alice, bob):
    hop = accepted(alice, customer_name="Ann")
    say(hop, Sender.CUSTOMER, "Hi")
    client = factories.logged_in(alice)
    assert client.post(f"/conversations/{hop.pk}/read", {"seq": "abc"}).status_code == 400
    assert not ReadMark.objects.exists()  # nothing half-written
    assert client.post(f"/conversations/{hop.pk}/read", {"seq": "2"}).status_code == 204
    assert ReadMark.objects.get(agent=alice).last_read_seq == 2
    assert client.post(f"/conversations/{hop.pk}/read").status_code == 204
    assert ReadMark.objects.get(agent=alice).last_read_seq == hop.conversation.messages.count()
    # Someone who may not watch the conversation: 404, nothing stored.
    other = factories.logged_in(bob)
    assert other.post(f"/conversations/{hop.pk}/read").status_code == 404
    assert not ReadMark.objects.filter(agent=bob).exists()
    assert client.get(f"/conversations/{hop.pk}/read").status_code == 405


def test_opening_the_conversation_reads_it_and_the_nav_shows_the_count(alice):
    hop = accepted(alice, customer_name="Ann")
    other = accepted(alice, customer_name="Ben")
    say(hop, Sender.CUSTOMER, "Hi")
    say(other, Sender.CUSTOMER, "Hello")
    client = factories.logged_in(alice)
    queue = client.get("/").content.decode()
    assert 'id="nav-unread"' in queue and 'data-count="2"' in queue
    client.get(f"/conversations/{hop.pk}/")
    page = client.get("/conversations/").content.decode()
    assert 'data-count="1"' in page
    assert f'id="inbox-{other.pk}"' in page and f'id="inbox-{hop.pk}"' in page
    assert page.count('class="unread-count"') == 1


def test_the_profile_stores_the_zone_and_refuses_an_unknown_one(alice):
    client = factories.logged_in(alice)
    detected = {"time_zone": "America/New_York", "detected": "1"}
    assert client.post("/profile/", detected).status_code == 204
    alice.refresh_from_db()
    assert alice.time_zone == "America/New_York"
    # A browser in another zone doesn't overwrite a zone already stored.
    assert client.post("/profile/", {"time_zone": "Asia/Tokyo", "detected": "1"}).status_code == 204
    alice.refresh_from_db()
    assert alice.time_zone == "America/New_York"
    # The agent changes it in the form.
    response = client.post("/profile/", {"time_zone": "Asia/Tokyo"})
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.time_zone == "Asia/Tokyo"
    bad = client.post("/profile/", {"time_zone": "Mars/Olympus"})
    assert bad.status_code == 400 and "Select a valid choice" in bad.content.decode()
    alice.refresh_from_db()
    assert alice.time_zone == "Asia/Tokyo"
    with pytest.raises(HandoffError):
        agent_set_time_zone(agent=alice, zone="Not/AZone")


def test_every_console_time_is_rendered_in_the_agents_zone(alice):
    hop = accepted(alice, customer_name="Ann")
    message = say(hop, Sender.CUSTOMER, "Hi")
    agent_set_time_zone(agent=alice, zone="America/New_York")
    html = factories.logged_in(alice).get(f"/conversations/{hop.pk}/").content.decode()
    ny = message.created_at.astimezone(zoneinfo.ZoneInfo("America/New_York"))
    assert f'data-fmt="time">{ny:%H:%M}</time>' in html
    assert 'data-tz="America/New_York"' in html and "(America/New_York)" in html
    # Without a stored zone: the site's zone, and the browser is asked for its own.
    agent_set_time_zone(agent=alice, zone="UTC")
    html = factories.logged_in(alice).get(f"/conversations/{hop.pk}/").content.decode()
    assert f'data-fmt="time">{message.created_at:%H:%M}</time>' in html


@pytest.mark.asyncio
@pytest.mark.usefixtures("fresh_socket_counts")
async def test_the_inbox_socket_and_the_badge_on_other_sockets(alice, bob):
    hop = await sync_to_async(accepted)(alice, customer_name="Ann")
    alice_client = await sync_to_async(factories.logged_in)(alice)
    bob_client = await sync_to_async(factories.logged_in)(bob)
    async with (
        socket("/ws/inbox/", client=alice_client) as rows_ws,
        socket("/ws/queue/", client=alice_client) as queue_ws,
        socket("/ws/inbox/?badge", client=bob_client) as bob_ws,
        socket("/ws/inbox/?badge", client=alice_client) as report_ws,
        socket("/ws/inbox/") as anonymous,
    ):
        assert (await rows_ws.connect(timeout=3))[0]
        snapshot = await rows_ws.receive_from(timeout=3)
        assert f'id="inbox-{hop.pk}"' in snapshot and 'id="nav-unread"' in snapshot
        assert (await queue_ws.connect(timeout=3))[0]
        assert 'id="nav-unread"' in await queue_ws.receive_from(timeout=3)
        assert (await bob_ws.connect(timeout=3))[0]
        bob_snapshot = await bob_ws.receive_from(timeout=3)
        assert "inbox-rows" not in bob_snapshot and 'data-count="0"' in bob_snapshot
        assert (await report_ws.connect(timeout=3))[0]  # a page with no socket of its own
        assert "inbox-rows" not in await report_ws.receive_from(timeout=3)
        connected, code = await anonymous.connect(timeout=3)
        assert not connected and code == 4401

        await sync_to_async(say)(hop, Sender.CUSTOMER, "Are you there?")
        badge = await queue_ws.receive_from(timeout=3)
        assert 'data-count="1"' in badge and f'data-alert-handoff="{hop.pk}"' in badge
        frames = [await rows_ws.receive_from(timeout=3), await rows_ws.receive_from(timeout=3)]
        assert any("Are you there?" in f and 'id="inbox-rows"' in f for f in frames)
        report_badge = await report_ws.receive_from(timeout=3)
        assert 'data-count="1"' in report_badge and "inbox-rows" not in report_badge
        assert await report_ws.receive_nothing(timeout=0.3)  # no rows for a badge socket
        assert await bob_ws.receive_nothing(timeout=0.3)
