"""Reconnect without gaps: the snapshot sent on (re)connect is read from the database, so
whatever happened while a socket was down (its doorbells are lost) shows correctly."""

from __future__ import annotations

import re

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from console.asgi import application
from handoffs.lifecycle.accept import handoff_accept
from handoffs.models import Agent, Handoff
from tests import factories

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
    pytest.mark.usefixtures("fresh_socket_counts"),
]

TIMEOUT = 3


def escalate(team_slug: str, *, urgency: str = "normal") -> Handoff:
    return factories.escalate(
        team_slug, summary="Card declined at checkout", sentiment="neutral", urgency=urgency
    )


def session_headers(agent: Agent) -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(agent.user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    return [
        (b"cookie", cookie),
        (b"origin", b"http://127.0.0.1:8000"),
        (b"host", b"127.0.0.1:8000"),
    ]


def rows_in(snapshot: str) -> list[int]:
    return [
        int(pk) for pk in re.findall(r'<article class="qrow[^"]*" id="handoff-(\d+)"', snapshot)
    ]


async def connect_and_read_snapshot(headers: list[tuple[bytes, bytes]]) -> str:
    communicator = WebsocketCommunicator(application, "/ws/queue/", headers=headers)
    try:
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected is True
        snapshot = await communicator.receive_from(timeout=TIMEOUT)
        assert await communicator.receive_nothing(timeout=0.1)
    finally:
        await communicator.disconnect()
    assert 'id="queue-rows"' in snapshot
    assert 'hx-swap-oob="true"' in snapshot  # replaces the whole list, stale rows included
    return snapshot


async def test_reconnect_snapshot_shows_what_changed_while_disconnected(make_agent, teams):
    alice = await sync_to_async(make_agent)("alice", teams=[teams["billing-specialist"]])
    bob = await sync_to_async(make_agent)("bob", teams=[teams["billing-specialist"]])
    headers = await sync_to_async(session_headers)(alice)
    before = await sync_to_async(escalate)("billing-specialist", urgency="low")

    first = await connect_and_read_snapshot(headers)
    assert rows_in(first) == [before.pk]

    # While the socket is down: three escalations arrive, and bob accepts one of them.
    arrived = [
        await sync_to_async(escalate)("billing-specialist", urgency=urgency)
        for urgency in ["high", "normal", "critical"]
    ]
    accepted = arrived[0]
    await sync_to_async(handoff_accept)(handoff_id=accepted.pk, agent=bob)

    second = await connect_and_read_snapshot(headers)

    assert rows_in(second) == [arrived[2].pk, arrived[1].pk, before.pk]
    assert f'id="handoff-{accepted.pk}"' not in second
