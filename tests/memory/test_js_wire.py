"""The JavaScript SDK's calls of issue 20, recorded from its source.

``@dakera-ai/dakera`` (github.com/Dakera-AI/dakera-js, ``src/client.ts`` at commit
4862493, package 0.11.106): each case is the method, path and JSON body that client
builds (``request(method, path, body)`` sends ``JSON.stringify(body)``), and the fields
its types (``src/types.ts``) read from the answer. Also the LlamaIndex and Strands
packages' calls that reach routes of their own (recorded from their 0.3.0 wheels).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from handoffs.api.keys import bot_create
from handoffs.memory.embedded import EmbeddedStore
from handoffs.memory.models import Memory

pytestmark = pytest.mark.pg

AGENT = "js-agent"


@pytest.fixture
def js(client, db):
    _, key = bot_create(name="js-bot")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}", "HTTP_USER_AGENT": "dakera-js/0.11.106"}

    def call(method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body else b""
        response = client.generic(
            method, path, data=data, content_type="application/json", **headers
        )
        assert response.status_code in (200, 201), (method, path, response.content[:300])
        if response["Content-Type"] == "application/json":
            return response.json()
        return response.content.decode()

    return call


@pytest.fixture
def stored() -> list[str]:
    store = EmbeddedStore()
    session = store.start_session(agent_id=AGENT)["session"]["id"]
    return [
        store.store(agent_id=AGENT, content=text, importance=imp, session_id=session, tags=tags)[
            "memory"
        ]["id"]
        for text, imp, tags in [
            ("Customer prefers phone calls", 0.4, ["pref"]),
            ("Refund issued for invoice 42", 0.9, ["billing"]),
        ]
    ]


def test_update_memory(js, stored):
    # updateMemory(_agentId, memoryId, request): PUT, body = request, no agent_id anywhere.
    body = js("PUT", f"/v1/memory/update/{stored[0]}", {"content": "Customer prefers email"})
    assert body["memory"]["id"] == stored[0]  # StoreMemoryResponse.memory
    assert body["memory"]["content"] == "Customer prefers email"
    assert isinstance(body["embedding_time_ms"], int)


def test_update_importance(js, stored):
    # updateImportance: one POST per id with {agent_id, memory_id, importance}; reads status.
    for memory_id in stored:
        body = js(
            "POST",
            "/v1/memory/importance",
            {"agent_id": AGENT, "memory_id": memory_id, "importance": 0.75},
        )
        assert isinstance(body["status"], str)
    assert set(Memory.objects.values_list("importance", flat=True)) == {0.75}


def test_wake_up_context(js, stored):
    # getWakeUpContext(agentId, {top_n, min_importance}) -> WakeUpResponse
    body = js("GET", f"/v1/agents/{AGENT}/wake-up?top_n=1&min_importance=0.5")
    assert body["agent_id"] == AGENT
    assert [m["id"] for m in body["memories"]] == [stored[1]]
    assert body["total_available"] == 1


def test_batch_recall_and_forget(js, stored):
    body = js(
        "POST",
        "/v1/memories/recall/batch",
        {"agent_id": AGENT, "filter": {"tags": ["billing"], "min_importance": 0.7}, "limit": 50},
    )
    assert [m["id"] for m in body["memories"]] == [stored[1]]
    assert (body["total"], body["filtered"]) == (2, 1)
    gone = js(
        "DELETE",
        "/v1/memories/forget/batch",
        {"agent_id": AGENT, "filter": {"created_before": 4_000_000_000, "tags": ["pref"]}},
    )
    assert gone["deleted_count"] == 1
    assert list(Memory.objects.values_list("uid", flat=True)) == [stored[1]]


def test_agents(js, stored):
    agents = js("GET", "/v1/agents")  # AgentSummary[]
    assert agents == [
        {"agent_id": AGENT, "memory_count": 2, "session_count": 1, "active_sessions": 1}
    ]
    stats = js("GET", f"/v1/agents/{AGENT}/stats")  # AgentStats
    assert stats["total_memories"] == 2
    assert stats["memories_by_type"] == {"episodic": 2}
    assert (stats["total_sessions"], stats["active_sessions"]) == (1, 1)
    assert stats["oldest_memory_at"].endswith("Z")
    memories = js("GET", f"/v1/agents/{AGENT}/memories?memory_type=episodic&limit=1")
    assert [m["id"] for m in memories] == [stored[1]]  # newest first
    sessions = js("GET", f"/v1/agents/{AGENT}/sessions?active_only=true&limit=5")
    assert [s["agent_id"] for s in sessions] == [AGENT]


def test_consolidate_and_feedback(js, stored):
    # consolidate(agentId, request?) -> ConsolidateResponse
    body = js("POST", "/v1/memory/consolidate", {"agent_id": AGENT, "threshold": 0.9})
    assert body["memories_removed"] == 0
    assert body["source_memory_ids"] == []
    # memoryFeedback(agentId, {memory_id, feedback, relevance_score}): status, updated_importance
    body = js(
        "POST",
        "/v1/memory/feedback",
        {"memory_id": stored[0], "feedback": "positive", "relevance_score": 0.9, "agent_id": AGENT},
    )
    assert body["status"] == "ok"
    assert body["updated_importance"] == pytest.approx(0.46)


def test_export(js, stored):
    # exportMemories(format, agentId): GET with a query string; the JSONL text comes back.
    text = js("GET", f"/v1/export?format=jsonl&agent_id={AGENT}")
    assert [json.loads(line)["id"] for line in text.splitlines()] == stored


def test_namespaces_and_text(js):
    # createNamespace(ns, {dimensions}) is a PUT; listNamespaces reads {namespaces: string[]}
    created = js("PUT", "/v1/namespaces/js-docs", {"dimension": 384})
    assert created == {
        "namespace": "js-docs",
        "dimension": 384,
        "distance": "cosine",
        "created": True,
    }
    assert "js-docs" in js("GET", "/v1/namespaces")["namespaces"]
    assert js("GET", "/v1/namespaces/js-docs")["namespace"] == "js-docs"
    # upsertText maps {id, text, metadata, ttlSeconds} -> ttl_seconds (undefined keys dropped)
    upserted = js(
        "POST",
        "/v1/namespaces/js-docs/upsert-text",
        {
            "documents": [
                {"id": "a", "text": "Routing rules send billing to specialists"},
                {"id": "b", "text": "Escalate angry customers", "metadata": {"team": "t2"}},
            ]
        },
    )
    assert upserted["upserted_count"] == 2
    # queryText(ns, text, {topK}) -> {results: [{id, score, text}]}
    results = js(
        "POST",
        "/v1/namespaces/js-docs/query-text",
        {"text": "billing routing", "top_k": 10, "include_text": True, "include_vectors": False},
    )["results"]
    assert results[0]["id"] == "a"
    assert results[0]["text"].startswith("Routing")
    batch = js(
        "POST",
        "/v1/namespaces/js-docs/batch-query-text",
        {"queries": ["angry customers"], "top_k": 10, "include_vectors": False},
    )
    assert batch["results"][0][0]["id"] == "b"
    hybrid = js(
        "POST",
        "/v1/namespaces/js-docs/hybrid",
        {"text": "escalate", "top_k": 10, "vector_weight": 0.5},
    )
    assert hybrid["results"][0]["id"] == "b"
    full = js("POST", "/v1/namespaces/js-docs/fulltext/search", {"query": "escalate", "top_k": 10})
    assert full["results"][0]["content"] == "Escalate angry customers"
    indexed = js(
        "POST",
        "/v1/namespaces/js-docs/fulltext/index",
        {"documents": [{"id": "c", "text": "x y z"}]},
    )
    assert indexed["indexed_count"] == 1
    js("DELETE", "/v1/namespaces/js-docs")
    assert "js-docs" not in js("GET", "/v1/namespaces")["namespaces"]


def test_llamaindex_delete_by_ref_doc_id(js):
    """``DakeraIndexStore.delete(ref_doc_id)`` -> ``client.delete(ns, filter=...)``, the
    SDK's ``POST /v1/namespaces/{ns}/vectors/bulk-delete``."""
    js(
        "POST",
        "/v1/namespaces/llama/upsert-text",
        {
            "documents": [
                {"id": "n1", "text": "node one", "metadata": {"ref_doc_id": "doc-a"}},
                {"id": "n2", "text": "node two", "metadata": {"ref_doc_id": "doc-a"}},
                {"id": "n3", "text": "node three", "metadata": {"ref_doc_id": "doc-b"}},
            ]
        },
    )
    body = js(
        "POST",
        "/v1/namespaces/llama/vectors/bulk-delete",
        {"filter": {"ref_doc_id": {"$eq": "doc-a"}}},
    )
    assert body["deleted_count"] == 2
    assert [
        r["id"] for r in js("POST", "/v1/namespaces/llama/query-text", {"text": "node"})["results"]
    ] == ["n3"]


def test_strands_update_action(js, stored):
    """Strands' ``update`` tool action: ``update_memory(agent_id=, memory_id=, content=,
    metadata=, memory_type=)`` -> PUT with ``?agent_id=`` and only the given fields."""
    body = js(
        "PUT",
        f"/v1/memory/update/{stored[1]}?agent_id={AGENT}",
        {"metadata": {"source": "strands"}},
    )
    assert body["id"] == stored[1]
    assert body["metadata"] == {"source": "strands"}
    assert body["content"] == "Refund issued for invoice 42"
