"""The supervisors' live floor (``/ws/floor/``) and reassigning, audited.

Sockets go through the real ASGI stack; database writes run through ``sync_to_async`` so
their on-commit broadcasts reach the in-memory channel layer on the test's loop.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from console.asgi import application
from handoffs.desk import selectors
from handoffs.lifecycle import timers
from handoffs.lifecycle.accept import handoff_accept
from handoffs.lifecycle.endings import conversation_resolve, handoff_reassign
from handoffs.lifecycle.errors import AgentAtCapacity, HandoffNotFound, NotReassignable
from handoffs.lifecycle.messages import message_post
from handoffs.lifecycle.presence import agent_set_presence
from handoffs.models import Agent, Event, Handoff, Presence, Role, Sender, Status
from handoffs.realtime import broadcast
from handoffs.supervision import floor
from tests import factories

ORIGIN = b"http://127.0.0.1:8000"
TIMEOUT = 3
pytestmark = [pytest.mark.pg, pytest.mark.usefixtures("fresh_socket_counts")]


@pytest.fixture
def people(teams, make_agent) -> dict[str, Agent]:
    billing, tech = teams["billing-specialist"], teams["tech-support"]
    return {
        "sue": make_agent("sue", role=Role.SUPERVISOR),
        "alice": make_agent("alice", teams=[billing]),
        "bob": make_agent("bob", teams=[tech]),
        "carol": make_agent("carol", teams=[billing], capacity=1),
    }


def escalate(team_slug: str = "billing-specialist", name: str = "Dana Whitfield") -> Handoff:
    return factories.escalate(team_slug, customer_name=name, summary="Refund for a double charge.")


logged_in = factories.logged_in


@asynccontextmanager
async def socket(path: str, agent: Agent | None) -> AsyncIterator[WebsocketCommunicator]:
    headers = [(b"origin", ORIGIN), (b"host", b"127.0.0.1:8000")]
    if agent is not None:
        client = await sync_to_async(logged_in)(agent)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    try:
        yield communicator
    finally:
        await communicator.disconnect()


async def floor_message(communicator: WebsocketCommunicator) -> str:
    message = await communicator.receive_from(timeout=TIMEOUT)
    assert 'id="floor-summary"' in message and 'hx-swap-oob="true"' in message
    return message


def tile(html: str, name: str) -> str:
    found = re.search(rf'id="tile-{name}".*?<span class="tile-value">(.*?)</span>', html, re.S)
    assert found, name
    return found.group(1).strip()


# ---------------------------------------------------------------- the socket
@pytest.mark.parametrize(("who", "code"), [("alice", 4403), (None, 4401)])
@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_agents_and_strangers_are_refused(people, who, code):
    async with socket("/ws/floor/", people[who] if who else None) as ws:
        connected, close_code = await ws.connect()
        assert not connected and close_code == code


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_floor_updates_when_a_handoff_arrives_and_an_agent_goes_away(people):
    alice = people["alice"]
    await sync_to_async(agent_set_presence)(agent=alice, presence=Presence.ONLINE)
    async with socket("/ws/floor/", people["sue"]) as ws:
        connected, _ = await ws.connect()
        assert connected
        snapshot = await floor_message(ws)
        assert tile(snapshot, "waiting") == "0"
        assert f'id="floor-agent-{alice.pk}" data-presence="online"' in snapshot

        handoff = await sync_to_async(escalate)()
        update = await floor_message(ws)
        assert tile(update, "waiting") == "1"
        assert f'id="floor-handoff-{handoff.pk}"' in update
        assert "Dana Whitfield" in update
        assert re.search(
            r'id="floor-team-billing-specialist">.*?class="num waiting">1<', update, re.S
        )

        await sync_to_async(agent_set_presence)(agent=alice, presence=Presence.AWAY)
        update = await floor_message(ws)
        assert f'id="floor-agent-{alice.pk}" data-presence="away"' in update
        assert "1 away" in update
        assert await ws.receive_nothing(timeout=0.2)
        # A supervisor watching the floor is at work: online while the floor is open.
        sue = await sync_to_async(Agent.objects.get)(pk=people["sue"].pk)
        assert sue.presence == Presence.ONLINE
        assert f'id="floor-agent-{sue.pk}" data-presence="online"' in update

    sue = await sync_to_async(Agent.objects.get)(pk=people["sue"].pk)
    assert sue.presence == Presence.OFFLINE


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_the_summary_is_rendered_once_per_event_not_per_socket(people, monkeypatch):
    async with (
        socket("/ws/floor/", people["sue"]) as one,
        socket("/ws/floor/", people["sue"]) as two,
    ):
        assert (await one.connect())[0] and (await two.connect())[0]
        await floor_message(one)
        await floor_message(two)
        renders = []
        real = floor.floor_summary
        monkeypatch.setattr(floor, "floor_summary", lambda **kw: renders.append(1) or real(**kw))
        await sync_to_async(escalate)()
        first, second = await floor_message(one), await floor_message(two)
        assert first == second
        assert len(renders) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_an_sla_breach_reaches_the_floor(people):
    async with socket("/ws/floor/", people["sue"]) as ws:
        assert (await ws.connect())[0]
        await floor_message(ws)
        handoff = await sync_to_async(escalate)(name="Lee Park")
        await floor_message(ws)
        late = handoff.created_at + timedelta(minutes=10)
        await sync_to_async(timers.run_due)(now=late)
        update = await floor_message(ws)
        assert "SLA breach</strong>: Lee Park waited 10m 00s in billing-specialist" in update


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_the_new_owner_is_told_live(people):
    handoff = await sync_to_async(escalate)()
    await sync_to_async(handoff_accept)(handoff_id=handoff.pk, agent=people["alice"])
    async with socket("/ws/queue/", people["bob"]) as bob_queue:
        assert (await bob_queue.connect())[0]
        await bob_queue.receive_from(timeout=TIMEOUT)  # the queue snapshot
        sue = people["sue"]
        await sync_to_async(handoff_reassign)(
            handoff_id=handoff.pk, to_agent=people["bob"], by=sue.user
        )
        notice = await bob_queue.receive_from(timeout=TIMEOUT)
        while 'id="nav-unread"' in notice:  # his inbox badge: the conversation is his now
            notice = await bob_queue.receive_from(timeout=TIMEOUT)
        assert 'hx-swap-oob="beforeend:#flash"' in notice
        assert "Sue gave you the conversation with Dana Whitfield." in notice
        assert f'href="/conversations/{handoff.pk}/"' in notice


# ---------------------------------------------------------------- reassigning
@pytest.mark.django_db
def test_reassign_a_waiting_handoff_is_audited(people, sent, django_capture_on_commit_callbacks):
    handoff = escalate()
    with django_capture_on_commit_callbacks(execute=True):
        moved = handoff_reassign(
            handoff_id=handoff.pk, to_agent=people["bob"], by=people["sue"].user
        )
    assert moved.assigned_to == people["bob"]
    assert moved.team.slug == "tech-support"  # bob doesn't serve billing: one of his teams
    assert moved.status == Status.WAITING and moved.reassigned_at is not None
    event = Event.objects.get(kind="handoff.reassigned")
    assert event.actor == "human:sue" and event.handoff_id == handoff.pk
    assert event.data == {
        "by": "sue",
        "status": "waiting",
        "from_agent": None,
        "previously_assigned": None,
        "to_agent": "bob",
        "team_from": "billing-specialist",
        "team_to": "tech-support",
    }
    assert handoff.pk in [h.pk for h in selectors.queue_for_agent(agent=people["bob"])]
    assert handoff.pk not in [h.pk for h in selectors.queue_for_agent(agent=people["alice"])]
    groups = [group for group, _ in sent]
    assert broadcast.queue_group("billing-specialist") in groups  # off the old team's screens
    assert broadcast.user_group(people["bob"].user_id) in groups
    assert broadcast.FLOOR in groups


@pytest.mark.django_db
def test_reassign_an_open_conversation_moves_its_owner(people, sent):
    handoff = escalate()
    alice, carol = people["alice"], people["carol"]
    handoff_accept(handoff_id=handoff.pk, agent=alice)
    moved = handoff_reassign(handoff_id=handoff.pk, to_agent=carol, by=people["sue"].user)
    assert moved.accepted_by == carol and moved.status == Status.ACCEPTED
    assert moved.human_session_id == ""  # carol gets a memory session of her own
    event = Event.objects.get(kind="handoff.reassigned")
    assert event.actor == "human:sue"
    assert (event.data["from_agent"], event.data["to_agent"]) == ("alice", "carol")
    # Only the new owner may write now.
    with pytest.raises(HandoffNotFound):
        message_post(
            conversation=moved.conversation,
            sender=Sender.AGENT,
            body="hi",
            client_id="x1",
            agent=alice,
        )
    message_post(
        conversation=moved.conversation,
        sender=Sender.AGENT,
        body="Hi, Carol here.",
        client_id="x2",
        agent=carol,
    )


@pytest.mark.django_db
def test_reassign_respects_capacity_and_state(people, sent):
    carol = people["carol"]  # capacity 1
    busy = escalate()
    handoff_accept(handoff_id=busy.pk, agent=carol)
    other = escalate()
    handoff_accept(handoff_id=other.pk, agent=people["alice"])
    with pytest.raises(AgentAtCapacity):
        handoff_reassign(handoff_id=other.pk, to_agent=carol, by=people["sue"].user)
    assert Handoff.objects.get(pk=other.pk).accepted_by == people["alice"]
    with pytest.raises(NotReassignable):
        handoff_reassign(handoff_id=other.pk, to_agent=people["alice"], by=people["sue"].user)
    conversation_resolve(handoff_id=busy.pk, agent=carol)
    with pytest.raises(NotReassignable):
        handoff_reassign(handoff_id=busy.pk, to_agent=people["bob"], by=people["sue"].user)
    assert not Event.objects.filter(kind="handoff.reassigned").exists()


@pytest.mark.django_db
def test_reassign_through_the_floor(people, sent):
    handoff = escalate()
    sue = logged_in(people["sue"])
    page = sue.get(f"/floor/handoffs/{handoff.pk}/reassign")
    assert page.status_code == 200 and "Assign the waiting handoff to" in page.content.decode()
    response = sue.post(f"/floor/handoffs/{handoff.pk}/reassign", {"to": people["alice"].pk})
    assert response.status_code == 302 and response.url == "/floor/"
    assert Handoff.objects.get(pk=handoff.pk).assigned_to == people["alice"]
    assert Event.objects.get(kind="handoff.reassigned").data["by"] == "sue"
    floor_page = sue.get("/floor/").content.decode()
    assert "Dana Whitfield moved to Alice." in floor_page
    assert "<strong>Reassigned</strong> by sue" in floor_page
    bad = sue.post(f"/floor/handoffs/{handoff.pk}/reassign", {"to": "nobody"})
    assert bad.status_code == 400 and "Choose the agent" in bad.content.decode()
    again = sue.post(f"/floor/handoffs/{handoff.pk}/reassign", {"to": people["alice"].pk})
    assert again.status_code == 409 and "already assigned to Alice" in again.content.decode()


@pytest.mark.django_db
def test_the_floor_page_and_its_htmx_refresh(people, sent):
    escalate()
    sue = logged_in(people["sue"])
    page = sue.get("/floor/").content.decode()
    assert 'ws-connect="/ws/floor/"' in page and tile(page, "waiting") == "1"
    partial = sue.get("/floor/", headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in partial and 'id="floor-summary"' in partial
    assert "hx-swap-oob" not in partial


@pytest.mark.django_db
def test_stuck_conversations_are_listed(people, sent):
    handoff = escalate()
    handoff_accept(handoff_id=handoff.pk, agent=people["alice"])
    agent_set_presence(agent=people["alice"], presence=Presence.OFFLINE)
    summary = floor.floor_summary()
    assert [(s.handoff.pk, s.reason) for s in summary.stuck] == [(handoff.pk, "alice is offline")]
