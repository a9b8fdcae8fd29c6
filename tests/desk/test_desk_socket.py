"""The desk socket every agent page opens (``/ws/desk/``): the offer panel, live.

Connecting brings the agent online, which routes the waiting hop to them at once; the
panel arrives over the socket; declining removes it; a colleague's socket never sees it.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from handoffs.lifecycle import offers
from handoffs.models import Offer, Presence
from tests import factories

from .test_consumers import TIMEOUT, socket

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
    pytest.mark.usefixtures("fresh_socket_counts"),
]


async def frames_until(communicator, needle: str, *, without: str = "") -> str:
    """The next frame with ``needle`` (and without ``without``): the snapshot and a push
    may both carry the same panel."""
    while True:
        frame = await communicator.receive_from(timeout=TIMEOUT)
        if needle in frame and not (without and without in frame):
            return frame


@pytest.fixture
def offer_team(teams):
    team = teams["billing-specialist"]
    team.routing_mode = "offer"
    team.save()
    return team


async def test_the_offer_reaches_only_its_agent_and_goes_when_declined(make_agent, offer_team):
    alice = await sync_to_async(make_agent)("alice", teams=[offer_team])
    bob = await sync_to_async(make_agent)("bob", teams=[offer_team], capacity=0)
    hop = await sync_to_async(factories.escalate)("billing-specialist", customer_name="Dora")
    alice_client = await sync_to_async(factories.logged_in)(alice)
    bob_client = await sync_to_async(factories.logged_in)(bob)

    async with (
        socket("/ws/desk/", client=alice_client) as mine,
        socket("/ws/desk/", client=bob_client) as theirs,
    ):
        assert (await mine.connect())[0]
        assert (await theirs.connect())[0]
        # Opening a page brought Alice online: the waiting hop is offered to her.
        panel = await frames_until(mine, "Offered to you: Dora")
        assert 'id="offers-panel"' in panel and 'hx-swap-oob="true"' in panel
        await alice.arefresh_from_db()
        assert alice.presence == Presence.ONLINE
        offer = await Offer.objects.aget(handoff=hop)
        assert offer.agent_id == alice.pk

        await sync_to_async(offers.offer_decline)(offer_id=offer.pk, agent=alice, reason="busy")
        emptied = await frames_until(mine, 'id="offers-panel"', without="Offered to you")
        assert 'class="offer"' not in emptied
        # Bob (capacity 0) was never offered anything: his panel stayed empty.
        snapshot = await theirs.receive_from(timeout=TIMEOUT)
        assert 'id="offers-panel"' in snapshot and "Offered to you" not in snapshot
        assert await theirs.receive_nothing(timeout=0.3)
