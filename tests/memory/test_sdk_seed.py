"""The seed scenario and the SDK's helpers, run unmodified through the real ``dakera`` SDK
(0.14.1) against a live Daphne serving the console on the test database."""

from __future__ import annotations

import datetime as dt
import time

import dakera
import pytest
from dakera import (
    AsyncDakeraClient,
    AuthenticationError,
    BatchStoreMemoryItem,
    BatchStoreMemoryRequest,
    DakeraClient,
    NotFoundError,
    PayloadTooLargeError,
    ValidationError,
)
from dakera.session import AsyncChatMemorySession, ChatMemorySession
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from handoffs import demo
from handoffs.memory.models import Memory, MemorySession
from handoffs.models import Event, Handoff, Status

from .wire_shapes import MEMORY_KEYS, SESSION_KEYS

CUSTOMER = "user-dave"
QUERY = "handoff summary billing issue"
ISSUE = "User reports billing discrepancy: charged $299 but plan is $199/mo"
CONTEXT = "User has been a customer since 2024. Account ID: ACC-4521."
SUMMARY = (
    "Customer ACC-4521 (since 2024) reports $100 billing overcharge. Verified plan is "
    "$199/mo but last invoice shows $299. Customer tone: frustrated but polite. Needs "
    "refund or explanation."
)


def sdk(url: str, key: str) -> DakeraClient:
    # No retries: every call must succeed the first time.
    return DakeraClient(url, api_key=key, max_retries=1, timeout=10)


def assert_one_waiting_billing_handoff(*, memory_id: str, session_id: str) -> Handoff:
    assert Handoff.objects.count() == 1
    waiting = Handoff.objects.filter(team__slug="billing-specialist", status=Status.WAITING)
    assert waiting.count() == 1
    handoff = waiting.get()
    assert handoff.customer == CUSTOMER
    assert handoff.from_agent == "tier1-bot"
    assert handoff.to_agent == "billing-specialist"
    assert handoff.summary == SUMMARY
    assert handoff.importance == 1.0
    assert handoff.memory_id == memory_id
    assert handoff.source_session_id == session_id
    assert not handoff.misrouted
    assert handoff.sentiment in {"positive", "neutral", "frustrated", "angry"}
    assert handoff.urgency in {"low", "normal", "high", "critical"}
    assert handoff.sentiment_source == "estimated"
    assert handoff.urgency_source == "estimated"
    assert handoff.created_by_bot is not None
    assert handoff.created_by_bot.name == "tier1-bot"
    assert list(Event.objects.filter(handoff=handoff).values_list("kind", flat=True)) == [
        "handoff.created"
    ]
    return handoff


@pytest.mark.pg
def test_seed_scenario_through_the_sdk(live_server_url, bot_key, teams):
    """The brief's seed scenario, written out call by call."""
    client = sdk(live_server_url, bot_key)
    assert client.health()["status"] == "healthy"

    session = client.start_session(CUSTOMER, metadata={"agent": "tier1-bot", "channel": "chat"})
    assert set(session) >= SESSION_KEYS
    assert session["id"].startswith("sess_")
    assert session["agent_id"] == CUSTOMER
    assert session["metadata"] == {"agent": "tier1-bot", "channel": "chat"}
    sid = session["id"]

    issue = client.store_memory(
        CUSTOMER, ISSUE, importance=0.9, metadata={"type": "issue"}, session_id=sid
    )
    context = client.store_memory(
        CUSTOMER, CONTEXT, importance=0.8, metadata={"type": "context"}, session_id=sid
    )
    handoff_memory = client.store_memory(
        CUSTOMER,
        SUMMARY,
        importance=1.0,
        metadata={"type": "handoff", "from_agent": "tier1-bot", "to_agent": "billing-specialist"},
        session_id=sid,
    )
    for stored, content in [(issue, ISSUE), (context, CONTEXT), (handoff_memory, SUMMARY)]:
        assert set(stored) >= MEMORY_KEYS
        assert stored["id"].startswith("mem_")
        assert stored["content"] == content
        assert stored["session_id"] == sid
        assert stored["session_state"] == "active"
    assert handoff_memory["importance"] == 1.0
    assert len({issue["id"], context["id"], handoff_memory["id"]}) == 3

    ended = client.end_session(sid, summary="Bot->human handoff: billing overcharge")
    assert ended["memory_count"] == 3
    assert ended["session"]["ended_reason"] == "client"
    assert ended["session"]["summary"] == "Bot->human handoff: billing overcharge"
    assert isinstance(ended["session"]["ended_at"], int)

    specialist = client.start_session(CUSTOMER, metadata={"agent": "billing-specialist"})
    assert specialist["id"] != sid
    recall = client.recall(CUSTOMER, QUERY, top_k=3)

    assert len(recall.memories) == 3
    assert recall.memories[0].id == handoff_memory["id"]
    assert recall.memories[0].content == SUMMARY
    assert {m.id for m in recall.memories} == {issue["id"], context["id"], handoff_memory["id"]}
    scores = [m.rank_score for m in recall.memories]
    assert all(s is not None for s in scores)
    assert scores == sorted(scores, reverse=True)

    # The rest of the captured flow: the session list and the ended session's memories.
    listed = client.list_sessions(agent_id=CUSTOMER, limit=10)
    assert listed["total"] == 2
    assert [s["id"] for s in listed["sessions"]] == [specialist["id"], sid]
    memories = client.session_memories(sid, limit=50)
    assert [m["id"] for m in memories] == [issue["id"], context["id"], handoff_memory["id"]]

    assert_one_waiting_billing_handoff(memory_id=handoff_memory["id"], session_id=sid)
    assert MemorySession.objects.filter(agent_id=CUSTOMER).count() == 2
    assert Memory.objects.filter(agent_id=CUSTOMER).count() == 3


@pytest.mark.pg
def test_demo_seed_scenario_is_the_same(live_server_url, bot_key, teams):
    """``handoffs.demo.run_seed_scenario`` (what ``make run`` seeds) gives the same result."""
    client = sdk(live_server_url, bot_key)
    ranked = demo.run_seed_scenario(client)

    assert demo.SEED_SUMMARY == SUMMARY
    assert demo.SEED_QUERY == QUERY
    assert [m.content for m in ranked] == [SUMMARY, ISSUE, CONTEXT]
    handoff_memory = Memory.objects.get(content=SUMMARY)
    assert_one_waiting_billing_handoff(
        memory_id=handoff_memory.uid, session_id=handoff_memory.session_id
    )


def test_seed_recall_as_the_chat_helper_sends_it(live_server_url, bot_key, teams):
    """The recall the wire doc captured (``neighborhood_mode="separate"``) ranks the same."""
    client = sdk(live_server_url, bot_key)
    demo.run_seed_scenario(client)
    response = client.recall(CUSTOMER, QUERY, top_k=3, neighborhood_mode="separate")
    assert [m.content for m in response.ranked] == [SUMMARY, ISSUE, CONTEXT]
    assert response.context_memories == []
    # Recalling again (access counts rising) keeps the summary first.
    again = client.recall(CUSTOMER, QUERY, top_k=1)
    assert [m.content for m in again.memories] == [SUMMARY]


@pytest.mark.pg
def test_chat_memory_session(live_server_url, bot_key):
    client = sdk(live_server_url, bot_key)
    chat = ChatMemorySession.create(client, "user-erin", metadata={"agent": "tier1-bot"})
    assert chat.session_id.startswith("sess_")
    assert chat.agent_id == "user-erin"

    said = chat.store("user", "The mobile app crashes on login since the update.")
    answered = chat.store("assistant", "Sorry to hear that, which phone do you use?", tags=["bot"])
    assert said["tags"] == ["user"]
    assert answered["tags"] == ["bot", "assistant"]
    assert said["session_id"] == chat.session_id

    recalled = chat.recall("app crashes on login", top_k=2)
    assert 1 <= len(recalled) <= 2
    assert recalled[0].id == said["id"]

    before = int(time.time())
    touched = chat.touch()
    assert touched.is_active
    assert touched.session.session_id == chat.session_id
    assert touched.idle_deadline_at is not None
    assert touched.idle_deadline_at >= before + 4 * 3600 - 5

    closed = chat.close(summary="Asked for the phone model")
    assert closed["session"]["ended_reason"] == "client"
    assert closed["memory_count"] == 2
    after_close = chat.touch()
    assert after_close.session_state == "ended"
    assert after_close.idle_deadline_at is None
    assert MemorySession.objects.get(pk=chat.session_id).ended_at is not None


def test_chat_memory_session_context_manager_ends_the_session(live_server_url, bot_key):
    client = sdk(live_server_url, bot_key)
    with ChatMemorySession.create(client, "user-frank", idle_timeout_secs=0) as chat:
        chat.store("user", "I was charged twice for the renewal.")
        assert chat.touch().idle_deadline_at is None  # 0 = never idles out
    session = client.get_session(chat.session_id)
    assert session["ended_reason"] == "client"
    assert session["memory_count"] == 1


@pytest.mark.pg
@pytest.mark.asyncio
async def test_async_chat_memory_session(live_server_url, bot_key):
    async with AsyncDakeraClient(live_server_url, api_key=bot_key, max_retries=1) as client:
        chat = await AsyncChatMemorySession.create(
            client, "user-gina", metadata={"agent": "tier1-bot", "channel": "chat"}
        )
        assert chat.session_id.startswith("sess_")
        first = await chat.store("user", "My router keeps dropping the connection at night.")
        await chat.store("assistant", "Let me check the line for you.", importance=0.4)
        recalled = await chat.recall("router dropping connection", top_k=3)
        assert recalled[0].id == first["id"]
        assert len(recalled) == 2

        touched = await chat.touch()
        assert touched.session_state == "active"
        assert touched.idle_deadline_at is not None

        closed = await chat.close(summary="Line check requested")
        assert closed["session"]["ended_reason"] == "client"
        assert (await chat.touch()).session_state == "ended"

        async with await AsyncChatMemorySession.create(client, "user-gina") as second:
            await second.store("user", "Still dropping.")
        detail = await client.get_session(second.session_id)
        assert detail["ended_reason"] == "client"
        listed = await client.list_sessions(agent_id="user-gina")
        assert listed["total"] == 2
        assert all(s["ended_reason"] == "client" for s in listed["sessions"])


@pytest.mark.pg
def test_sdk_session_and_memory_calls(live_server_url, bot_key, teams):
    client = sdk(live_server_url, bot_key)
    open_session = client.start_session("user-hana", metadata={"agent": "tier1-bot"})
    ended_session = client.start_session("user-hana")
    client.end_session(ended_session["id"])

    batch = client.store_memories_batch(
        BatchStoreMemoryRequest(
            "user-hana",
            [
                BatchStoreMemoryItem(
                    "The printer shows error E-42 after the firmware update.",
                    importance=0.7,
                    tags=["printer", "user"],
                    session_id=open_session["id"],
                ),
                BatchStoreMemoryItem(
                    "Customer prefers email follow-ups.",
                    memory_type="semantic",
                    importance=0.6,
                    session_id=open_session["id"],
                ),
                BatchStoreMemoryItem(
                    "Printer error E-42 persists after a reset; needs a technician.",
                    importance=1.0,
                    session_id=open_session["id"],
                    metadata={
                        "type": "handoff",
                        "from_agent": "tier1-bot",
                        "to_agent": "tech-support",
                        "urgency": "high",
                    },
                ),
            ],
        )
    )
    assert batch.stored_count == 3
    assert [m.id[:4] for m in batch.stored] == ["mem_"] * 3
    printer, preference, handoff_memory = batch.stored
    # A handoff memory stored in a batch becomes a handoff as well.
    handoff = Handoff.objects.get(memory_id=handoff_memory.id)
    assert handoff.team.slug == "tech-support"
    assert (handoff.urgency, handoff.urgency_source) == ("high", "bot")
    assert handoff.sentiment_source == "estimated"

    # Storing into an ended session succeeds and says so.
    late = client.store_memory("user-hana", "late note", session_id=ended_session["id"])
    assert late["session_state"] == "ended"
    late_batch = client.store_memories_batch(
        BatchStoreMemoryRequest(
            "user-hana", [BatchStoreMemoryItem("late too", session_id=ended_session["id"])]
        )
    )
    assert late_batch.ended_sessions == [ended_session["id"]]

    detail = client.get_session(open_session["id"])
    assert detail["memory_count"] == 3
    assert "ended_at" not in detail
    active = client.list_sessions(agent_id="user-hana", active_only=True)
    assert [s["id"] for s in active["sessions"]] == [open_session["id"]]
    everything = client.list_sessions(agent_id="user-hana", limit=1, offset=1)
    assert everything["total"] == 2
    assert [s["id"] for s in everything["sessions"]] == [open_session["id"]]
    in_session = client.session_memories(open_session["id"], limit=2, offset=1)
    assert [m["id"] for m in in_session] == [preference.id, handoff_memory.id]

    found = client.search_memories("user-hana", "printer error", top_k=5)
    assert [m["id"] for m in found][:2] == [handoff_memory.id, printer.id]
    assert all("score" in m and "content" in m for m in found)
    semantic = client.search_memories("user-hana", "email", memory_type="semantic")
    assert [m["id"] for m in semantic] == [preference.id]
    tagged = client.search_memories("user-hana", "printer", tags=["printer"])
    assert [m["id"] for m in tagged] == [printer.id]
    # Search is read-only: no access was counted.
    fetched = client.get_memory("user-hana", printer.id)
    assert fetched["access_count"] == 0
    assert fetched["tags"] == ["printer", "user"]
    assert client.get_memory(None, printer.id)["id"] == printer.id

    assert client.forget("user-hana", printer.id) == {"deleted_count": 1}
    assert client.forget("user-hana", printer.id) == {"deleted_count": 0}
    with pytest.raises(NotFoundError) as missing:
        client.get_memory("user-hana", printer.id)
    assert missing.value.resource == "memory"
    assert client.get_session(open_session["id"])["memory_count"] == 2
    remaining = client.search_memories("user-hana", "printer error")
    assert printer.id not in [m["id"] for m in remaining]


def test_sdk_maps_errors_by_status(live_server_url, bot_key):
    client = sdk(live_server_url, bot_key)
    with pytest.raises(NotFoundError) as unknown:
        client.get_session("sess_doesnotexist")
    assert unknown.value.status_code == 404
    assert unknown.value.resource == "session"
    with pytest.raises(ValidationError):
        client.start_session("-bad-id")
    with pytest.raises(PayloadTooLargeError) as too_large:
        client.store_memory("user-ivan", "x" * 100_001)
    assert too_large.value.code == dakera.ErrorCode.PAYLOAD_TOO_LARGE
    with pytest.raises(AuthenticationError) as denied:
        sdk(live_server_url, "dk-000000000000wrong").list_sessions()
    assert denied.value.status_code == 401
    with pytest.raises(AuthenticationError):
        DakeraClient(live_server_url, max_retries=1).list_sessions()
    assert Memory.objects.count() == 0
    assert MemorySession.objects.count() == 0


@pytest.mark.pg
def test_idle_sessions_end_by_themselves(live_server_url, bot_key):
    """A real server ends a session after its idle timeout; a store still succeeds."""
    client = sdk(live_server_url, bot_key)
    short = client.start_session("user-ida", idle_timeout_secs=60)
    default = client.start_session("user-ida")
    forever = client.start_session("user-ida", idle_timeout_secs=0)
    MemorySession.objects.filter(pk=short["id"]).update(
        last_activity_at=timezone.now() - dt.timedelta(seconds=120)
    )
    MemorySession.objects.filter(pk__in=[default["id"], forever["id"]]).update(
        last_activity_at=timezone.now() - dt.timedelta(hours=5)
    )

    active = client.list_sessions(agent_id="user-ida", active_only=True)
    assert [s["id"] for s in active["sessions"]] == [forever["id"]]
    touched = client.touch_session(short["id"])
    assert touched.session_state == "ended"
    assert touched.session.ended_reason == "idle"
    stored = client.store_memory("user-ida", "a note after the timeout", session_id=short["id"])
    assert stored["session_state"] == "ended"
    # Ending it afterwards answers its persisted state.
    ended = client.end_session(short["id"], summary="too late")
    assert ended["session"]["ended_reason"] == "idle"
    assert client.get_session(default["id"])["ended_reason"] == "idle"
    assert client.touch_session(forever["id"]).session_state == "active"


def test_demo_escalations_give_frank_a_resolved_past_conversation(live_server_url, teams):
    """``make run`` seeds a conversation Frank had 12 days ago (escalated, answered by bob,
    resolved) before his new escalation, so History and the card's "customer's past" have
    something to show; the new escalation is a conversation of its own, waiting."""
    setup = demo.ensure_people_and_bot()
    demo.run_more_escalations(sdk(live_server_url, setup.bot_key))

    hops = list(Handoff.objects.filter(customer="user-frank").order_by("created_at"))
    assert [h.status for h in hops] == [Status.RESOLVED, Status.WAITING]
    past, new = hops
    assert past.conversation_id != new.conversation_id
    assert past.accepted_by.user.username == "bob"
    age = timezone.now() - past.closed_at
    assert dt.timedelta(days=11) < age < dt.timedelta(days=13)
    assert past.conversation.messages.filter(body__contains="pending authorisation").exists()
    alice = Client()
    alice.force_login(User.objects.get(username="alice"))
    card = alice.get(f"/handoffs/{new.pk}/").content.decode()
    assert "Returning customer:</strong> 1 earlier conversation" in card
    assert f'href="/history/{past.pk}/"' in card
