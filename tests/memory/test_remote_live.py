"""The remote store against a live server: the console's own embedded server running in
another process (its own SQLite file and bot key) stands in for Dakera.

One behaviour suite runs on both implementations (``EmbeddedStore()`` in this process and
``RemoteStore`` over the network), then remote-only behaviour (derived memories,
auto-summaries, health checks) and the whole queue → accept → chat → transfer flow in
remote mode.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from handoffs.lifecycle.messages import message_post
from handoffs.memory.base import (
    MemoryNotFound,
    MemoryPayloadTooLarge,
    MemoryStore,
    MemoryValidationError,
)
from handoffs.memory.embedded import EmbeddedStore
from handoffs.memory.models import Memory
from handoffs.memory.remote import RemoteStore
from handoffs.models import Handoff, MemoryWrite, OutboxStatus, Sender, Status
from tests.conftest import ROOT, free_port

from .dakera_process import DakeraProcess, start_dakera
from .wire_shapes import ENDED_SESSION_KEYS, HIT_KEYS, MEMORY_KEYS, SESSION_KEYS

SUMMARY = (
    "Customer ACC-4521 (since 2024) reports $100 billing overcharge. Verified plan is "
    "$199/mo but last invoice shows $299. Customer tone: frustrated but polite. Needs "
    "refund or explanation."
)
FACTS = [
    ("User reports billing discrepancy: charged $299 but plan is $199/mo", 0.9, "issue"),
    ("User has been a customer since 2024. Account ID: ACC-4521.", 0.8, "context"),
]


@pytest.fixture(scope="module")
def dakera(tmp_path_factory, django_db_blocker) -> Iterator[DakeraProcess]:
    with django_db_blocker.unblock():
        process = start_dakera(tmp_path_factory.mktemp("dakera"))
    yield process
    process.stop()


def remote_store(dakera: DakeraProcess, **options: Any) -> RemoteStore:
    return RemoteStore(base_url=dakera.url, api_key=dakera.key, fail_fast_secs=0, **options)


@pytest.fixture(params=["embedded", "remote"])
def store(request) -> MemoryStore:
    if request.param == "embedded":
        request.getfixturevalue("db")
        return EmbeddedStore()
    return remote_store(request.getfixturevalue("dakera"))


@pytest.fixture
def agent() -> str:
    """A fresh customer namespace per test (the live server's database is shared)."""
    return f"user-{uuid.uuid4().hex[:12]}"


def seed(store: MemoryStore, agent: str) -> dict[str, Any]:
    session = store.start_session(agent_id=agent, metadata={"agent": "tier1-bot"})["session"]
    facts = [
        store.store(
            agent_id=agent,
            content=content,
            importance=importance,
            metadata={"type": kind},
            session_id=session["id"],
        )["memory"]
        for content, importance, kind in FACTS
    ]
    summary = store.store(
        agent_id=agent,
        content=SUMMARY,
        importance=1.0,
        metadata={"type": "handoff", "from_agent": "tier1-bot", "to_agent": "billing-specialist"},
        tags=["handoff"],
        session_id=session["id"],
    )["memory"]
    return {"session": session, "facts": facts, "summary": summary}


# ---------------------------------------------------------------- the shared suite
def test_session_lifecycle(store, agent):
    session = store.start_session(agent_id=agent, metadata={"agent": "tier1-bot"})["session"]
    assert set(session) == SESSION_KEYS
    assert session["id"].startswith("sess_") and session["agent_id"] == agent
    assert store.get_session(session_id=session["id"])["id"] == session["id"]

    touched = store.touch_session(session_id=session["id"])
    assert touched["session_state"] == "active"
    assert isinstance(touched["idle_deadline_at"], int)

    listed = store.list_sessions(agent_id=agent, limit=10)
    assert (listed["total"], [s["id"] for s in listed["sessions"]]) == (1, [session["id"]])

    ended = store.end_session(session_id=session["id"], summary="Bot->human handoff")
    assert set(ended["session"]) == ENDED_SESSION_KEYS
    assert ended["session"]["ended_reason"] == "client"
    assert ended["session"]["summary"] == "Bot->human handoff"
    again = store.end_session(session_id=session["id"], summary="ignored")
    assert again["session"]["ended_at"] == ended["session"]["ended_at"]  # idempotent
    assert store.end_session(session_id="sess_unknown") == {"memory_count": 0, "session": None}
    assert store.touch_session(session_id=session["id"])["session_state"] == "ended"
    assert store.list_sessions(agent_id=agent, active_only=True)["total"] == 0


def test_sessions_are_listed_newest_first(store, agent):
    first = store.start_session(agent_id=agent)["session"]["id"]
    second = store.start_session(agent_id=agent)["session"]["id"]
    listed = store.list_sessions(agent_id=agent, limit=1)
    assert listed["total"] == 2
    assert [s["id"] for s in listed["sessions"]] == [second]
    assert [s["id"] for s in store.list_sessions(agent_id=agent, offset=1)["sessions"]] == [first]


def test_store_and_session_memories_in_stored_order(store, agent):
    session = store.start_session(agent_id=agent)["session"]["id"]
    stored = []
    for n in range(3):
        result = store.store(agent_id=agent, content=f"message {n}", session_id=session)
        assert result["session_state"] == "active"
        assert set(result["memory"]) >= MEMORY_KEYS
        assert result["memory"]["id"].startswith("mem_")
        stored.append(result["memory"]["id"])
    listed = store.session_memories(session_id=session, limit=2)
    assert listed["total"] == 3
    assert [m["id"] for m in listed["memories"]] == stored[:2]
    rest = store.session_memories(session_id=session, limit=2, offset=2)["memories"]
    assert [m["content"] for m in rest] == ["message 2"]
    assert store.get_session(session_id=session)["memory_count"] == 3


def test_store_defaults(store, agent):
    memory = store.store(agent_id=agent, content="a plain fact")["memory"]
    assert (memory["memory_type"], memory["importance"]) == ("episodic", 0.5)
    assert (memory["tags"], memory["metadata"], memory["session_id"]) == ([], {}, None)
    assert memory["access_count"] == 0 and isinstance(memory["created_at"], int)


def test_store_into_an_ended_session_succeeds_and_says_ended(store, agent):
    session = store.start_session(agent_id=agent)["session"]["id"]
    store.end_session(session_id=session)
    result = store.store(agent_id=agent, content="after the end", session_id=session)
    assert result["session_state"] == "ended"
    assert result["memory"]["session_id"] == session


def test_batch_is_all_or_nothing(store, agent):
    result = store.store_batch(
        agent_id=agent, memories=[{"content": "one"}, {"content": "two", "importance": 0.7}]
    )
    assert result["stored_count"] == 2
    assert [m["content"] for m in result["stored"]] == ["one", "two"]
    with pytest.raises(MemoryValidationError):
        store.store_batch(agent_id=agent, memories=[{"content": "three"}, {"content": ""}])
    found = store.search(agent_id=agent, query="one two three", top_k=10)
    assert sorted(h["memory"]["content"] for h in found["memories"]) == ["one", "two"]


def test_handoff_summary_surfaces_first(store, agent):
    made = seed(store, agent)
    store.end_session(session_id=made["session"]["id"], summary="Bot->human handoff")
    recalled = store.recall(
        agent_id=agent, query="handoff summary billing issue", top_k=3, neighborhood_mode="separate"
    )
    hits = recalled["memories"]
    assert [h["memory"]["id"] for h in hits][0] == made["summary"]["id"]
    assert len(hits) == 3 and all(set(h) >= HIT_KEYS for h in hits)
    scores = [h["rank_score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert recalled["context_memories"] == []


def test_recall_bumps_access_and_search_does_not(store, agent):
    made = seed(store, agent)
    summary_id = made["summary"]["id"]
    for _ in range(2):
        hits = store.search(agent_id=agent, query="billing overcharge", top_k=5)["memories"]
        assert summary_id in [h["memory"]["id"] for h in hits]
    assert store.get_memory(agent_id=agent, memory_id=summary_id)["access_count"] == 0
    store.recall(agent_id=agent, query="billing overcharge", top_k=5)
    assert store.get_memory(agent_id=agent, memory_id=summary_id)["access_count"] == 1


def test_search_filters(store, agent):
    made = seed(store, agent)
    other = store.store(
        agent_id=agent, content="billing note outside the session", memory_type="semantic"
    )["memory"]

    def found(**filters: Any) -> set[str]:
        hits = store.search(agent_id=agent, query="billing", top_k=10, **filters)["memories"]
        return {h["memory"]["id"] for h in hits}

    assert found(tags=["handoff", "nothing"]) == {made["summary"]["id"]}
    assert found(memory_type="semantic") == {other["id"]}
    assert found(min_importance=0.95) == {made["summary"]["id"]}
    in_session = found(session_id=made["session"]["id"])
    assert other["id"] not in in_session and made["summary"]["id"] in in_session


def test_get_memory_and_forget(store, agent):
    memory = store.store(agent_id=agent, content="to be forgotten")["memory"]
    assert store.get_memory(agent_id=agent, memory_id=memory["id"])["content"] == "to be forgotten"
    assert store.get_memory(agent_id=None, memory_id=memory["id"])["id"] == memory["id"]
    with pytest.raises(MemoryNotFound) as caught:
        store.get_memory(agent_id="someone-else", memory_id=memory["id"])
    assert caught.value.resource == "memory"
    assert store.forget(agent_id=agent, memory_ids=[memory["id"]]) == {"deleted_count": 1}
    assert store.forget(agent_id=agent, memory_ids=[memory["id"]]) == {"deleted_count": 0}
    with pytest.raises(MemoryNotFound):
        store.get_memory(agent_id=agent, memory_id=memory["id"])


def test_namespaces_are_isolated(store, agent):
    seed(store, agent)
    assert store.recall(agent_id=f"{agent}-other", query="billing", top_k=5)["memories"] == []
    assert store.search(agent_id=f"{agent}-other", query="billing")["memories"] == []


@pytest.mark.parametrize(
    ("call", "error", "code", "resource"),
    [
        (
            lambda s, a: s.get_session(session_id="sess_missing"),
            MemoryNotFound,
            "NOT_FOUND",
            "session",
        ),
        (
            lambda s, a: s.session_memories(session_id="sess_missing"),
            MemoryNotFound,
            "NOT_FOUND",
            "session",
        ),
        (
            lambda s, a: s.store(agent_id=a, content="x", session_id="sess_missing"),
            MemoryNotFound,
            "NOT_FOUND",
            "session",
        ),
        (
            lambda s, a: s.store(agent_id="-bad", content="x"),
            MemoryValidationError,
            "INVALID_REQUEST",
            None,
        ),
        (
            lambda s, a: s.store(agent_id=a, content="x", importance=2),
            MemoryValidationError,
            "INVALID_REQUEST",
            None,
        ),
        (
            lambda s, a: s.store(agent_id=a, content="é" * 50_001),
            MemoryPayloadTooLarge,
            "PAYLOAD_TOO_LARGE",
            None,
        ),
        (
            lambda s, a: s.recall(agent_id=a, query="x", top_k=10_001),
            MemoryValidationError,
            "INVALID_REQUEST",
            None,
        ),
        (
            lambda s, a: s.start_session(agent_id="_dakera_internal"),
            MemoryValidationError,
            "INVALID_REQUEST",
            None,
        ),
    ],
    ids=[
        "unknown-session",
        "unknown-session-memories",
        "store-unknown-session",
        "bad-agent",
        "bad-importance",
        "too-large",
        "top-k",
        "reserved-agent",
    ],
)
def test_errors_are_the_same_exceptions(store, agent, call, error, code, resource):
    with pytest.raises(error) as caught:
        call(store, agent)
    assert (caught.value.status, caught.value.code) == (error.status, code)
    assert caught.value.resource == resource


def shape(value: Any) -> Any:
    """The structure of a wire answer: keys and JSON types, not values."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def scenario(store: MemoryStore, agent: str) -> dict[str, Any]:
    made = seed(store, agent)
    session = made["session"]["id"]
    return {
        "start": store.start_session(agent_id=agent, metadata={"k": "v"}),
        "get": store.get_session(session_id=session),
        "list": store.list_sessions(agent_id=agent, limit=1),
        "memories": store.session_memories(session_id=session, limit=1),
        "touch": store.touch_session(session_id=session),
        "store": store.store(agent_id=agent, content="one more", session_id=session),
        "batch": store.store_batch(agent_id=agent, memories=[{"content": "batched"}]),
        "recall": store.recall(agent_id=agent, query="billing", top_k=1),
        "search": store.search(agent_id=agent, query="billing", top_k=1),
        "get_memory": store.get_memory(agent_id=agent, memory_id=made["summary"]["id"]),
        "end": store.end_session(session_id=session, summary="done"),
        "forget": store.forget(agent_id=agent, memory_ids=[made["summary"]["id"]]),
    }


def test_both_stores_answer_with_the_same_shapes(db, dakera):
    embedded = scenario(EmbeddedStore(), f"user-{uuid.uuid4().hex[:12]}")
    remote = scenario(remote_store(dakera), f"user-{uuid.uuid4().hex[:12]}")
    # The remote search also says what it kept apart for people (auto-summaries).
    assert remote["search"].pop("summaries") == []
    # A real server may add timing fields; the embedded one sends them too here.
    assert shape(remote) == shape(embedded)


# ---------------------------------------------------------------- remote only
def test_derived_memories_are_hidden_from_people_but_not_from_bots(dakera, agent):
    store = remote_store(dakera)
    made = seed(store, agent)
    # What a real server derives by itself: sentences tagged dakera-curated, pointing
    # at their source memory (the stand-in server stores them like any other).
    derived = store.store(
        agent_id=agent,
        content="Customer ACC-4521 billing overcharge of $100.",
        importance=1.0,
        tags=["dakera-curated"],
        metadata={"source_memory_id": made["summary"]["id"]},
    )["memory"]
    for_people = store.search(agent_id=agent, query="ACC-4521 billing overcharge", top_k=10)
    assert derived["id"] not in [h["memory"]["id"] for h in for_people["memories"]]
    assert made["summary"]["id"] in [h["memory"]["id"] for h in for_people["memories"]]
    everything = store.search(
        agent_id=agent, query="ACC-4521 billing overcharge", top_k=10, people_only=False
    )
    assert derived["id"] in [h["memory"]["id"] for h in everything["memories"]]


def test_auto_summaries_are_kept_apart(dakera, agent):
    store = remote_store(dakera)
    seed(store, agent)
    auto = store.store(
        agent_id=agent,
        content="Session summary: billing overcharge handed to a human.",
        tags=["session-summary"],
        metadata={"type": "session_summary"},
    )["memory"]
    found = store.search(agent_id=agent, query="billing overcharge summary", top_k=10)
    assert auto["id"] not in [h["memory"]["id"] for h in found["memories"]]
    assert [h["memory"]["id"] for h in found["summaries"]] == [auto["id"]]


def test_check_against_the_live_server(dakera):
    report = remote_store(dakera).check()
    assert report["ok"] is True and report["server_status"] == "healthy"
    refused = RemoteStore(base_url=dakera.url, api_key="dk-wrong").check()
    assert (refused["ok"], refused["reachable"], refused["key_accepted"]) == (False, True, False)
    assert "INVALID_API_KEY" in refused["reason"]


def run_check_memory(url: str, key: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check_memory"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_DEBUG": "1", "DAKERA_URL": url, "DAKERA_API_KEY": key},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_memory_command_exit_codes(dakera):
    good = run_check_memory(dakera.url, dakera.key)
    assert good.returncode == 0, good.stderr
    assert "API key accepted: yes" in good.stdout
    assert dakera.key not in good.stdout + good.stderr

    refused = run_check_memory(dakera.url, "dk-wrong")
    assert refused.returncode == 1
    assert "the API key was refused" in refused.stderr

    down = run_check_memory(f"http://127.0.0.1:{free_port()}", dakera.key)
    assert down.returncode == 1
    assert "can't be reached" in down.stderr


def test_health_ready_reports_the_remote_server(dakera, settings, client, db):
    settings.DAKERA_URL, settings.DAKERA_API_KEY = dakera.url, dakera.key
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["memory"]["key_accepted"] is True
    settings.DAKERA_API_KEY = "dk-wrong"
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["reason"].startswith("memory server: the API key was refused")


# ---------------------------------------------------------------- the whole flow
@pytest.fixture
def remote_mode(dakera, settings) -> RemoteStore:
    """This test process in remote mode against the live stand-in."""
    settings.DAKERA_URL, settings.DAKERA_API_KEY = dakera.url, dakera.key
    settings.DAKERA_FAIL_FAST_SECS = 0
    return remote_store(dakera)


def test_queue_accept_chat_transfer_in_remote_mode(
    remote_mode, client, bot_key, teams, make_agent, django_capture_on_commit_callbacks, agent
):
    dk = remote_mode  # what the bot uses: the same Dakera
    made = seed(dk, agent)
    dk.end_session(session_id=made["session"]["id"], summary="Bot->human handoff: billing")

    # The bot notifies the console; the console keeps its own snapshot.
    response = client.post(
        "/api/v1/handoffs",
        data=json.dumps(
            {
                "customer": agent,
                "source_session_id": made["session"]["id"],
                "from_agent": "tier1-bot",
                "to_agent": "billing-specialist",
                "summary": SUMMARY,
                "sentiment": "frustrated",
                "urgency": "high",
            }
        ),
        content_type="application/json",
        headers={"Authorization": f"Bearer {bot_key}"},
    )
    assert response.status_code == 201, response.content
    hop = Handoff.objects.get(customer=agent)
    assert (hop.status, hop.sentiment, hop.urgency) == (Status.WAITING, "frustrated", "high")
    assert not Memory.objects.filter(agent_id=agent).exists()  # nothing in embedded tables

    # The card browses Dakera (search, never recall) and shows the context.
    alice = make_agent("alice", teams=[teams["billing-specialist"]])
    client.force_login(alice.user)
    page = client.get(f"/handoffs/{hop.pk}/").content.decode()
    assert "Account ID: ACC-4521" in page  # a fact from Dakera
    assert "charged $299" in page  # the bot's transcript from Dakera
    assert "context unavailable" not in page
    for fact in made["facts"]:
        assert dk.get_memory(agent_id=agent, memory_id=fact["id"])["access_count"] == 0

    # Accept: the human's memory session starts in Dakera, in the customer's namespace.
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/handoffs/{hop.pk}/accept").status_code == 302
    hop.refresh_from_db()
    human_session = hop.human_session_id
    assert dk.get_session(session_id=human_session)["metadata"]["agent"] == alice.memory_name

    # Chat: every message is committed, then copied into Dakera in order.
    lines = [
        (Sender.AGENT, "Hi, I can see the $299 charge on your plan."),
        (Sender.CUSTOMER, "Yes, I want a refund of the $100 difference."),
        (Sender.AGENT, "Refund issued; it shows within 5 days."),
    ]
    for n, (sender, body) in enumerate(lines):
        with django_capture_on_commit_callbacks(execute=True):
            if sender == Sender.AGENT:
                reply = client.post(
                    f"/conversations/{hop.pk}/messages", {"body": body, "client_id": f"m{n}"}
                )
                assert reply.status_code == 201
            else:
                message_post(
                    conversation=hop.conversation, sender=sender, body=body, client_id=f"m{n}"
                )
    assert not MemoryWrite.objects.exclude(status=OutboxStatus.DONE).exists()
    remembered = dk.session_memories(session_id=human_session)["memories"]
    assert [m["content"] for m in remembered] == [body for _, body in lines]
    assert [m["metadata"]["seq"] for m in remembered] == sorted(
        m["metadata"]["seq"] for m in remembered
    )

    # Transfer: a HANDOFF SUMMARY memory in Dakera, the human session ended, a new hop.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/conversations/{hop.pk}/close",
            {"action": "transfer", "to": "tech-support", "note": "Refund done; router issue."},
        )
    assert response.status_code == 302
    assert not MemoryWrite.objects.exclude(status=OutboxStatus.DONE).exists()
    hop.refresh_from_db()
    assert hop.status == Status.TRANSFERRED
    ended = dk.get_session(session_id=human_session)
    assert ended["ended_reason"] == "client" and ended["summary"].startswith("transferred")
    next_hop = Handoff.objects.get(previous=hop)
    assert next_hop.status == Status.WAITING and next_hop.team.slug == "tech-support"
    summary_memory = dk.get_memory(agent_id=agent, memory_id=next_hop.memory_id)
    assert summary_memory["content"].startswith("HANDOFF SUMMARY")
    assert summary_memory["metadata"]["type"] == "handoff"
    assert summary_memory["session_id"] == human_session

    # The next agent's card shows the chat from Dakera.
    bob = make_agent("bob", teams=[teams["tech-support"]])
    client.force_login(bob.user)
    page = client.get(f"/handoffs/{next_hop.pk}/").content.decode()
    assert "refund of the $100 difference" in page
    assert "context unavailable" not in page


def test_a_session_the_server_ended_is_replaced_and_the_chat_carries_on(
    remote_mode, bot, teams, make_agent, django_capture_on_commit_callbacks, agent
):
    from handoffs.lifecycle.accept import handoff_accept
    from handoffs.lifecycle.intake import handoff_intake

    alice = make_agent("alice", teams=[teams["billing-specialist"]])
    hop = handoff_intake(
        customer=agent,
        source_session_id="",
        from_agent="tier1-bot",
        to_agent="billing-specialist",
        summary=SUMMARY,
        bot=bot,
    ).handoff
    handoff_accept(handoff_id=hop.pk, agent=alice)
    hop.refresh_from_db()
    first_session = hop.human_session_id
    # The server ends it by itself (idle); the console doesn't know yet.
    remote_mode.end_session(session_id=first_session)

    def say(n: int) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            message_post(
                conversation=hop.conversation,
                sender=Sender.AGENT,
                body=f"line {n}",
                client_id=f"c{n}",
                agent=alice,
            )

    say(1)  # stored into the ended session: the store answers "ended"
    hop.refresh_from_db()
    assert hop.human_session_id == ""  # the outbox cleared it
    say(2)  # a fresh session starts
    hop.refresh_from_db()
    assert hop.human_session_id not in {"", first_session}
    old = remote_mode.session_memories(session_id=first_session)["memories"]
    new = remote_mode.session_memories(session_id=hop.human_session_id)["memories"]
    assert [m["content"] for m in old] == ["line 1"]
    assert [m["content"] for m in new] == ["line 2"]
    assert remote_mode.get_session(session_id=hop.human_session_id).get("ended_at") is None
