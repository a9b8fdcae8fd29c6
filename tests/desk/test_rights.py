"""People's rights end when they end (findings 2-5 of issue 12), on pages, htmx endpoints,
sockets and pushed frames alike, all decided by ``handoffs.access.agents``.

2. After a transfer the former owner reads the transcript up to the handover, read-only,
   and nothing written afterwards (the new owner's notes included); their open socket is
   told why and closed, a fresh one is refused.
3. A supervisor's reassign, a team removal, a role change and a deactivation close or
   narrow the affected sockets at once.
4. ``human:<username>`` assigns the hop: only that agent (or a supervisor) sees and
   accepts it, and it says "assigned to you".
5. Its queue row is pushed only to them (and supervisors): no ghost rows in the team.

Writes run through ``sync_to_async`` so their on-commit broadcasts reach the in-memory
layer on the test's loop, as in Daphne.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from console.asgi import application
from handoffs.api.keys import bot_create
from handoffs.desk import selectors
from handoffs.lifecycle.accept import handoff_accept
from handoffs.lifecycle.endings import (
    conversation_resolve,
    handoff_hand_back,
    handoff_reassign,
    handoff_transfer,
)
from handoffs.lifecycle.errors import HandoffNotFound
from handoffs.lifecycle.messages import message_post
from handoffs.models import Agent, Handoff, Role, Sender, Status
from tests import factories

pytestmark = pytest.mark.pg

TIMEOUT = 3
HEADERS = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]


@pytest.fixture
def people(make_agent, teams) -> dict[str, Agent]:
    billing, tech = teams["billing-specialist"], teams["tech-support"]
    return {
        "alice": make_agent("alice", teams=[billing]),
        "bob": make_agent("bob", teams=[billing, tech]),
        "dan": make_agent("dan", teams=[billing]),
        "sam": make_agent("sam", role=Role.SUPERVISOR),
    }


def cookie(agent: Agent) -> bytes:
    client = Client()
    client.force_login(agent.user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@asynccontextmanager
async def socket(path: str, agent: Agent) -> AsyncIterator[WebsocketCommunicator]:
    headers = [*HEADERS, (b"cookie", await sync_to_async(cookie)(agent))]
    communicator = WebsocketCommunicator(application, path, headers=headers)
    try:
        yield communicator
    finally:
        await communicator.disconnect()


async def until_closed(ws: WebsocketCommunicator) -> tuple[list[str], int]:
    """Every frame up to the close, and the close code."""
    frames: list[str] = []
    while True:
        output = await ws.receive_output(timeout=TIMEOUT)
        if output["type"] == "websocket.close":
            return frames, output.get("code", 1000)
        frames.append(output.get("text", ""))


def escalate(**fields) -> Handoff:
    return factories.escalate(customer_name="Dana Whitfield", **fields)


def accepted_by(agent: Agent, **fields) -> Handoff:
    hop = escalate(**fields)
    handoff_accept(handoff_id=hop.pk, agent=agent)
    hop.refresh_from_db()
    return hop


def say(hop: Handoff, agent: Agent | None, body: str, *, note: bool = False) -> None:
    sender = Sender.NOTE if note else Sender.AGENT
    if agent is None:
        sender = Sender.CUSTOMER
    client_id = re.sub(r"[^A-Za-z0-9_.:-]", "-", body)[:60]
    message_post(
        conversation=hop.conversation, sender=sender, body=body, client_id=client_id, agent=agent
    )


def transfer_to_bob(hop: Handoff, alice: Agent) -> Handoff:
    return handoff_transfer(
        handoff_id=hop.pk, agent=alice, to="human:bob", note="Refund approved, needs payout."
    )


# ---------------------------------------------------------------- 2. transfer
def test_the_former_owner_reads_up_to_the_handover_only(people):
    alice, bob = people["alice"], people["bob"]
    hop = accepted_by(alice)
    say(hop, alice, "Alice-before: looking into it")
    say(hop, alice, "Alice-note-before", note=True)
    nxt = transfer_to_bob(hop, alice)
    handoff_accept(handoff_id=nxt.pk, agent=bob)
    say(
        nxt,
        bob,
        "Bob-note-after: customer charged twice for one order, flagged for fraud",
        note=True,
    )
    say(nxt, None, "Customer-after: thanks Bob")

    client = factories.logged_in(alice)
    page = client.get(f"/conversations/{hop.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Alice-before" in html and "Alice-note-before" in html
    assert "being transferred" in html  # the system line she saw
    assert "Bob-note-after" not in html
    assert "Customer-after" not in html
    assert "fraud" not in html
    assert 'id="composer"' not in html
    assert 'ws-connect="/ws/conversations/' not in html  # the page-wide desk socket stays
    assert "/c/" not in html  # the customer's link (which reads the chat) is withheld
    assert "passed to Bob" in html

    # The later hop is not hers, by page, card or htmx endpoint.
    assert client.get(f"/conversations/{nxt.pk}/").status_code == 404
    assert client.get(f"/handoffs/{nxt.pk}/").status_code == 404
    posted = client.post(
        f"/conversations/{hop.pk}/messages",
        {"body": "can I still speak?", "client_id": "late-1"},
        HTTP_HX_REQUEST="true",
    )
    assert posted.status_code == 404
    assert not hop.conversation.messages.filter(client_id="late-1").exists()

    # Bob, the owner now, reads everything.
    bob_page = factories.logged_in(bob).get(f"/conversations/{nxt.pk}/").content.decode()
    assert "Bob-note-after" in bob_page and "Alice-note-before" in bob_page


def test_hand_back_and_resolve_leave_the_same_read_only_view(people, bot):
    alice = people["alice"]
    hop = accepted_by(alice, bot=bot)
    handoff_hand_back(handoff_id=hop.pk, agent=alice, note="Bot can do the refund.")
    html = factories.logged_in(alice).get(f"/conversations/{hop.pk}/").content.decode()
    assert "handed back to tier1-bot" in html
    assert 'id="composer"' not in html

    other = accepted_by(alice)
    conversation_resolve(handoff_id=other.pk, agent=alice, summary="done")
    html = factories.logged_in(alice).get(f"/conversations/{other.pk}/").content.decode()
    assert "was resolved" in html and 'ws-connect="/ws/conversations/' not in html


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("fresh_socket_counts")
async def test_the_former_owners_open_socket_is_told_and_closed(people):
    alice, bob = people["alice"], people["bob"]
    hop = await sync_to_async(accepted_by)(alice)
    async with socket(f"/ws/conversations/{hop.pk}/", alice) as ws:
        assert (await ws.connect(timeout=TIMEOUT))[0] is True
        await ws.receive_from(timeout=TIMEOUT)  # the snapshot

        nxt = await sync_to_async(transfer_to_bob)(hop, alice)
        frames, code = await until_closed(ws)
        assert code == 4403
        assert "This conversation was passed to Bob" in frames[-1]
        assert 'id="access-ended"' in frames[-1]

        await sync_to_async(handoff_accept)(handoff_id=nxt.pk, agent=bob)
        await sync_to_async(say)(nxt, bob, "Bob-note-after", note=True)
        assert await ws.receive_nothing(timeout=0.3)

    async with socket(f"/ws/conversations/{hop.pk}/", alice) as again:
        connected, code = await again.connect(timeout=TIMEOUT)
        assert (connected, code) == (False, 4403)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("fresh_socket_counts")
async def test_a_frame_of_a_later_hop_never_reaches_a_former_owner(people):
    """Even a frame that overtakes the rights check is refused by the socket's view."""
    from handoffs.desk.consumers import ConversationConsumer

    alice = people["alice"]
    hop = await sync_to_async(accepted_by)(alice)
    consumer = ConversationConsumer()
    consumer.scope = {"url_route": {"kwargs": {"pk": hop.pk}}}
    assert await consumer.groups_for(alice) is not None
    assert consumer.admits({"type": "chat.message", "handoff_id": hop.pk, "seq": 3})
    assert not consumer.admits({"type": "chat.message", "handoff_id": hop.pk + 1, "seq": 9})


# ---------------------------------------------------------------- 3. rights that end
@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("fresh_socket_counts")
async def test_a_reassign_away_closes_the_old_owners_socket(people):
    alice, bob, sam = people["alice"], people["bob"], people["sam"]
    hop = await sync_to_async(accepted_by)(alice)
    async with (
        socket(f"/ws/conversations/{hop.pk}/", alice) as alice_ws,
        socket(f"/ws/conversations/{hop.pk}/", sam) as sam_ws,
    ):
        assert (await alice_ws.connect(timeout=TIMEOUT))[0] is True
        assert (await sam_ws.connect(timeout=TIMEOUT))[0] is True
        await alice_ws.receive_from(timeout=TIMEOUT)
        await sam_ws.receive_from(timeout=TIMEOUT)

        await sync_to_async(handoff_reassign)(handoff_id=hop.pk, to_agent=bob, by=sam.user)
        frames, code = await until_closed(alice_ws)
        assert code == 4403
        assert "now Bob" in frames[-1]

        await sync_to_async(say)(hop, bob, "Bob-private", note=True)
        assert await alice_ws.receive_nothing(timeout=0.3)
        # The supervisor's socket goes on (after the reassignment's own frames: the
        # status, and "Bob joined" in the chat).
        seen = []
        while not any("Bob-private" in frame for frame in seen) and len(seen) < 6:
            seen.append(await sam_ws.receive_from(timeout=TIMEOUT))
        assert any("Bob-private" in frame for frame in seen)

    async with socket(f"/ws/conversations/{hop.pk}/", alice) as again:
        assert await again.connect(timeout=TIMEOUT) == (False, 4403)
    page = await sync_to_async(
        lambda: factories.logged_in(alice).get(f"/conversations/{hop.pk}/")
    )()
    assert page.status_code == 404


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("fresh_socket_counts")
async def test_removal_from_a_team_narrows_the_queue_and_closes_its_cards(people, teams):
    alice = people["alice"]
    waiting = await sync_to_async(escalate)()
    async with (
        socket("/ws/queue/", alice) as queue_ws,
        socket(f"/ws/handoffs/{waiting.pk}/", alice) as card_ws,
    ):
        assert (await queue_ws.connect(timeout=TIMEOUT))[0] is True
        assert (await card_ws.connect(timeout=TIMEOUT))[0] is True
        assert f'id="handoff-{waiting.pk}"' in await queue_ws.receive_from(timeout=TIMEOUT)
        await card_ws.receive_from(timeout=TIMEOUT)

        await sync_to_async(alice.teams.remove)(teams["billing-specialist"])

        resync = await queue_ws.receive_from(timeout=TIMEOUT)
        assert 'id="queue-rows"' in resync
        assert f'id="handoff-{waiting.pk}"' not in resync
        frames, code = await until_closed(card_ws)
        assert code == 4403 and "no longer in your queues" in frames[-1]

        # The team's next escalation no longer reaches her.
        await sync_to_async(escalate)(summary="After she left the team")
        assert await queue_ws.receive_nothing(timeout=0.3)

        # Adding her to a team widens it again, live.
        await sync_to_async(alice.teams.add)(teams["tech-support"])
        await queue_ws.receive_from(timeout=TIMEOUT)  # resync
        tech = await sync_to_async(escalate)(to_agent="tech-support", summary="Tech issue")
        assert f'id="handoff-{tech.pk}"' in await queue_ws.receive_from(timeout=TIMEOUT)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("fresh_socket_counts")
async def test_a_role_change_ends_supervising_at_once(people):
    sam, alice = people["sam"], people["alice"]
    hop = await sync_to_async(accepted_by)(alice)
    async with (
        socket("/ws/floor/", sam) as floor_ws,
        socket(f"/ws/conversations/{hop.pk}/", sam) as watch_ws,
    ):
        assert (await floor_ws.connect(timeout=TIMEOUT))[0] is True
        assert (await watch_ws.connect(timeout=TIMEOUT))[0] is True
        await floor_ws.receive_from(timeout=TIMEOUT)
        await watch_ws.receive_from(timeout=TIMEOUT)

        sam.role = Role.AGENT
        await sync_to_async(sam.save)()

        _, code = await until_closed(floor_ws)
        assert code == 4403
        _, code = await until_closed(watch_ws)
        assert code == 4403

    async with socket("/ws/floor/", sam) as again:
        assert (await again.connect(timeout=TIMEOUT))[0] is False


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("fresh_socket_counts")
async def test_deactivation_closes_every_socket_and_refuses_the_next(people):
    alice = people["alice"]
    hop = await sync_to_async(accepted_by)(alice)
    async with (
        socket("/ws/queue/", alice) as queue_ws,
        socket(f"/ws/conversations/{hop.pk}/", alice) as chat_ws,
    ):
        assert (await queue_ws.connect(timeout=TIMEOUT))[0] is True
        assert (await chat_ws.connect(timeout=TIMEOUT))[0] is True
        await queue_ws.receive_from(timeout=TIMEOUT)
        await chat_ws.receive_from(timeout=TIMEOUT)

        user = alice.user
        user.is_active = False
        await sync_to_async(user.save)()

        assert (await until_closed(queue_ws))[1] == 4401
        assert (await until_closed(chat_ws))[1] == 4401
        await sync_to_async(say)(hop, None, "Customer-after-deactivation")
        assert await chat_ws.receive_nothing(timeout=0.3)

    async with socket("/ws/queue/", alice) as again:
        assert (await again.connect(timeout=TIMEOUT))[0] is False


def test_a_deactivated_agent_gets_no_page(people):
    alice = people["alice"]
    hop = accepted_by(alice)
    client = factories.logged_in(alice)
    get_user_model().objects.filter(pk=alice.user_id).update(is_active=False)
    assert client.get(f"/conversations/{hop.pk}/").status_code == 302  # to the login


# ---------------------------------------------------------------- 4. human:<username>
def post_intake(client, key: str, to_agent: str, summary: str = "Refund $100, promised.") -> dict:
    answer = client.post(
        "/api/v1/handoffs",
        {
            "customer": "user-dave",
            "from_agent": "tier1-bot",
            "to_agent": to_agent,
            "summary": summary,
        },
        "application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert answer.status_code == 201, answer.content
    return answer.json()["handoff"]


def test_human_username_assigns_the_hop_to_that_agent(client, people, bot_key):
    alice, bob, sam = people["alice"], people["bob"], people["sam"]
    data = post_intake(client, bot_key, "human:bob")
    hop = Handoff.objects.get(public_id=data["id"])
    assert hop.assigned_to == bob
    assert hop.team.slug == "billing-specialist" and not hop.misrouted

    # Only Bob (and supervisors) see it in the queue and may open or take it.
    assert hop.pk in [h.pk for h in selectors.queue_for_agent(agent=bob)]
    assert hop.pk in [h.pk for h in selectors.queue_for_agent(agent=sam)]
    assert hop.pk not in [h.pk for h in selectors.queue_for_agent(agent=alice)]
    alice_client = factories.logged_in(alice)
    assert f"handoff-{hop.pk}" not in alice_client.get("/").content.decode()
    assert alice_client.get(f"/handoffs/{hop.pk}/").status_code == 404
    taken = alice_client.post(f"/handoffs/{hop.pk}/accept", HTTP_HX_REQUEST="true")
    assert taken.status_code == 404
    with pytest.raises(HandoffNotFound):
        handoff_accept(handoff_id=hop.pk, agent=alice)

    bob_queue = factories.logged_in(bob).get("/").content.decode()
    assert f'id="handoff-{hop.pk}"' in bob_queue and "Assigned to you" in bob_queue
    sam_queue = factories.logged_in(sam).get("/").content.decode()
    assert "Assigned to Bob" in sam_queue
    handoff_accept(handoff_id=hop.pk, agent=bob)
    assert Handoff.objects.get(pk=hop.pk).status == Status.ACCEPTED


def test_an_unknown_or_teamless_human_falls_back_to_the_default_queue(
    client, people, bot_key, make_agent
):
    make_agent("carol")  # in no team
    inactive = make_agent("eve", teams=list(people["alice"].teams.all()))
    get_user_model().objects.filter(pk=inactive.user_id).update(is_active=False)
    for target in ("human:ghost", "human:carol", "human:eve"):
        data = post_intake(client, bot_key, target, summary=f"For {target}")
        hop = Handoff.objects.get(public_id=data["id"])
        assert hop.assigned_to is None, target
        assert hop.misrouted and hop.team.is_default or hop.team.slug == "general", target


# ---------------------------------------------------------------- 5. ghost rows
@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("fresh_socket_counts")
async def test_an_assigned_hop_is_pushed_only_to_its_agent_and_supervisors(people, teams):
    alice, bob, sam = people["alice"], people["bob"], people["sam"]
    async with (
        socket("/ws/queue/", alice) as alice_ws,
        socket("/ws/queue/", bob) as bob_ws,
        socket("/ws/queue/", sam) as sam_ws,
    ):
        for ws in (alice_ws, bob_ws, sam_ws):
            assert (await ws.connect(timeout=TIMEOUT))[0] is True
            await ws.receive_from(timeout=TIMEOUT)

        _, key = await sync_to_async(bot_create)(name="tier1-bot")
        client = Client()
        data = await sync_to_async(post_intake)(client, key, "human:bob")
        hop = await Handoff.objects.aget(public_id=data["id"])

        bob_row = await bob_ws.receive_from(timeout=TIMEOUT)
        assert f'id="handoff-{hop.pk}"' in bob_row and "assigned to you" in bob_row.lower()
        sam_frames = [await sam_ws.receive_from(timeout=TIMEOUT)]
        assert any(
            f'id="handoff-{hop.pk}"' in f and "assigned to bob" in f.lower() and "delete" not in f
            for f in sam_frames
        )
        assert await alice_ws.receive_nothing(timeout=0.3)  # no ghost row

        # A transfer to a named person is the same: Dan's team screen stays clean.
        accepted = await sync_to_async(accepted_by)(alice)
        await alice_ws.receive_nothing(timeout=0.3)
        nxt = await sync_to_async(transfer_to_bob)(accepted, alice)
        # Bob serves billing: the escalation's row and its removals come first, then the
        # transfer assigned to him.
        for _ in range(6):
            frame = await bob_ws.receive_from(timeout=TIMEOUT)
            if f'id="handoff-{nxt.pk}"' in frame:
                break
        assert "assigned to you" in frame.lower()
        for _ in range(3):
            try:
                frame = await alice_ws.receive_from(timeout=0.3)
            except Exception:  # noqa: BLE001 - nothing more arrived
                break
            assert not (f'id="handoff-{nxt.pk}"' in frame and "delete" not in frame)
