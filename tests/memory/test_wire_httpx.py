"""The seed flow written with plain httpx (no SDK) gets what the SDK gets: same recall
order, same handoff record, same response keys."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from dakera import DakeraClient

from handoffs.models import Handoff

from .wire_shapes import ENDED_SESSION_KEYS, HIT_KEYS, MEMORY_KEYS, SESSION_KEYS

QUERY = "handoff summary billing issue"
FACTS = [
    ("User reports billing discrepancy: charged $299 but plan is $199/mo", 0.9, "issue"),
    ("User has been a customer since 2024. Account ID: ACC-4521.", 0.8, "context"),
]
SUMMARY = (
    "Customer ACC-4521 (since 2024) reports $100 billing overcharge. Verified plan is "
    "$199/mo but last invoice shows $299. Customer tone: frustrated but polite. Needs "
    "refund or explanation."
)
HANDOFF_METADATA = {"type": "handoff", "from_agent": "tier1-bot", "to_agent": "billing-specialist"}
# What differs between two runs by construction (ids, times, the namespace itself).
VOLATILE = {
    "id",
    "customer",
    "source_session_id",
    "memory_id",
    "chain_id",
    "created_at",
    "last_accessed_at",
}


def sdk_flow(client: DakeraClient, customer: str) -> dict[str, Any]:
    session = client.start_session(customer, metadata={"agent": "tier1-bot", "channel": "chat"})
    stored = [
        client.store_memory(
            customer,
            content,
            importance=importance,
            metadata={"type": kind},
            session_id=session["id"],
        )
        for content, importance, kind in FACTS
    ]
    stored.append(
        client.store_memory(
            customer, SUMMARY, importance=1.0, metadata=HANDOFF_METADATA, session_id=session["id"]
        )
    )
    ended = client.end_session(session["id"], summary="Bot->human handoff: billing overcharge")
    specialist = client.start_session(customer, metadata={"agent": "billing-specialist"})
    recall = client.recall(customer, QUERY, top_k=3, neighborhood_mode="separate")
    return {
        "session": session,
        "stored": stored,
        "ended": ended,
        "specialist": specialist,
        "recall_ids": [m.id for m in recall.memories],
        "recall_contents": [m.content for m in recall.memories],
        "recall_scores": [m.rank_score for m in recall.memories],
        "sessions": client.list_sessions(agent_id=customer, limit=10),
        "session_memories": client.session_memories(session["id"], limit=50),
    }


def httpx_flow(base_url: str, key: str, customer: str) -> dict[str, Any]:
    """The same calls, spelled as the wire document captured them."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    raw: dict[str, Any] = {}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as http:

        def call(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
            response = http.request(method, path, **kwargs)
            assert response.status_code == 200, (path, response.text)
            assert response.headers["content-type"].startswith("application/json")
            return response.json()

        raw["start"] = call(
            "POST",
            "/v1/sessions/start",
            json={"agent_id": customer, "metadata": {"agent": "tier1-bot", "channel": "chat"}},
        )
        session_id = raw["start"]["session"]["id"]
        raw["stores"] = [
            call(
                "POST",
                "/v1/memory/store",
                json={
                    "content": content,
                    "memory_type": "episodic",
                    "importance": importance,
                    "metadata": {"type": kind},
                    "session_id": session_id,
                    "agent_id": customer,
                },
            )
            for content, importance, kind in FACTS
        ]
        raw["stores"].append(
            call(
                "POST",
                "/v1/memory/store",
                json={
                    "content": SUMMARY,
                    "memory_type": "episodic",
                    "importance": 1.0,
                    "metadata": HANDOFF_METADATA,
                    "session_id": session_id,
                    "agent_id": customer,
                },
            )
        )
        raw["end"] = call(
            "POST",
            f"/v1/sessions/{session_id}/end",
            json={"summary": "Bot->human handoff: billing overcharge"},
        )
        raw["specialist"] = call(
            "POST",
            "/v1/sessions/start",
            json={"agent_id": customer, "metadata": {"agent": "billing-specialist"}},
        )
        raw["recall"] = call(
            "POST",
            "/v1/memory/recall",
            json={
                "query": QUERY,
                "top_k": 3,
                "neighborhood_mode": "separate",
                "agent_id": customer,
            },
        )
        raw["sessions"] = call("GET", "/v1/sessions", params={"agent_id": customer, "limit": 10})
        raw["session_memories"] = call(
            "GET", f"/v1/sessions/{session_id}/memories", params={"limit": 50}
        )
    return raw


def handoff_record(base_url: str, key: str, handoff: Handoff) -> dict[str, Any]:
    response = httpx.get(
        f"{base_url}/api/v1/handoffs/{handoff.public_id}",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200
    return response.json()["handoff"]


@pytest.mark.pg
def test_httpx_flow_matches_the_sdk(live_server_url, bot_key, teams):
    via_sdk = sdk_flow(DakeraClient(live_server_url, api_key=bot_key, max_retries=1), "user-dave")
    raw = httpx_flow(live_server_url, bot_key, "user-eve")

    # Response keys: exactly the wire document's, and what the SDK handed back.
    assert set(raw["start"]) == {"session"}
    assert set(raw["start"]["session"]) == SESSION_KEYS == set(via_sdk["session"])
    for store, sdk_memory in zip(raw["stores"], via_sdk["stored"], strict=True):
        assert set(store) == {"memory", "session_state", "embedding_time_ms"}
        assert set(store["memory"]) == MEMORY_KEYS
        assert set(sdk_memory) == MEMORY_KEYS | {"session_state"}
        assert store["session_state"] == sdk_memory["session_state"] == "active"
        same = MEMORY_KEYS - VOLATILE - {"agent_id", "session_id"}
        assert {k: store["memory"][k] for k in same} == {k: sdk_memory[k] for k in same}
    assert set(raw["end"]) == {"memory_count", "session"} == set(via_sdk["ended"])
    assert set(raw["end"]["session"]) == ENDED_SESSION_KEYS == set(via_sdk["ended"]["session"])
    assert raw["end"]["memory_count"] == via_sdk["ended"]["memory_count"] == 3
    assert set(raw["recall"]) == {
        "memories",
        "context_memories",
        "query_embedding_time_ms",
        "search_time_ms",
    }
    assert all(set(hit) == HIT_KEYS for hit in raw["recall"]["memories"])
    assert all(set(hit["memory"]) == MEMORY_KEYS for hit in raw["recall"]["memories"])
    assert set(raw["sessions"]) == {"sessions", "total"}
    assert set(raw["session_memories"]) == {"session", "memories", "total"}

    # Same recall order, the handoff summary first, and comparable scores.
    recall_contents = [hit["memory"]["content"] for hit in raw["recall"]["memories"]]
    assert recall_contents == via_sdk["recall_contents"]
    assert recall_contents[0] == SUMMARY
    stored_ids = [store["memory"]["id"] for store in raw["stores"]]
    assert raw["recall"]["memories"][0]["memory"]["id"] == stored_ids[2]
    assert via_sdk["recall_ids"][0] == via_sdk["stored"][2]["id"]
    scores = [hit["rank_score"] for hit in raw["recall"]["memories"]]
    assert scores == sorted(scores, reverse=True)
    assert scores == pytest.approx(via_sdk["recall_scores"], abs=0.05)

    # Same session listing and session memories.
    assert raw["sessions"]["total"] == via_sdk["sessions"]["total"] == 2
    assert [s["metadata"] for s in raw["sessions"]["sessions"]] == [
        s["metadata"] for s in via_sdk["sessions"]["sessions"]
    ]
    assert [m["content"] for m in raw["session_memories"]["memories"]] == [
        m["content"] for m in via_sdk["session_memories"]
    ]

    # Same handoff record: one waiting billing handoff per customer, identical but for ids.
    assert Handoff.objects.count() == 2
    sdk_handoff = Handoff.objects.get(customer="user-dave")
    httpx_handoff = Handoff.objects.get(customer="user-eve")
    assert httpx_handoff.memory_id == stored_ids[2]
    assert httpx_handoff.source_session_id == raw["start"]["session"]["id"]
    sdk_record = handoff_record(live_server_url, bot_key, sdk_handoff)
    httpx_record = handoff_record(live_server_url, bot_key, httpx_handoff)
    assert set(sdk_record) == set(httpx_record)
    for name, value in sdk_record.items():
        if isinstance(value, dict):  # a nested object (its ids differ): same shape
            assert set(value) == set(httpx_record[name])
        elif name not in VOLATILE:
            assert httpx_record[name] == value, name
    assert httpx_record["status"] == "waiting"
    assert httpx_record["team"] == "billing-specialist"
    assert httpx_record["sentiment"] and httpx_record["urgency"]
    assert httpx_record["sentiment_source"] == httpx_record["urgency_source"] == "estimated"


def test_x_api_key_header_works_like_bearer(live_server_url, bot_key):
    """The other accepted header: ``X-API-Key`` alone authenticates the same calls."""
    response = httpx.post(
        f"{live_server_url}/v1/sessions/start",
        json={"agent_id": "user-kim"},
        headers={"X-API-Key": bot_key},
    )
    assert response.status_code == 200
    listed = httpx.get(
        f"{live_server_url}/v1/sessions",
        params={"agent_id": "user-kim"},
        headers={"X-API-Key": bot_key, "Authorization": "Bearer dk-000000000000wrong"},
    )
    assert listed.status_code == 200
    assert [s["id"] for s in listed.json()["sessions"]] == [response.json()["session"]["id"]]


def test_health_endpoints_need_no_key(live_server_url):
    assert httpx.get(f"{live_server_url}/health").json()["status"] == "healthy"
    assert httpx.get(f"{live_server_url}/health/live").status_code == 200
    ready = httpx.get(f"{live_server_url}/health/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    unauthenticated = httpx.get(f"{live_server_url}/v1/sessions")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"] == "authentication_error"
