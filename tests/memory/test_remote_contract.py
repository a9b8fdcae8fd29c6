"""Contract tests of the remote store: ``httpx.MockTransport`` replays the recorded shapes
of the Dakera wire format (``docs/memory-api.md``) for every call, the error bodies,
Dakera's retry rules,
an ended session and derived memories. No network, no sleeping (sleeps are recorded)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from handoffs.delivery import outbox
from handoffs.memory import get_store, remote
from handoffs.memory.base import (
    MemoryAuthError,
    MemoryError,
    MemoryForbidden,
    MemoryNotFound,
    MemoryPayloadTooLarge,
    MemoryRateLimited,
    MemoryUnavailable,
    MemoryValidationError,
)
from handoffs.memory.remote import RemoteStore
from handoffs.models import Handoff, MemoryWrite, OutboxStatus, Status

BASE = "http://dakera.test:3300"
KEY = "dk-contract-key-0123456789"
T0 = 1_767_225_600
SESSION = {
    "id": "sess_4f2a9c1e0b7d4e5f",
    "agent_id": "user-dave",
    "started_at": T0,
    "metadata": {"agent": "tier1-bot", "channel": "chat"},
    "memory_count": 0,
    "last_activity_at": T0,
}
ENDED_SESSION = {
    **SESSION,
    "memory_count": 3,
    "ended_at": T0 + 60,
    "summary": "Bot->human handoff: duplicate charge",
    "ended_reason": "client",
}
MEMORY = {
    "id": "mem_8c1d2e3f4a5b6c7d",
    "memory_type": "episodic",
    "content": "Handoff summary: customer charged twice for the March invoice.",
    "agent_id": "user-dave",
    "session_id": SESSION["id"],
    "importance": 0.9,
    "tags": ["handoff"],
    "metadata": {"kind": "handoff_summary", "type": "handoff"},
    "created_at": T0 + 30,
    "last_accessed_at": T0 + 30,
    "access_count": 0,
}
FACT = {
    **MEMORY,
    "id": "mem_1a2b3c4d5e6f7a8b",
    "content": "Account ID: ACC-4521, customer since 2024.",
    "importance": 0.8,
    "tags": [],
    "metadata": {"type": "context"},
}
DERIVED = {
    **MEMORY,
    "id": "mem_s0123456789abcdef01234567",
    "content": "Customer charged twice.",
    "tags": ["dakera-curated"],
    "metadata": {"source_memory_id": MEMORY["id"]},
}
DERIVED_BY_METADATA = {
    **FACT,
    "id": "mem_9f9f9f9f9f9f9f9f",
    "content": "Customer since 2024.",
    "tags": [],
    "metadata": {"source_memory_id": FACT["id"]},
}
AUTO_SUMMARY = {
    **MEMORY,
    "id": "mem_5e5e5e5e5e5e5e5e",
    "content": "Session summary: billing question, handed to a human.",
    "tags": ["session-summary"],
    "metadata": {"type": "session_summary"},
}


def hit(memory: dict[str, Any], score: float) -> dict[str, Any]:
    return {
        "memory": memory,
        "score": score,
        "weighted_score": score,
        "smart_score": score,
        "rank_score": score,
    }


@dataclass
class FakeDakera:
    """Answers by route; records every request. A route's value is a response, a list
    of responses/exceptions consumed one per attempt, or a callable."""

    routes: dict[tuple[str, str], Any] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.routes.get((request.method, request.url.path))
        if answer is None:
            return httpx.Response(404, json={"error": "no route", "code": "ROUTE_NOT_FOUND"})
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if callable(answer) and not isinstance(answer, httpx.Response):
            answer = answer(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def on(self, method: str, path: str, *answers: Any) -> FakeDakera:
        self.routes[(method, path)] = list(answers) if len(answers) > 1 else answers[0]
        return self

    def attempts(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if (r.method, r.url.path) == (method, path))

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def ok(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


def error(status: int, body: Any, retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    if isinstance(body, str):
        return httpx.Response(status, text=body, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


def sent(request: httpx.Request) -> Any:
    return json.loads(request.content) if request.content else None


@pytest.fixture
def fake() -> FakeDakera:
    return FakeDakera()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_store(fake: FakeDakera, sleeps: list[float]) -> Callable[..., RemoteStore]:
    def make(**overrides: Any) -> RemoteStore:
        options: dict[str, Any] = {
            "base_url": BASE,
            "api_key": KEY,
            "client": httpx.Client(transport=httpx.MockTransport(fake)),
            "connect_timeout": 2,
            "read_timeout": 10,
            "max_retries": 2,
            "retry_after_cap": 5,
            "fail_fast_secs": 0,
            "sleep": sleeps.append,
        }
        options.update(overrides)
        return RemoteStore(**options)

    return make


@pytest.fixture
def store(make_store) -> RemoteStore:
    return make_store()


# ---------------------------------------------------------------- every call
def test_requests_carry_the_bearer_key_and_json(store, fake):
    fake.on("POST", "/v1/sessions/start", ok({"session": SESSION}))
    store.start_session(agent_id="user-dave")
    request = fake.last
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert str(request.url) == f"{BASE}/v1/sessions/start"
    assert KEY not in repr(store)


def test_start_session(store, fake):
    fake.on("POST", "/v1/sessions/start", ok({"session": SESSION}))
    result = store.start_session(
        agent_id="user-dave", metadata={"agent": "tier1-bot", "channel": "chat"}
    )
    assert sent(fake.last) == {
        "agent_id": "user-dave",
        "metadata": {"agent": "tier1-bot", "channel": "chat"},
    }
    assert result == {"session": SESSION}


def test_start_session_with_idle_timeout(store, fake):
    fake.on("POST", "/v1/sessions/start", ok({"session": SESSION}))
    store.start_session(agent_id="user-dave", idle_timeout_secs=600)
    assert sent(fake.last) == {"agent_id": "user-dave", "idle_timeout_secs": 600}


def test_end_session(store, fake):
    path = f"/v1/sessions/{SESSION['id']}/end"
    fake.on("POST", path, ok({"memory_count": 3, "session": ENDED_SESSION}))
    result = store.end_session(
        session_id=SESSION["id"], summary="Bot->human handoff: duplicate charge"
    )
    assert sent(fake.last) == {"summary": "Bot->human handoff: duplicate charge"}
    assert result == {"memory_count": 3, "session": ENDED_SESSION}
    assert result["session"]["ended_reason"] == "client"


def test_ending_an_unknown_session_is_idempotent(store, fake):
    fake.on("POST", "/v1/sessions/sess_gone/end", ok({"memory_count": 0, "session": None}))
    assert store.end_session(session_id="sess_gone") == {"memory_count": 0, "session": None}
    assert sent(fake.last) == {}


def test_get_session(store, fake):
    fake.on("GET", f"/v1/sessions/{SESSION['id']}", ok(SESSION))
    assert store.get_session(session_id=SESSION["id"]) == SESSION


def test_session_ids_are_one_path_segment(store, fake):
    fake.on("GET", "/v1/sessions/a/b", ok(SESSION))  # httpx matches on the decoded path
    store.get_session(session_id="a/b")
    assert fake.last.url.raw_path == b"/v1/sessions/a%2Fb"


def test_list_sessions(store, fake):
    fake.on("GET", "/v1/sessions", ok({"sessions": [ENDED_SESSION, SESSION], "total": 2}))
    result = store.list_sessions(agent_id="user-dave", active_only=True, limit=10)
    assert dict(fake.last.url.params) == {
        "agent_id": "user-dave",
        "active_only": "true",
        "limit": "10",
        "offset": "0",
    }
    assert result == {"sessions": [ENDED_SESSION, SESSION], "total": 2}


def test_session_memories(store, fake):
    path = f"/v1/sessions/{SESSION['id']}/memories"
    fake.on("GET", path, ok({"session": SESSION, "memories": [FACT, MEMORY], "total": 2}))
    result = store.session_memories(session_id=SESSION["id"], limit=50)
    assert dict(fake.last.url.params) == {"limit": "50", "offset": "0"}
    assert result == {"session": SESSION, "memories": [FACT, MEMORY], "total": 2}


def test_touch_session(store, fake):
    path = f"/v1/sessions/{SESSION['id']}/touch"
    body = {"session": SESSION, "session_state": "active", "idle_deadline_at": T0 + 14_400}
    fake.on("POST", path, ok(body))
    assert store.touch_session(session_id=SESSION["id"]) == body
    assert fake.last.content == b""


def test_touching_an_ended_session_says_ended(store, fake):
    path = f"/v1/sessions/{SESSION['id']}/touch"
    body = {"session": ENDED_SESSION, "session_state": "ended", "idle_deadline_at": None}
    fake.on("POST", path, ok(body))
    assert store.touch_session(session_id=SESSION["id"])["session_state"] == "ended"


def test_store(store, fake):
    fake.on(
        "POST",
        "/v1/memory/store",
        ok({"memory": MEMORY, "session_state": "active", "embedding_time_ms": 12}),
    )
    result = store.store(
        agent_id="user-dave",
        content=MEMORY["content"],
        memory_type="episodic",
        importance=0.9,
        metadata=MEMORY["metadata"],
        session_id=SESSION["id"],
        tags=["handoff"],
    )
    # What the SDK sends in the handoff flow (captured in the wire doc), no nulls.
    assert sent(fake.last) == {
        "agent_id": "user-dave",
        "content": MEMORY["content"],
        "memory_type": "episodic",
        "importance": 0.9,
        "metadata": MEMORY["metadata"],
        "session_id": SESSION["id"],
        "tags": ["handoff"],
    }
    assert result == {"memory": MEMORY, "session_state": "active", "embedding_time_ms": 12}


def test_store_into_an_ended_session_succeeds_and_says_so(store, fake):
    fake.on(
        "POST",
        "/v1/memory/store",
        ok({"memory": MEMORY, "session_state": "ended", "embedding_time_ms": 9}),
    )
    result = store.store(agent_id="user-dave", content="late", session_id=SESSION["id"])
    assert result["session_state"] == "ended"
    assert result["memory"]["id"] == MEMORY["id"]


def test_a_flat_store_answer_is_wrapped(store, fake):
    fake.on("POST", "/v1/memory/store", ok({**MEMORY, "session_state": "ended"}))
    result = store.store(agent_id="user-dave", content="x", session_id=SESSION["id"])
    assert result == {"memory": MEMORY, "session_state": "ended", "embedding_time_ms": 0}


def test_store_batch(store, fake):
    body = {"stored": [FACT, MEMORY], "stored_count": 2, "total_embedding_time_ms": 20}
    fake.on("POST", "/v1/memories/store/batch", ok(body))
    items = [{"content": FACT["content"]}, {"content": MEMORY["content"], "importance": 0.9}]
    assert store.store_batch(agent_id="user-dave", memories=items) == body
    assert sent(fake.last) == {"agent_id": "user-dave", "memories": items}


def test_recall(store, fake):
    body = {
        "memories": [hit(MEMORY, 0.91), hit(FACT, 0.62)],
        "context_memories": [],
        "query_embedding_time_ms": 4,
        "search_time_ms": 7,
    }
    fake.on("POST", "/v1/memory/recall", ok(body))
    result = store.recall(
        agent_id="support-bot",
        query="handoff summary billing issue",
        top_k=3,
        neighborhood_mode="separate",
    )
    assert sent(fake.last) == {
        "agent_id": "support-bot",
        "query": "handoff summary billing issue",
        "top_k": 3,
        "neighborhood_mode": "separate",
    }
    assert result == body


def test_flat_recall_hits_are_nested_like_the_embedded_store(store, fake):
    flat = [{**MEMORY, "score": 0.9, "rank_score": 0.95}, {**FACT, "score": 0.5}]
    fake.on("POST", "/v1/memory/recall", ok({"memories": flat}))
    result = store.recall(agent_id="user-dave", query="billing")
    assert [h["memory"] for h in result["memories"]] == [MEMORY, FACT]
    first = result["memories"][0]
    assert (first["score"], first["rank_score"]) == (0.9, 0.95)
    assert {"score", "weighted_score", "smart_score", "rank_score"} <= set(first)
    assert result["query_embedding_time_ms"] == 0 and result["search_time_ms"] == 0


def test_inline_neighbourhood_items_are_kept_apart_from_ranked_hits(store, fake):
    neighbour = {**hit(FACT, 0.1), "retrieval": "neighborhood", "context_of": MEMORY["id"]}
    fake.on("POST", "/v1/memory/recall", ok({"memories": [hit(MEMORY, 0.9), neighbour]}))
    result = store.recall(agent_id="user-dave", query="billing", top_k=1)
    assert [h["memory"]["id"] for h in result["memories"]] == [MEMORY["id"]]
    assert [h["memory"]["id"] for h in result["context_memories"]] == [FACT["id"]]


def test_search(store, fake):
    fake.on(
        "POST",
        "/v1/memory/search",
        ok({"memories": [hit(MEMORY, 0.9), hit(FACT, 0.5)], "total_count": 2}),
    )
    result = store.search(agent_id="user-dave", query="billing", top_k=10, tags=["handoff"])
    body = sent(fake.last)
    assert body["agent_id"] == "user-dave" and body["tags"] == ["handoff"]
    assert body["top_k"] == 10 + remote.SEARCH_OVERFETCH  # room for hidden memories
    assert result == {
        "memories": [hit(MEMORY, 0.9), hit(FACT, 0.5)],
        "total_count": 2,
        "summaries": [],
    }


def test_search_hides_derived_memories_and_keeps_auto_summaries_apart(store, fake):
    hits = [
        hit(DERIVED, 0.99),
        hit(MEMORY, 0.9),
        hit(AUTO_SUMMARY, 0.8),
        hit(DERIVED_BY_METADATA, 0.7),
        hit(FACT, 0.5),
    ]
    fake.on("POST", "/v1/memory/search", ok({"memories": hits, "total_count": 5}))
    result = store.search(agent_id="user-dave", query="billing")
    assert [h["memory"]["id"] for h in result["memories"]] == [MEMORY["id"], FACT["id"]]
    assert [h["memory"]["id"] for h in result["summaries"]] == [AUTO_SUMMARY["id"]]
    assert result["total_count"] == 2


def test_search_trims_to_top_k_after_hiding(store, fake):
    hits = [hit(DERIVED, 0.99), hit(MEMORY, 0.9), hit(FACT, 0.5)]
    fake.on("POST", "/v1/memory/search", ok({"memories": hits, "total_count": 3}))
    result = store.search(agent_id="user-dave", query="billing", top_k=1)
    assert sent(fake.last)["top_k"] == 1 + remote.SEARCH_OVERFETCH
    assert [h["memory"]["id"] for h in result["memories"]] == [MEMORY["id"]]


def test_search_for_machines_returns_everything(store, fake):
    hits = [hit(DERIVED, 0.99), hit(AUTO_SUMMARY, 0.8)]
    fake.on("POST", "/v1/memory/search", ok({"memories": hits, "total_count": 2}))
    result = store.search(agent_id="user-dave", query="billing", top_k=5, people_only=False)
    assert sent(fake.last)["top_k"] == 5
    assert result == {"memories": hits, "total_count": 2}


def test_search_accepts_a_bare_list_of_flat_hits(store, fake):
    fake.on("POST", "/v1/memory/search", ok([{**FACT, "score": 0.4}]))
    result = store.search(agent_id="user-dave", query="account")
    assert result["memories"][0]["memory"] == FACT


def test_search_validates_top_k_like_the_embedded_store(store, fake):
    with pytest.raises(MemoryValidationError):
        store.search(agent_id="user-dave", query="x", top_k=10_001)
    assert fake.requests == []


def test_get_memory(store, fake):
    fake.on("GET", f"/v1/memory/get/{MEMORY['id']}", ok(MEMORY))
    assert store.get_memory(agent_id="user-dave", memory_id=MEMORY["id"]) == MEMORY
    assert dict(fake.last.url.params) == {"agent_id": "user-dave"}


def test_get_memory_without_agent_and_wrapped_answer(store, fake):
    fake.on("GET", f"/v1/memory/get/{MEMORY['id']}", ok({"memory": MEMORY}))
    assert store.get_memory(agent_id=None, memory_id=MEMORY["id"]) == MEMORY
    assert dict(fake.last.url.params) == {}


def test_forget(store, fake):
    fake.on("POST", "/v1/memory/forget", ok({"deleted_count": 2}))
    result = store.forget(agent_id="user-dave", memory_ids=[MEMORY["id"], FACT["id"]])
    assert result == {"deleted_count": 2}
    assert sent(fake.last) == {"agent_id": "user-dave", "memory_ids": [MEMORY["id"], FACT["id"]]}


# ---------------------------------------------------------------- error bodies
def test_400_is_a_validation_error_with_the_servers_code(store, fake):
    fake.on(
        "POST",
        "/v1/memory/store",
        error(
            400,
            {
                "error": "invalid agent_id",
                "code": "INVALID_AGENT_ID",
                "details": "agent_id must match [A-Za-z0-9][A-Za-z0-9_.-]*",
            },
        ),
    )
    with pytest.raises(MemoryValidationError) as caught:
        store.store(agent_id="-bad", content="x")
    exc = caught.value
    assert (exc.status, exc.code, exc.message) == (400, "INVALID_AGENT_ID", "invalid agent_id")
    assert exc.details.startswith("agent_id must match")
    assert fake.attempts("POST", "/v1/memory/store") == 1


def test_401_keeps_the_auth_message_and_is_not_retried(store, fake):
    fake.on(
        "GET",
        "/v1/sessions",
        error(
            401,
            {
                "error": "authentication_error",
                "message": "invalid API key",
                "code": "INVALID_API_KEY",
            },
        ),
    )
    with pytest.raises(MemoryAuthError) as caught:
        store.list_sessions()
    assert (caught.value.status, caught.value.code) == (401, "INVALID_API_KEY")
    assert caught.value.message == "invalid API key"
    assert fake.attempts("GET", "/v1/sessions") == 1


def test_401_without_a_code_keeps_the_console_default(store, fake):
    fake.on("GET", "/v1/sessions", error(401, {"error": "authentication_error", "message": "no"}))
    with pytest.raises(MemoryAuthError) as caught:
        store.list_sessions()
    assert caught.value.code == MemoryAuthError.code


def test_403_is_forbidden(store, fake):
    fake.on(
        "POST",
        "/v1/memory/forget",
        error(403, {"error": "key lacks the write scope", "code": "INSUFFICIENT_SCOPE"}),
    )
    with pytest.raises(MemoryForbidden):
        store.forget(agent_id="user-dave", memory_ids=["mem_1"])


def test_404_says_which_resource(store, fake):
    fake.on(
        "GET",
        "/v1/sessions/sess_missing",
        error(
            404,
            {"error": "session sess_missing not found", "code": "NOT_FOUND", "resource": "session"},
        ),
    )
    with pytest.raises(MemoryNotFound) as caught:
        store.get_session(session_id="sess_missing")
    assert (caught.value.resource, caught.value.code) == ("session", "NOT_FOUND")
    assert caught.value.as_wire() == {
        "error": "session sess_missing not found",
        "code": "NOT_FOUND",
        "resource": "session",
    }


def test_404_memory(store, fake):
    fake.on(
        "GET",
        "/v1/memory/get/mem_gone",
        error(404, {"error": "memory not found", "code": "NOT_FOUND", "resource": "memory"}),
    )
    with pytest.raises(MemoryNotFound) as caught:
        store.get_memory(agent_id="user-dave", memory_id="mem_gone")
    assert caught.value.resource == "memory"


def test_413_is_payload_too_large(store, fake):
    fake.on(
        "POST",
        "/v1/memory/store",
        error(
            413,
            {
                "error": "content is 100001 bytes; the limit is 100000 bytes",
                "code": "PAYLOAD_TOO_LARGE",
                "details": "content",
            },
        ),
    )
    with pytest.raises(MemoryPayloadTooLarge) as caught:
        store.store(agent_id="user-dave", content="x" * 100_001)
    assert (caught.value.status, caught.value.code) == (413, "PAYLOAD_TOO_LARGE")
    assert caught.value.details == "content"


def test_other_4xx_keep_their_status_and_code(store, fake):
    fake.on("POST", "/v1/memory/recall", error(421, {"error": "host", "code": "HOST_NOT_ALLOWED"}))
    with pytest.raises(MemoryError) as caught:
        store.recall(agent_id="user-dave", query="x")
    assert (caught.value.status, caught.value.code) == (421, "HOST_NOT_ALLOWED")


def test_a_proxys_plain_text_502_is_unavailable(store, fake):
    fake.on("POST", "/v1/memory/store", error(502, "<html>Bad Gateway</html>"))
    with pytest.raises(MemoryUnavailable) as caught:
        store.store(agent_id="user-dave", content="x")
    assert caught.value.message == "<html>Bad Gateway</html>"
    assert (caught.value.status, caught.value.code) == (503, "HTTP_502")


def test_a_non_json_success_is_unavailable(store, fake):
    fake.on("GET", "/v1/sessions/x", httpx.Response(200, text="<html>login</html>"))
    with pytest.raises(MemoryUnavailable) as caught:
        store.get_session(session_id="x")
    assert caught.value.code == "INVALID_RESPONSE"


# ---------------------------------------------------------------- retries
RATE_LIMITED = {"error": "rate limit exceeded", "code": "RATE_LIMIT_EXCEEDED"}
UNAVAILABLE = {"error": "server is starting", "code": "SERVICE_UNAVAILABLE"}
INTERNAL = {"error": "internal error", "code": "INTERNAL_ERROR"}
STORED = {"memory": MEMORY, "session_state": "active", "embedding_time_ms": 3}


def test_429_honours_retry_after_then_succeeds(store, fake, sleeps):
    fake.on("POST", "/v1/memory/store", error(429, RATE_LIMITED, retry_after="1"), ok(STORED))
    assert store.store(agent_id="user-dave", content="x")["memory"] == MEMORY
    assert fake.attempts("POST", "/v1/memory/store") == 2  # a 429 was not acted on
    assert sleeps == [1.0]


def test_429_with_an_http_date_retry_after(store, fake, sleeps):
    fake.on(
        "POST",
        "/v1/memory/recall",
        error(429, RATE_LIMITED, retry_after="Wed, 21 Oct 2015 07:28:00 GMT"),  # past
        ok({"memories": []}),
    )
    store.recall(agent_id="user-dave", query="x")
    assert sleeps == [0.0]


def test_a_retry_after_beyond_the_cap_is_passed_to_the_caller(store, fake, sleeps):
    fake.on("POST", "/v1/memory/store", error(429, RATE_LIMITED, retry_after="120"))
    with pytest.raises(MemoryRateLimited) as caught:
        store.store(agent_id="user-dave", content="x")
    assert (caught.value.retry_after, caught.value.code) == (120, "RATE_LIMIT_EXCEEDED")
    assert fake.attempts("POST", "/v1/memory/store") == 1
    assert sleeps == []


def test_429_that_persists_gives_up_after_the_retries(store, fake, sleeps):
    fake.on("POST", "/v1/memory/store", error(429, RATE_LIMITED, retry_after="2"))
    with pytest.raises(MemoryRateLimited) as caught:
        store.store(agent_id="user-dave", content="x")
    assert caught.value.retry_after == 2
    assert fake.attempts("POST", "/v1/memory/store") == 3
    assert sleeps == [2.0, 2.0]


def test_503_is_retried_even_for_a_store(store, fake, sleeps):
    fake.on("POST", "/v1/memory/store", error(503, UNAVAILABLE, retry_after="3"), ok(STORED))
    store.store(agent_id="user-dave", content="x")
    assert fake.attempts("POST", "/v1/memory/store") == 2
    assert sleeps == [3.0]


def test_503_that_persists_is_unavailable_with_retry_after(store, fake):
    fake.on("POST", "/v1/sessions/start", error(503, UNAVAILABLE, retry_after="1"))
    with pytest.raises(MemoryUnavailable) as caught:
        store.start_session(agent_id="user-dave")
    assert (caught.value.code, caught.value.retry_after) == ("SERVICE_UNAVAILABLE", 1)
    assert fake.attempts("POST", "/v1/sessions/start") == 3


@pytest.mark.parametrize(
    ("method", "path", "call"),
    [
        ("POST", "/v1/memory/store", lambda s: s.store(agent_id="user-dave", content="x")),
        (
            "POST",
            "/v1/memories/store/batch",
            lambda s: s.store_batch(agent_id="user-dave", memories=[{"content": "x"}]),
        ),
        ("POST", "/v1/sessions/start", lambda s: s.start_session(agent_id="user-dave")),
        ("POST", "/v1/sessions/sess_1/end", lambda s: s.end_session(session_id="sess_1")),
        ("POST", "/v1/sessions/sess_1/touch", lambda s: s.touch_session(session_id="sess_1")),
        (
            "POST",
            "/v1/memory/forget",
            lambda s: s.forget(agent_id="user-dave", memory_ids=["mem_1"]),
        ),
    ],
    ids=["store", "batch", "start", "end", "touch", "forget"],
)
def test_writes_are_never_retried_after_a_500(store, fake, sleeps, method, path, call):
    fake.on(method, path, error(500, INTERNAL), ok({}))
    with pytest.raises(MemoryUnavailable) as caught:
        call(store)
    assert caught.value.code == "INTERNAL_ERROR"
    assert fake.attempts(method, path) == 1  # it may have been written: never twice
    assert sleeps == []


@pytest.mark.parametrize(
    ("method", "path", "call", "answer"),
    [
        (
            "POST",
            "/v1/memory/recall",
            lambda s: s.recall(agent_id="user-dave", query="x"),
            {"memories": [hit(MEMORY, 0.9)]},
        ),
        (
            "POST",
            "/v1/memory/search",
            lambda s: s.search(agent_id="user-dave", query="x"),
            {"memories": [hit(MEMORY, 0.9)], "total_count": 1},
        ),
        ("GET", "/v1/sessions/sess_1", lambda s: s.get_session(session_id="sess_1"), SESSION),
        (
            "GET",
            "/v1/sessions/sess_1/memories",
            lambda s: s.session_memories(session_id="sess_1"),
            {"session": SESSION, "memories": [], "total": 0},
        ),
        ("GET", "/v1/sessions", lambda s: s.list_sessions(), {"sessions": [], "total": 0}),
        (
            "GET",
            "/v1/memory/get/mem_1",
            lambda s: s.get_memory(agent_id="user-dave", memory_id="mem_1"),
            MEMORY,
        ),
    ],
    ids=["recall", "search", "get-session", "session-memories", "list-sessions", "get-memory"],
)
def test_reads_are_retried_after_a_500(store, fake, sleeps, method, path, call, answer):
    fake.on(method, path, error(500, INTERNAL), error(502, "bad gateway"), ok(answer))
    call(store)
    assert fake.attempts(method, path) == 3
    assert len(sleeps) == 2 and all(0 < s <= remote.BACKOFF_MAX * 1.5 for s in sleeps)


def test_a_read_timeout_on_a_store_is_not_retried(store, fake):
    fake.on("POST", "/v1/memory/store", httpx.ReadTimeout("slow"), ok(STORED))
    with pytest.raises(MemoryUnavailable) as caught:
        store.store(agent_id="user-dave", content="x")
    assert caught.value.code == "TIMEOUT"
    assert "did not answer within 10 s" in caught.value.message
    assert fake.attempts("POST", "/v1/memory/store") == 1


def test_a_dropped_connection_on_a_store_is_not_retried(store, fake):
    fake.on("POST", "/v1/memory/store", httpx.RemoteProtocolError("closed"), ok(STORED))
    with pytest.raises(MemoryUnavailable):
        store.store(agent_id="user-dave", content="x")
    assert fake.attempts("POST", "/v1/memory/store") == 1


def test_a_read_timeout_on_recall_is_retried(store, fake):
    fake.on(
        "POST", "/v1/memory/recall", httpx.ReadTimeout("slow"), ok({"memories": [hit(FACT, 1)]})
    )
    assert store.recall(agent_id="user-dave", query="x")["memories"][0]["memory"] == FACT
    assert fake.attempts("POST", "/v1/memory/recall") == 2


def test_a_failed_connect_is_retried_even_for_a_store(store, fake):
    fake.on(
        "POST",
        "/v1/memory/store",
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("syn lost"),
        ok(STORED),
    )
    assert store.store(agent_id="user-dave", content="x")["memory"] == MEMORY
    assert fake.attempts("POST", "/v1/memory/store") == 3


def test_an_unreachable_server_is_unavailable(store, fake):
    fake.on("POST", "/v1/memory/store", httpx.ConnectError("[Errno 111] Connection refused"))
    with pytest.raises(MemoryUnavailable) as caught:
        store.store(agent_id="user-dave", content="x")
    assert caught.value.code == "SERVICE_UNAVAILABLE"
    assert caught.value.message == "the memory server can't be reached"
    assert "Connection refused" in caught.value.details
    assert fake.attempts("POST", "/v1/memory/store") == 3


def test_max_retries_zero_means_one_attempt(make_store, fake):
    store = make_store(max_retries=0)
    fake.on("POST", "/v1/memory/recall", error(500, INTERNAL), ok({"memories": []}))
    with pytest.raises(MemoryUnavailable):
        store.recall(agent_id="user-dave", query="x")
    assert fake.attempts("POST", "/v1/memory/recall") == 1


def test_after_an_outage_calls_fail_fast_until_the_server_answers_again(make_store, fake):
    store = make_store(fail_fast_secs=60)
    fake.on("GET", "/v1/sessions/sess_1", httpx.ConnectError("refused"))
    with pytest.raises(MemoryUnavailable):
        store.get_session(session_id="sess_1")
    tried = len(fake.requests)
    with pytest.raises(MemoryUnavailable) as caught:
        store.get_session(session_id="sess_1")
    assert len(fake.requests) == tried  # no new attempt, no new timeout to wait on
    assert 0 < caught.value.retry_after <= 60
    # A health check that succeeds closes the circuit at once.
    fake.on("GET", "/health", ok({"status": "healthy"}))
    fake.on("GET", "/v1/sessions", ok({"sessions": [], "total": 0}))
    fake.on("GET", "/v1/sessions/sess_1", ok(SESSION))
    assert store.check()["ok"] is True
    assert store.get_session(session_id="sess_1") == SESSION


def test_fail_fast_off_never_blocks(make_store, fake):
    store = make_store(fail_fast_secs=0)
    fake.on("GET", "/v1/sessions/sess_1", httpx.ConnectError("refused"))
    with pytest.raises(MemoryUnavailable):
        store.get_session(session_id="sess_1")  # three refused attempts
    fake.on("GET", "/v1/sessions/sess_1", ok(SESSION))  # back at once
    assert store.get_session(session_id="sess_1") == SESSION


def test_timeouts_come_from_settings(settings, fake):
    settings.DAKERA_CONNECT_TIMEOUT = 1.5
    settings.DAKERA_READ_TIMEOUT = 7
    seen = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return ok(SESSION)

    fake.on("GET", "/v1/sessions/sess_1", answer)
    store = RemoteStore(
        base_url=BASE, api_key=KEY, client=httpx.Client(transport=httpx.MockTransport(fake))
    )
    store.get_session(session_id="sess_1")
    assert seen == [{"connect": 1.5, "read": 7.0, "write": 7.0, "pool": 1.5}]


# ---------------------------------------------------------------- health check
def test_check_ok(store, fake):
    fake.on("GET", "/health", ok({"status": "healthy", "version": "0.12.3"}))
    fake.on("GET", "/v1/sessions", ok({"sessions": [], "total": 0}))
    report = store.check()
    assert report == {
        "ok": True,
        "mode": "remote",
        "url": BASE,
        "reachable": True,
        "healthy": True,
        "server_status": "healthy",
        "key_accepted": True,
        "reason": "",
    }
    health, probe = fake.requests
    assert "Authorization" not in health.headers  # /health needs no key
    assert probe.headers["Authorization"] == f"Bearer {KEY}"
    assert dict(probe.url.params) == {"limit": "1"}


def test_check_key_refused(store, fake):
    fake.on("GET", "/health", ok({"status": "healthy"}))
    fake.on(
        "GET",
        "/v1/sessions",
        error(401, {"error": "authentication_error", "message": "invalid API key"}),
    )
    report = store.check()
    assert (report["ok"], report["reachable"], report["key_accepted"]) == (False, True, False)
    assert report["reason"].startswith("the API key was refused (401")
    assert KEY not in json.dumps(report)


def test_check_unreachable(store, fake):
    fake.on("GET", "/health", httpx.ConnectError("refused"))
    report = store.check()
    assert (report["ok"], report["reachable"]) == (False, False)
    assert report["reason"] == "the memory server can't be reached (ConnectError)"
    assert len(fake.requests) == 1  # one try: a health check must answer quickly


def test_check_not_ready(store, fake):
    fake.on("GET", "/health", error(503, {"status": "starting"}))
    fake.on("GET", "/v1/sessions", ok({"sessions": [], "total": 0}))
    report = store.check()
    assert (report["ok"], report["healthy"], report["key_accepted"]) == (False, False, True)
    assert report["reason"] == "GET /health answered 503"


def test_check_hides_credentials_in_the_url(fake):
    store = RemoteStore(
        base_url="http://user:secret@dakera.test:3300/",
        api_key="",
        client=httpx.Client(transport=httpx.MockTransport(fake)),
    )
    fake.on("GET", "/health", ok({"status": "healthy"}))
    report = store.check()
    assert report["url"] == BASE
    assert report["reason"] == "DAKERA_API_KEY is not set"
    assert "secret" not in repr(store)


# ---------------------------------------------------------------- wiring into the console
@pytest.fixture
def remote_mode(settings, monkeypatch, store):
    """The console in remote mode, its process-wide store talking to the fake."""
    settings.DAKERA_URL = BASE
    settings.DAKERA_API_KEY = KEY
    monkeypatch.setattr(remote, "_store", store)
    return store


def test_get_store_returns_the_process_wide_remote_store(settings):
    settings.DAKERA_URL = BASE
    first = get_store()
    assert isinstance(first, RemoteStore)
    assert get_store() is first is remote.get_remote_store()
    assert first.base_url == BASE  # follows settings at call time


def test_the_pooled_client_is_one_per_process():
    remote.close_client()
    client = remote.get_client()
    assert remote.get_client() is client
    remote.close_client()
    assert remote.get_client() is not client
    remote.close_client()


def test_health_ready_in_remote_mode(client, remote_mode, fake, db):
    fake.on("GET", "/health", ok({"status": "healthy"}))
    fake.on("GET", "/v1/sessions", ok({"sessions": [], "total": 0}))
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["memory"] == {
        "mode": "remote",
        "reachable": True,
        "healthy": True,
        "key_accepted": True,
    }


def test_health_ready_is_503_when_the_key_is_refused(client, remote_mode, fake, db):
    fake.on("GET", "/health", ok({"status": "healthy"}))
    fake.on(
        "GET",
        "/v1/sessions",
        error(401, {"error": "authentication_error", "message": "invalid API key"}),
    )
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["reason"].startswith("memory server: the API key was refused")
    assert body["checks"]["memory"]["key_accepted"] is False
    assert KEY not in response.content.decode()


def test_health_ready_is_503_when_the_server_is_unreachable(client, remote_mode, fake, db):
    fake.on("GET", "/health", httpx.ConnectError("refused"))
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["reason"] == "memory server: the memory server can't be reached " + (
        "(ConnectError)"
    )
    assert BASE not in response.content.decode()  # no internal address on a public page


def test_check_memory_command(remote_mode, fake, capsys):
    fake.on("GET", "/health", ok({"status": "healthy"}))
    fake.on("GET", "/v1/sessions", ok({"sessions": [], "total": 0}))
    call_command("check_memory")
    out = capsys.readouterr().out
    assert f"remote Dakera at {BASE}" in out and "API key accepted: yes" in out


def test_check_memory_command_fails_when_the_key_is_refused(remote_mode, fake, capsys):
    fake.on("GET", "/health", ok({"status": "healthy"}))
    fake.on("GET", "/v1/sessions", error(401, {"error": "authentication_error", "message": "no"}))
    with pytest.raises(CommandError, match="the API key was refused") as caught:
        call_command("check_memory")
    assert caught.value.returncode == 1
    assert "API key accepted: no" in capsys.readouterr().out


def test_check_memory_command_in_embedded_mode(settings, capsys, db):
    settings.DAKERA_URL = ""
    call_command("check_memory")
    assert "embedded" in capsys.readouterr().out


# ---------------------------------------------------------------- an ended session (outbox)
@pytest.fixture
def accepted_hop(db, teams, make_agent) -> Handoff:
    from handoffs.lifecycle.intake import handoff_intake

    agent = make_agent("alice", teams=[teams["billing-specialist"]])
    handoff = handoff_intake(
        customer="user-dave",
        source_session_id=SESSION["id"],
        from_agent="tier1-bot",
        to_agent="billing-specialist",
        summary="Customer charged twice for March.",
    ).handoff
    Handoff.objects.filter(pk=handoff.pk).update(
        status=Status.ACCEPTED, accepted_by=agent, human_session_id="sess_idle_ended"
    )
    handoff.refresh_from_db()
    return handoff


def queue_store(handoff: Handoff, content: str) -> MemoryWrite:
    return MemoryWrite.objects.create(
        conversation=handoff.conversation,
        handoff=handoff,
        operation="store",
        payload={"agent_id": handoff.customer, "content": content, "tags": ["user", "console"]},
    )


def test_a_store_answering_ended_moves_later_writes_to_a_fresh_session(
    remote_mode, fake, accepted_hop
):
    fresh = {**SESSION, "id": "sess_fresh00000000"}
    fake.on(
        "POST",
        "/v1/memory/store",
        ok({"memory": {**MEMORY, "id": "mem_a"}, "session_state": "ended"}),
        ok({"memory": {**MEMORY, "id": "mem_b"}, "session_state": "active"}),
    )
    fake.on("POST", "/v1/sessions/start", ok({"session": fresh}))
    first = queue_store(accepted_hop, "first, into the session the server ended")
    second = queue_store(accepted_hop, "second, into a fresh session")
    assert outbox.apply_memory_writes() == 2

    stores = [sent(r) for r in fake.requests if r.url.path == "/v1/memory/store"]
    assert [s["session_id"] for s in stores] == ["sess_idle_ended", "sess_fresh00000000"]
    assert [s["content"] for s in stores] == [
        "first, into the session the server ended",
        "second, into a fresh session",
    ]
    start = next(r for r in fake.requests if r.url.path == "/v1/sessions/start")
    assert sent(start)["agent_id"] == "user-dave"
    accepted_hop.refresh_from_db()
    assert accepted_hop.human_session_id == "sess_fresh00000000"
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.result_id) == (OutboxStatus.DONE, "mem_a")
    assert (second.status, second.result_id) == (OutboxStatus.DONE, "mem_b")


def test_a_store_not_retried_after_500_stays_queued_for_the_outbox(remote_mode, fake, accepted_hop):
    fake.on("POST", "/v1/memory/store", error(500, INTERNAL))
    write = queue_store(accepted_hop, "hello")
    assert outbox.apply_memory_writes() == 0
    write.refresh_from_db()
    assert write.status == OutboxStatus.PENDING and write.attempts == 1
    assert write.last_error.startswith("INTERNAL_ERROR: internal error")
    assert fake.attempts("POST", "/v1/memory/store") == 1


def test_card_hides_derived_memories_and_auto_summaries(
    remote_mode, fake, accepted_hop, client, make_agent, teams
):
    from handoffs.desk import selectors

    fake.on(
        "POST",
        "/v1/memory/search",
        ok(
            {
                "memories": [
                    hit(DERIVED, 0.99),
                    hit(FACT, 0.9),
                    hit(AUTO_SUMMARY, 0.8),
                    hit(DERIVED_BY_METADATA, 0.7),
                ],
                "total_count": 4,
            }
        ),
    )
    fake.on(
        "GET",
        f"/v1/sessions/{SESSION['id']}/memories",
        ok({"session": ENDED_SESSION, "memories": [MEMORY, DERIVED, AUTO_SUMMARY], "total": 3}),
    )
    card = selectors.handoff_card(handoff=accepted_hop)
    assert card.context_error == ""
    assert [m["id"] for m in card.facts] == [FACT["id"]]
    assert card.recalled == []
    assert [m["id"] for m in card.bot_transcript] == [MEMORY["id"]]
    assert not any(r.url.path == "/v1/memory/recall" for r in fake.requests)  # browse = search


def test_card_says_context_unavailable_retrying(remote_mode, fake, accepted_hop):
    from handoffs.desk import selectors

    fake.on("POST", "/v1/memory/search", httpx.ConnectError("refused"))
    card = selectors.handoff_card(handoff=accepted_hop)
    assert card.context_error == (
        "context unavailable, retrying (the memory server can't be reached)"
    )
