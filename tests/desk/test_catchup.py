"""Reconnect catch-up: a queue or conversation socket that says what it saw last
(``?after=``) gets only what it missed; a full snapshot past the gap limit."""

from __future__ import annotations

import re

import pytest
from asgiref.sync import sync_to_async

from handoffs.lifecycle.accept import handoff_accept
from tests.desk.test_consumers import TIMEOUT, escalate, logged_in, row_id, socket

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
    pytest.mark.usefixtures("fresh_socket_counts"),
]

SEQ = re.compile(r'id="queue-seq" hx-swap-oob="true" data-seq="(\d+)"')


@pytest.fixture
def alice(make_agent, teams):
    return make_agent("alice", teams=[teams["billing-specialist"]])


@pytest.fixture
def bob(make_agent, teams):
    return make_agent("bob", teams=[teams["billing-specialist"]])


async def test_a_queue_socket_resumes_from_its_last_change(alice, bob):
    kept = await sync_to_async(escalate)("billing-specialist", summary="Kept on screen")
    client = await sync_to_async(logged_in)(alice)
    async with socket("/ws/queue/", client=client) as ws:
        assert (await ws.connect(timeout=TIMEOUT))[0]
        snapshot = await ws.receive_from(timeout=TIMEOUT)
    assert 'id="queue-rows"' in snapshot and row_id(kept) in snapshot
    seen = int(SEQ.search(snapshot).group(1))

    # While she is away: two arrive, a colleague takes one, another team's arrives.
    new = await sync_to_async(escalate)("billing-specialist", summary="Arrived meanwhile")
    taken = await sync_to_async(escalate)("billing-specialist", summary="Taken meanwhile")
    await sync_to_async(handoff_accept)(handoff_id=taken.pk, agent=bob)
    foreign = await sync_to_async(escalate)("tech-support", summary="Not her team")

    async with socket(f"/ws/queue/?after={seen}", client=client) as ws:
        assert (await ws.connect(timeout=TIMEOUT))[0]
        frame = await ws.receive_from(timeout=TIMEOUT)
    assert 'id="queue-rows"' not in frame  # not a snapshot: only what changed
    # (kept changed within the 5-change overlap: it may be resent, as its current row)
    assert f'id="handoff-{new.pk}"' in frame and "beforeend:#queue-rows" in frame
    assert f'<article id="handoff-{taken.pk}" hx-swap-oob="delete">' in frame
    assert "Not her team" not in frame and "Arrived meanwhile" in frame
    assert f'<article id="handoff-{foreign.pk}" hx-swap-oob="delete">' in frame  # harmless
    assert int(SEQ.search(frame).group(1)) > seen


async def test_a_queue_socket_too_far_behind_gets_a_snapshot(alice, settings):
    settings.CATCHUP_GAP_LIMIT = 2
    client = await sync_to_async(logged_in)(alice)
    async with socket("/ws/queue/", client=client) as ws:
        assert (await ws.connect(timeout=TIMEOUT))[0]
        seen = int(SEQ.search(await ws.receive_from(timeout=TIMEOUT)).group(1))
    arrived = [await sync_to_async(escalate)("billing-specialist") for _ in range(3)]
    async with socket(f"/ws/queue/?after={seen}", client=client) as ws:
        assert (await ws.connect(timeout=TIMEOUT))[0]
        frame = await ws.receive_from(timeout=TIMEOUT)
    assert 'id="queue-rows"' in frame
    assert all(row_id(h) in frame for h in arrived)


async def test_a_number_from_another_epoch_gets_a_snapshot(alice):
    """A page's number from before a restart (or a Redis that lost the log) is ahead of
    the log: the page must start over."""
    kept = await sync_to_async(escalate)("billing-specialist")
    client = await sync_to_async(logged_in)(alice)
    async with socket("/ws/queue/?after=999999", client=client) as ws:
        assert (await ws.connect(timeout=TIMEOUT))[0]
        frame = await ws.receive_from(timeout=TIMEOUT)
    assert 'id="queue-rows"' in frame and row_id(kept) in frame
