"""The live sockets, driven through the real ASGI stack (origin check, sessions, routing).

Database writes run through ``sync_to_async`` so their on-commit broadcasts reach the
in-memory channel layer on the test's event loop, as they would in Daphne.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from console.asgi import application
from handoffs.lifecycle.accept import handoff_accept
from handoffs.models import Agent, Event, Handoff, Presence
from tests import factories

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
    pytest.mark.usefixtures("fresh_socket_counts"),
]

ORIGIN = b"http://127.0.0.1:8000"
HOST = b"127.0.0.1:8000"
TIMEOUT = 3


def escalate(team_slug: str, *, summary: str = "Refund for a double charge") -> Handoff:
    """One waiting handoff for ``team_slug``, committed (so its broadcast goes out)."""
    return factories.escalate(team_slug, summary=summary)


logged_in = factories.logged_in


def cookie_of(client: Client) -> bytes:
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@asynccontextmanager
async def socket(
    path: str, *, client: Client | None = None, origin: bytes | None = ORIGIN
) -> AsyncIterator[WebsocketCommunicator]:
    """A communicator on ``path`` that is always disconnected afterwards."""
    headers = [(b"host", HOST)]  # what a browser sends; the origin check compares them
    if client is not None:
        headers.append((b"cookie", cookie_of(client)))
    if origin is not None:
        headers.append((b"origin", origin))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    try:
        yield communicator
    finally:
        await communicator.disconnect()


def row_id(handoff: Handoff) -> str:
    return f'id="handoff-{handoff.pk}"'


@pytest.fixture
def alice(make_agent, teams) -> Agent:
    return make_agent("alice", teams=[teams["billing-specialist"]])


@pytest.fixture
def bob(make_agent, teams) -> Agent:
    return make_agent("bob", teams=[teams["billing-specialist"]])


@pytest.fixture
def tess(make_agent, teams) -> Agent:
    return make_agent("tess", teams=[teams["tech-support"]])


async def test_anonymous_socket_is_refused(alice):
    async with socket("/ws/queue/") as ws:
        connected, code = await ws.connect(timeout=TIMEOUT)

    assert connected is False
    assert code == 4401


async def test_foreign_origin_is_refused(alice):
    client = await sync_to_async(logged_in)(alice)

    async with socket("/ws/queue/", client=client, origin=b"https://evil.example") as ws:
        connected, code = await ws.connect(timeout=TIMEOUT)
    assert connected is False
    # The origin validator's denier closes with the default code: the consumer (whose
    # own refusals are 4401/4403) never ran, so presence did not change either.
    assert code == 1000
    await alice.arefresh_from_db()
    assert alice.presence == Presence.OFFLINE

    async with socket("/ws/queue/", client=client) as ws:
        connected, _ = await ws.connect(timeout=TIMEOUT)
    assert connected is True


async def test_snapshot_has_only_this_agents_waiting_handoffs(alice, bob):
    mine = [await sync_to_async(escalate)("billing-specialist") for _ in range(2)]
    taken = await sync_to_async(escalate)("billing-specialist")
    await sync_to_async(handoff_accept)(handoff_id=taken.pk, agent=bob)
    foreign = await sync_to_async(escalate)("tech-support")
    client = await sync_to_async(logged_in)(alice)

    async with socket("/ws/queue/", client=client) as ws:
        connected, _ = await ws.connect(timeout=TIMEOUT)
        assert connected is True
        snapshot = await ws.receive_from(timeout=TIMEOUT)

    assert 'id="queue-rows"' in snapshot
    assert 'hx-swap-oob="true"' in snapshot
    assert all(row_id(h) in snapshot for h in mine)
    assert row_id(taken) not in snapshot
    assert row_id(foreign) not in snapshot
    assert snapshot.count('class="qrow ') == 2


async def test_new_escalation_arrives_and_accepted_row_goes(alice, bob, tess):
    client = await sync_to_async(logged_in)(alice)

    async with socket("/ws/queue/", client=client) as ws:
        connected, _ = await ws.connect(timeout=TIMEOUT)
        assert connected is True
        await ws.receive_from(timeout=TIMEOUT)  # the snapshot

        # Another team's escalation is sent first: it would arrive before ours.
        foreign = await sync_to_async(escalate)("tech-support")
        new = await sync_to_async(escalate)("billing-specialist", summary="Charged twice")
        arrived = await ws.receive_from(timeout=TIMEOUT)
        assert 'hx-swap-oob="beforeend:#queue-rows"' in arrived
        assert row_id(new) in arrived
        assert "Charged twice" in arrived
        assert "Frustrated" in arrived
        assert row_id(foreign) not in arrived

        await sync_to_async(handoff_accept)(handoff_id=new.pk, agent=bob)
        gone = await ws.receive_from(timeout=TIMEOUT)
        # The removal, then the queue's change number (the page resumes from it).
        assert re.fullmatch(
            f'<article id="handoff-{new.pk}" hx-swap-oob="delete" data-status="accepted">'
            r'</article><span id="queue-seq" hx-swap-oob="true" data-seq="\d+" hidden></span>',
            gone,
        ), gone

        # The other team's escalation and its accept never reach this socket.
        await sync_to_async(handoff_accept)(handoff_id=foreign.pk, agent=tess)
        assert await ws.receive_nothing(timeout=0.2)


async def test_logout_closes_that_users_sockets_only(alice, bob):
    alice_client = await sync_to_async(logged_in)(alice)
    bob_client = await sync_to_async(logged_in)(bob)

    async with (
        socket("/ws/queue/", client=alice_client) as alice_ws,
        socket("/ws/queue/", client=bob_client) as bob_ws,
    ):
        assert (await alice_ws.connect(timeout=TIMEOUT))[0] is True
        assert (await bob_ws.connect(timeout=TIMEOUT))[0] is True
        await alice_ws.receive_from(timeout=TIMEOUT)
        await bob_ws.receive_from(timeout=TIMEOUT)

        await sync_to_async(alice_client.logout)()

        closed = await alice_ws.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": 4401}
        assert await bob_ws.receive_nothing(timeout=0.2)


async def test_presence_online_on_connect_offline_when_last_socket_closes(alice):
    client = await sync_to_async(logged_in)(alice)

    def presence_events() -> list[tuple[str, str]]:
        return [
            (e.data["presence"], e.actor)
            for e in Event.objects.filter(kind="agent.presence", data__agent="alice")
        ]

    first = WebsocketCommunicator(
        application,
        "/ws/queue/",
        headers=[(b"cookie", cookie_of(client)), (b"origin", ORIGIN), (b"host", HOST)],
    )
    second = WebsocketCommunicator(
        application,
        "/ws/queue/",
        headers=[(b"cookie", cookie_of(client)), (b"origin", ORIGIN), (b"host", HOST)],
    )
    try:
        assert (await first.connect(timeout=TIMEOUT))[0] is True
        await first.receive_from(timeout=TIMEOUT)  # sent after presence is recorded
        await alice.arefresh_from_db()
        assert alice.presence == Presence.ONLINE
        assert await sync_to_async(presence_events)() == [("online", "human:alice")]

        assert (await second.connect(timeout=TIMEOUT))[0] is True
        await second.receive_from(timeout=TIMEOUT)
        await first.disconnect()
        await alice.arefresh_from_db()
        assert alice.presence == Presence.ONLINE  # one socket still open

        await second.disconnect()
        await alice.arefresh_from_db()
        assert alice.presence == Presence.OFFLINE
        assert await sync_to_async(presence_events)() == [
            ("online", "human:alice"),
            ("offline", "system"),
        ]
    finally:
        await first.disconnect()
        await second.disconnect()


async def test_card_socket_of_another_teams_handoff_is_refused(alice):
    foreign = await sync_to_async(escalate)("tech-support")
    mine = await sync_to_async(escalate)("billing-specialist")
    client = await sync_to_async(logged_in)(alice)

    async with socket(f"/ws/handoffs/{foreign.pk}/", client=client) as ws:
        connected, code = await ws.connect(timeout=TIMEOUT)
    assert connected is False
    assert code == 4403

    async with socket(f"/ws/handoffs/{mine.pk}/", client=client) as ws:
        connected, _ = await ws.connect(timeout=TIMEOUT)
        assert connected is True
        status = await ws.receive_from(timeout=TIMEOUT)
    assert 'id="handoff-status"' in status
    assert "Waiting for a human" in status
