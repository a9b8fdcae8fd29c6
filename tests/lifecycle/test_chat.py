"""The chat's service layer: ordered, de-duplicated messages, private notes, the memory
copies of the chat, the endings (resolve, transfer) and the continuity helpers.

Memory copies are queued in the message's transaction and applied after commit; the
tests apply them by calling the outbox (``outbox.apply_memory_writes``), as the worker
does, and read them back from the embedded memory server.
"""

from __future__ import annotations

import threading

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from handoffs.delivery import outbox
from handoffs.desk import selectors
from handoffs.desk.selectors import sentiment_trend, suggested_first_message
from handoffs.lifecycle.accept import handoff_accept
from handoffs.lifecycle.endings import conversation_resolve, handoff_hand_back, handoff_transfer
from handoffs.lifecycle.errors import ConversationClosed, HandoffError, HandoffNotFound
from handoffs.lifecycle.messages import MAX_MESSAGE_CHARS, message_post
from handoffs.memory.embedded import EmbeddedStore
from handoffs.models import (
    Conversation,
    Handoff,
    MemoryWrite,
    Message,
    OutboxStatus,
    Sender,
    Status,
)
from handoffs.routing import websocket_urlpatterns
from tests import factories

pytestmark = pytest.mark.pg  # `make test` runs these again on PostgreSQL

SEED_SUMMARY = (
    "Customer ACC-4521 (since 2024) reports $100 billing overcharge. Verified plan is "
    "$199/mo but last invoice shows $299. Customer tone: frustrated but polite. Needs "
    "refund or explanation."
)
CUSTOMER = "user-dave"


def escalate(*, bot=None, summary: str = SEED_SUMMARY, sentiment="frustrated") -> Handoff:
    return factories.escalate(
        customer=CUSTOMER,
        customer_name="Dave Miller",
        source_session_id="sess_bot_1",
        summary=summary,
        sentiment=sentiment,
        bot=bot,
    )


def accept(handoff: Handoff, agent) -> Handoff:
    handoff_accept(handoff_id=handoff.pk, agent=agent)
    handoff.refresh_from_db()
    return handoff


def post(conversation: Conversation, sender: str, body: str, client_id: str, agent=None):
    return message_post(
        conversation=conversation, sender=sender, body=body, client_id=client_id, agent=agent
    )


@pytest.fixture
def alice(teams, make_agent):
    return make_agent("alice", teams=[teams["billing-specialist"]])


@pytest.fixture
def carol(teams, make_agent):
    return make_agent("carol", teams=[teams["tech-support"]])


@pytest.fixture
def accepted(alice, bot) -> Handoff:
    """The seed escalation, accepted by Alice (her memory session started)."""
    return accept(escalate(bot=bot), alice)


# ---------------------------------------------------------------- messages
def test_messages_get_consecutive_seq_after_the_joined_notice(accepted, alice):
    conversation = accepted.conversation
    first = post(conversation, Sender.CUSTOMER, "Hello? Anyone there?", "c-1")
    second = post(conversation, Sender.AGENT, "Yes, I'm here.", "a-1", agent=alice)
    third = post(conversation, Sender.NOTE, "Check invoice 8812", "n-1", agent=alice)
    fourth = post(conversation, Sender.CUSTOMER, "Great", "c-2")

    assert [r.created for r in (first, second, third, fourth)] == [True] * 4
    rows = list(conversation.messages.order_by("seq").values_list("seq", "sender", "body"))
    assert rows == [
        (1, "system", "Alice from Billing specialists joined the conversation."),
        (2, "customer", "Hello? Anyone there?"),
        (3, "agent", "Yes, I'm here."),
        (4, "note", "Check invoice 8812"),
        (5, "customer", "Great"),
    ]
    conversation.refresh_from_db()
    assert conversation.last_seq == 5
    assert first.message.author == CUSTOMER
    assert first.message.author_name == "Dave Miller"
    assert second.message.author == "human:alice"
    assert second.message.author_name == "Alice"
    assert second.message.handoff_id == accepted.pk


def test_a_retried_client_id_returns_the_stored_message(accepted, alice):
    conversation = accepted.conversation
    first = post(conversation, Sender.CUSTOMER, "I was charged twice", "retry-me")
    again = post(conversation, Sender.CUSTOMER, "I was charged twice", "retry-me")
    # Even a retry whose body changed in between is the same message, not a new one.
    edited = post(conversation, Sender.CUSTOMER, "I was charged twice!!", "retry-me")

    assert first.created is True
    assert again.created is False
    assert edited.created is False
    assert again.message.pk == first.message.pk == edited.message.pk
    assert edited.message.body == "I was charged twice"
    assert conversation.messages.filter(client_id="retry-me").count() == 1
    conversation.refresh_from_db()
    assert conversation.last_seq == 2  # joined + one message: the retries took no seq
    assert MemoryWrite.objects.filter(payload__client_id="retry-me").count() == 0
    stores = MemoryWrite.objects.filter(operation="store", conversation=conversation)
    assert [w.payload["metadata"]["client_id"] for w in stores] == ["retry-me"]


def test_a_retry_after_close_still_gets_its_acknowledgement(accepted, alice):
    """A send acknowledged just before the close is retried: it is answered, not refused."""
    conversation = accepted.conversation
    post(conversation, Sender.CUSTOMER, "Last words", "late-1")
    conversation_resolve(handoff_id=accepted.pk, agent=alice)
    assert post(conversation, Sender.CUSTOMER, "Last words", "late-1").created is False
    with pytest.raises(ConversationClosed):
        post(conversation, Sender.CUSTOMER, "Anyone?", "late-2")


@pytest.mark.parametrize(
    ("body", "client_id", "status"),
    [
        ("", "c-1", 400),
        ("   ", "c-1", 400),
        (None, "c-1", 400),
        ("hello", "", 400),
        ("hello", "has spaces", 400),
        ("hello", "x" * 65, 400),
        ("x" * (MAX_MESSAGE_CHARS + 1), "c-1", 413),
    ],
)
def test_bad_messages_are_refused_and_change_nothing(accepted, body, client_id, status):
    conversation = accepted.conversation
    with pytest.raises(HandoffError) as refused:
        post(conversation, Sender.CUSTOMER, body, client_id)
    assert refused.value.status == status
    assert conversation.messages.count() == 1  # only "joined"
    conversation.refresh_from_db()
    assert conversation.last_seq == 1


def test_only_the_owner_speaks_as_the_agent(accepted, make_agent, teams):
    bob = make_agent("bob", teams=[teams["billing-specialist"]])
    with pytest.raises(HandoffNotFound):
        post(accepted.conversation, Sender.AGENT, "I'll take it from here", "b-1", agent=bob)
    with pytest.raises(HandoffNotFound):
        post(accepted.conversation, Sender.NOTE, "sneaky", "b-2", agent=None)
    assert accepted.conversation.messages.count() == 1


# ---------------------------------------------------------------- private notes
def test_notes_never_reach_the_customer_page_or_the_api(accepted, alice, client, bot_key):
    conversation = accepted.conversation
    post(conversation, Sender.CUSTOMER, "Why $299?", "c-1")
    post(conversation, Sender.NOTE, "NOTE-SECRET-42 refund approved internally", "n-1", agent=alice)
    post(conversation, Sender.AGENT, "Looking into it now.", "a-1", agent=alice)

    page = client.get(f"/c/{conversation.token}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Why $299?" in html
    assert "Looking into it now." in html
    assert "NOTE-SECRET-42" not in html
    assert "Private note" not in html

    api = client.get(
        f"/api/v1/conversations/{conversation.public_id}/messages",
        headers={"Authorization": f"Bearer {bot_key}"},
    )
    assert api.status_code == 200
    bodies = [m["body"] for m in api.json()["messages"]]
    assert "Why $299?" in bodies
    assert "Looking into it now." in bodies
    assert not any("NOTE-SECRET-42" in b for b in bodies)
    assert "note" not in {m["sender"] for m in api.json()["messages"]}
    # The agent's own view does show it.
    assert conversation.messages.filter(sender=Sender.NOTE).count() == 1


def _socket(path: str, user=None) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    if user is not None:
        communicator.scope["user"] = user
    return communicator


async def chat_frame(ws) -> str:
    """The next frame of the chat, past the owner's inbox badge frames."""
    frame = await ws.receive_from()
    while 'id="nav-unread"' in frame:
        frame = await ws.receive_from()
    return frame


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_notes_never_reach_the_customer_socket(teams, make_agent, bot):
    """Neither in the snapshot a (re)connecting customer gets nor as a live event."""

    @database_sync_to_async
    def setup():
        alice = make_agent("alice", teams=[teams["billing-specialist"]])
        handoff = accept(escalate(bot=bot), alice)
        conversation = handoff.conversation
        post(conversation, Sender.CUSTOMER, "Hello from the customer", "c-1")
        post(conversation, Sender.NOTE, "NOTE-IN-SNAPSHOT", "n-1", agent=alice)
        return alice, handoff, conversation

    alice, handoff, conversation = await setup()
    customer = _socket(f"/ws/chat/{conversation.token}/")
    agent = _socket(f"/ws/conversations/{handoff.pk}/", user=alice.user)
    try:
        assert (await customer.connect())[0]
        assert (await agent.connect())[0]
        customer_snapshot = await customer.receive_from()
        agent_snapshot = await agent.receive_from()
        assert "Hello from the customer" in customer_snapshot
        assert "NOTE-IN-SNAPSHOT" not in customer_snapshot
        assert "NOTE-IN-SNAPSHOT" in agent_snapshot

        await database_sync_to_async(post)(
            conversation, Sender.NOTE, "NOTE-LIVE", "n-2", agent=alice
        )
        assert "NOTE-LIVE" in await chat_frame(agent)
        assert await customer.receive_nothing(timeout=0.3)

        await database_sync_to_async(post)(
            conversation, Sender.AGENT, "Public answer", "a-1", agent=alice
        )
        assert "Public answer" in await customer.receive_from()
        assert "Public answer" in await chat_frame(agent)
    finally:
        await customer.disconnect()
        await agent.disconnect()


# ---------------------------------------------------------------- memory
def test_every_human_and_customer_message_is_a_memory_in_the_humans_session(accepted, alice):
    conversation = accepted.conversation
    assert accepted.human_session_id, "accept starts the human's memory session"
    post(conversation, Sender.CUSTOMER, "I was charged $299", "c-1")
    post(conversation, Sender.AGENT, "I see the $299 charge", "a-1", agent=alice)
    post(conversation, Sender.NOTE, "Refund needs supervisor OK", "n-1", agent=alice)
    post(conversation, Sender.CUSTOMER, "Thanks", "c-2")
    # Pending until the outbox applies them.
    assert MemoryWrite.objects.filter(status=OutboxStatus.PENDING).count() == 4

    assert outbox.apply_memory_writes() == 4
    assert MemoryWrite.objects.filter(status=OutboxStatus.PENDING).count() == 0
    memories = EmbeddedStore().session_memories(session_id=accepted.human_session_id)["memories"]
    assert [m["content"] for m in memories] == [
        "I was charged $299",
        "I see the $299 charge",
        "Refund needs supervisor OK",
        "Thanks",
    ]
    assert [m["metadata"]["role"] for m in memories] == ["user", "assistant", "note", "user"]
    assert [m["metadata"]["agent"] for m in memories] == [
        CUSTOMER,
        "human:alice",
        "human:alice",
        CUSTOMER,
    ]
    assert [m["metadata"]["seq"] for m in memories] == [2, 3, 4, 5]
    assert {m["agent_id"] for m in memories} == {CUSTOMER}
    assert {m["metadata"]["conversation_id"] for m in memories} == {str(conversation.public_id)}
    # Applying again stores nothing twice.
    assert outbox.apply_memory_writes() == 0
    total = EmbeddedStore().session_memories(session_id=accepted.human_session_id)["total"]
    assert total == 4


@pytest.mark.django_db(transaction=True)
def test_the_kicker_applies_memory_copies_after_commit_off_the_posting_thread(
    teams, make_agent, bot, settings, monkeypatch
):
    """In production the copies are applied by the process's kicker thread: posting
    returns while the store write is still held up, and the copies land in order."""
    settings.OUTBOX_KICK = "thread"
    alice = make_agent("alice", teams=[teams["billing-specialist"]])
    conversation = accept(escalate(bot=bot), alice).conversation
    gate, writers = threading.Event(), []
    real_store = EmbeddedStore.store

    def held_store(self, **payload):
        writers.append(threading.current_thread().name)
        assert gate.wait(10), "the test never opened the gate"
        return real_store(self, **payload)

    monkeypatch.setattr(EmbeddedStore, "store", held_store)
    post(conversation, Sender.CUSTOMER, "I was charged $299", "c-1")
    post(conversation, Sender.AGENT, "I see the $299 charge", "a-1", agent=alice)
    # Both posts returned (committed) while the first copy is still being written.
    assert (
        Message.objects.filter(conversation=conversation, client_id__in=["c-1", "a-1"]).count() == 2
    )
    assert MemoryWrite.objects.filter(status=OutboxStatus.DONE).count() == 0
    gate.set()
    assert outbox.kicker.wait_idle(10)
    writes = MemoryWrite.objects.filter(conversation=conversation).order_by("pk")
    assert [w.status for w in writes] == [OutboxStatus.DONE, OutboxStatus.DONE]
    assert writers == ["outbox-kicker", "outbox-kicker"]
    hop = Handoff.objects.get(conversation=conversation)
    memories = EmbeddedStore().session_memories(session_id=hop.human_session_id)["memories"]
    assert [m["content"] for m in memories] == ["I was charged $299", "I see the $299 charge"]


def test_system_messages_are_not_memories(accepted):
    outbox.apply_memory_writes()
    memories = EmbeddedStore().session_memories(session_id=accepted.human_session_id)
    assert memories["total"] == 0


def test_a_memory_server_outage_delays_the_copies_but_loses_none(accepted, alice, monkeypatch):
    from handoffs.memory.base import MemoryError as StoreError

    conversation = accepted.conversation
    post(conversation, Sender.CUSTOMER, "first", "c-1")
    post(conversation, Sender.CUSTOMER, "second", "c-2")

    def down(self, **kwargs):
        raise StoreError("memory server unavailable", code="SERVICE_UNAVAILABLE")

    with monkeypatch.context() as patch:
        patch.setattr(EmbeddedStore, "store", down)
        assert outbox.apply_memory_writes() == 0
    failed = MemoryWrite.objects.order_by("pk").first()
    assert failed.attempts == 1
    assert "SERVICE_UNAVAILABLE" in failed.last_error
    # The later write of the same conversation waits behind the failed one (order kept).
    assert MemoryWrite.objects.filter(status=OutboxStatus.PENDING).count() == 2

    MemoryWrite.objects.update(next_attempt_at=failed.created_at)
    assert outbox.apply_memory_writes() == 2
    memories = EmbeddedStore().session_memories(session_id=accepted.human_session_id)
    assert [m["content"] for m in memories["memories"]] == ["first", "second"]


# ---------------------------------------------------------------- resolve
def test_resolve_ends_the_session_with_a_summary_and_closes_the_link(
    accepted, alice, client, settings
):
    conversation = accepted.conversation
    post(conversation, Sender.CUSTOMER, "Please refund", "c-1")
    hop = conversation_resolve(
        handoff_id=accepted.pk, agent=alice, summary="Refunded $100.", rating="accurate"
    )
    assert hop.status == Status.RESOLVED
    outbox.apply_memory_writes()

    hop.refresh_from_db()
    assert hop.status == Status.RESOLVED
    assert hop.rating == "accurate"
    assert hop.closing_note == "Refunded $100."
    assert hop.closed_at is not None
    session = EmbeddedStore().get_session(session_id=hop.human_session_id)
    assert session["ended_reason"] == "client"
    assert "Refunded $100." in session["summary"]
    conversation.refresh_from_db()
    assert conversation.closed_at is not None
    assert (
        conversation.messages.order_by("-seq")
        .first()
        .body.startswith("This conversation was resolved.")
    )
    assert hop.events.filter(kind="handoff.resolved").count() == 1

    # The link stays readable (read-only, no composer) for the retention period.
    page = client.get(f"/c/{conversation.token}/")
    assert page.status_code == 200
    assert b'id="composer"' not in page.content
    assert b"Please refund" in page.content
    settings.TRANSCRIPT_RETENTION_DAYS = 0
    assert client.get(f"/c/{conversation.token}/").status_code == 410
    answer = client.post(
        f"/c/{conversation.token}/messages", {"body": "hello?", "client_id": "c-after"}
    )
    assert answer.status_code == 410
    assert not conversation.messages.filter(client_id="c-after").exists()


def test_only_the_owner_can_close_and_only_once(accepted, alice, make_agent, teams):
    bob = make_agent("bob", teams=[teams["billing-specialist"]])
    with pytest.raises(HandoffNotFound):
        conversation_resolve(handoff_id=accepted.pk, agent=bob)
    conversation_resolve(handoff_id=accepted.pk, agent=alice)
    with pytest.raises(HandoffNotFound):
        conversation_resolve(handoff_id=accepted.pk, agent=alice)
    with pytest.raises(HandoffNotFound):
        handoff_transfer(handoff_id=accepted.pk, agent=alice, to="tech-support", note="x")


# ---------------------------------------------------------------- transfer
@pytest.mark.parametrize("note", ["", "   "])
def test_transfer_requires_a_note(accepted, alice, note):
    with pytest.raises(HandoffError, match="note is required"):
        handoff_transfer(handoff_id=accepted.pk, agent=alice, to="tech-support", note=note)
    accepted.refresh_from_db()
    assert accepted.status == Status.ACCEPTED
    assert Handoff.objects.count() == 1
    assert MemoryWrite.objects.filter(payload__tags=["handoff"]).count() == 0


def test_transfer_to_an_unknown_team_changes_nothing(accepted, alice):
    with pytest.raises(HandoffError, match="No team"):
        handoff_transfer(handoff_id=accepted.pk, agent=alice, to="nowhere", note="x")
    accepted.refresh_from_db()
    assert accepted.status == Status.ACCEPTED
    assert Handoff.objects.count() == 1


NOTE = "Refund of $100 approved; customer now reports the app crashes on login (iOS 17)."


def test_transfer_makes_a_new_waiting_hop_and_a_handoff_summary_memory(accepted, alice, carol):
    conversation = accepted.conversation
    post(conversation, Sender.CUSTOMER, "Also the app crashes", "c-1")
    new = handoff_transfer(
        handoff_id=accepted.pk, agent=alice, to="tech-support", note=NOTE, rating="missing_info"
    )
    accepted.refresh_from_db()
    assert accepted.status == Status.TRANSFERRED
    assert accepted.rating == "missing_info"
    assert accepted.closing_note == NOTE

    assert new.status == Status.WAITING
    assert new.team.slug == "tech-support"
    assert new.hop_index == accepted.hop_index + 1 == 1
    assert new.chain_id == accepted.chain_id
    assert new.previous_id == accepted.pk
    assert new.conversation_id == conversation.pk
    assert new.from_agent == "human:alice"
    assert new.to_agent == "tech-support"
    assert new.importance == 1.0
    assert NOTE in new.summary
    assert new.reason == "transfer"
    assert new.memory_id == ""  # filled in once the memory server stored it
    conversation.refresh_from_db()
    assert conversation.closed_at is None  # the customer keeps the link
    assert (
        conversation.messages.order_by("-seq").first().body.startswith("You're being transferred")
    )
    assert list(selectors.queue_for_agent(agent=carol)) == [new]

    outbox.apply_memory_writes()
    new.refresh_from_db()
    assert new.memory_id
    memory = EmbeddedStore().get_memory(agent_id=CUSTOMER, memory_id=new.memory_id)
    assert memory["content"].startswith("HANDOFF SUMMARY (human:alice → tech-support)")
    assert NOTE in memory["content"]
    assert memory["importance"] == 1.0
    assert memory["metadata"]["type"] == "handoff"
    assert memory["metadata"]["from_agent"] == "human:alice"
    assert memory["metadata"]["to_agent"] == "tech-support"
    # Stored in Alice's session, which then ended.
    assert memory["session_id"] == accepted.human_session_id
    session = EmbeddedStore().get_session(session_id=accepted.human_session_id)
    assert session["ended_reason"] == "client"
    assert NOTE in session["summary"]
    session_contents = [
        m["content"]
        for m in EmbeddedStore().session_memories(session_id=accepted.human_session_id)["memories"]
    ]
    assert session_contents == ["Also the app crashes", memory["content"]]
    # The summary memory did not turn into a second escalation.
    assert Handoff.objects.count() == 2


def test_the_next_agent_continues_the_same_conversation(accepted, alice, carol):
    conversation = accepted.conversation
    post(conversation, Sender.CUSTOMER, "Hello", "c-1")
    new = handoff_transfer(handoff_id=accepted.pk, agent=alice, to="tech-support", note=NOTE)
    outbox.apply_memory_writes()
    with pytest.raises(HandoffNotFound):
        post(conversation, Sender.AGENT, "still me", "a-late", agent=alice)

    new = accept(new, carol)
    assert new.human_session_id and new.human_session_id != accepted.human_session_id
    reply = post(conversation, Sender.AGENT, "Carol here, I can see the crash.", "a-2", agent=carol)
    assert reply.message.handoff_id == new.pk
    joined = conversation.messages.filter(sender=Sender.SYSTEM, body__contains="Carol")
    assert joined.count() == 1
    outbox.apply_memory_writes()
    memories = EmbeddedStore().session_memories(session_id=new.human_session_id)["memories"]
    assert [m["content"] for m in memories] == ["Carol here, I can see the crash."]
    # The card shows the chain: two hops, the transfer first in line.
    card = selectors.handoff_card(handoff=new)
    assert [h.pk for h in card.chain] == [accepted.pk, new.pk]


def test_transfer_to_one_agent_is_assigned_to_them(accepted, alice, make_agent, teams):
    bob = make_agent("bob", teams=[teams["billing-specialist"]])
    dan = make_agent("dan", teams=[teams["billing-specialist"]])
    new = handoff_transfer(handoff_id=accepted.pk, agent=alice, to="human:bob", note=NOTE)
    assert new.assigned_to_id == bob.pk
    assert new in selectors.queue_for_agent(agent=bob)
    assert new not in selectors.queue_for_agent(agent=dan)
    with pytest.raises(HandoffError):
        handoff_transfer(handoff_id=new.pk, agent=alice, to="human:alice", note=NOTE)


@pytest.mark.parametrize("rating", ["accurate", "missing_info", "unnecessary", ""])
def test_ratings_are_saved(accepted, alice, rating):
    conversation_resolve(handoff_id=accepted.pk, agent=alice, rating=rating)
    accepted.refresh_from_db()
    assert accepted.rating == rating


def test_an_unknown_rating_is_refused(accepted, alice):
    with pytest.raises(HandoffError, match="rating"):
        conversation_resolve(handoff_id=accepted.pk, agent=alice, rating="great")
    accepted.refresh_from_db()
    assert accepted.status == Status.ACCEPTED
    assert accepted.conversation.closed_at is None


def test_hand_back_unmutes_the_bot_and_addresses_the_note_to_it(accepted, alice):
    conversation = accepted.conversation
    conversation.refresh_from_db()
    assert conversation.bot_muted is True
    back = handoff_hand_back(handoff_id=accepted.pk, agent=alice, note="Refund issued.")
    conversation.refresh_from_db()
    assert conversation.bot_muted is False
    assert back.status == Status.BOT_HOP
    assert back.to_agent == "tier1-bot"
    assert back.hop_index == 1
    assert back.chain_id == accepted.chain_id
    outbox.apply_memory_writes()
    back.refresh_from_db()
    memory = EmbeddedStore().get_memory(agent_id=CUSTOMER, memory_id=back.memory_id)
    assert memory["content"] == "HANDBACK to tier1-bot from human:alice: Refund issued."
    assert memory["metadata"]["to_agent"] == "tier1-bot"
    assert memory["metadata"]["type"] == "handoff"
    assert conversation.messages.order_by("-seq").first().body.startswith("You're back with")


# ---------------------------------------------------------------- continuity
def test_suggested_first_message_says_only_what_is_safe_to_say(accepted, alice):
    text = suggested_first_message(handoff=accepted, agent=alice)
    assert text.startswith("Hi Dave, I'm Alice from Billing specialists.")
    # Never built from the summary (written for agents): no figures, tone or accounts.
    for internal in ("$299", "$199", "frustrated", "ACC-", "Customer"):
        assert internal not in text


def test_suggested_first_message_without_a_name(alice, bot):
    handoff = accept(
        escalate(bot=bot, summary="The customer wants to change their address."), alice
    )
    handoff.customer_name = ""
    text = suggested_first_message(handoff=handoff, agent=alice)
    assert text.startswith("Hi, I'm Alice from Billing specialists. ")
    assert "address" not in text


def test_sentiment_trend_compares_the_handoff_with_the_last_customer_messages(accepted):
    conversation = accepted.conversation
    assert sentiment_trend(conversation, accepted) == {
        "at_handoff": "frustrated",
        "now": None,
        "direction": "",
    }
    post(conversation, Sender.CUSTOMER, "I'm still waiting for the refund.", "c-0")
    trend = sentiment_trend(conversation, accepted)
    assert trend["now"] == "frustrated"
    assert trend["direction"] == "steady"  # the same label both sides, whatever the scores
    post(conversation, Sender.CUSTOMER, "Thank you so much, that is great, I'm happy!", "c-1")
    post(conversation, Sender.CUSTOMER, "Perfect, thanks!", "c-2")
    trend = sentiment_trend(conversation, accepted)
    assert trend["at_handoff"] == "frustrated"
    assert trend["now"] == "positive"
    assert trend["direction"] == "improving"

    for i in range(3):
        post(conversation, Sender.CUSTOMER, "This is terrible, awful, I hate this!", f"c-bad-{i}")
    trend = sentiment_trend(conversation, accepted)
    assert trend["now"] in {"frustrated", "angry"}
    assert trend["direction"] == "worsening"
    # Only customer messages carry a sentiment score.
    scored = conversation.messages.exclude(sentiment_score=None)
    assert set(scored.values_list("sender", flat=True)) == {Sender.CUSTOMER}


def test_conversation_is_shared_by_the_hops_and_messages_keep_their_hop(accepted, alice):
    post(accepted.conversation, Sender.CUSTOMER, "hi", "c-1")
    assert Message.objects.get(client_id="c-1").handoff_id == accepted.pk
