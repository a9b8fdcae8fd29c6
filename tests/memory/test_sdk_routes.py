"""Issue 20's calls, made by the real clients against a live Daphne serving the console.

- Every call of the Python SDK's own integration test file (``dakera-py``
  ``tests/test_integration.py``) outside the knowledge graph and admin routes, through the
  real ``dakera`` SDK (0.14.1), with assertions on what came back and on the database.
- The ``autogen-dakera`` and ``crewai-dakera`` packages (0.3.0, installed without their
  framework extras: their memory classes need only ``dakera``).
- The knowledge-graph and admin calls: JSON 501 naming remote mode.
"""

from __future__ import annotations

import json

import httpx
import pytest
from dakera import (
    AuthenticationError,
    BatchForgetRequest,
    BatchMemoryFilter,
    BatchRecallRequest,
    DakeraClient,
    DakeraError,
    NotFoundError,
)
from dakera.models import TextDocument

from handoffs.memory import lexical
from handoffs.memory.models import Memory, MemorySession, TextNamespace
from handoffs.models import Handoff

AGENT = "integ-agent"


def sdk(url: str, key: str) -> DakeraClient:
    return DakeraClient(url, api_key=key, max_retries=1, timeout=10)


@pytest.fixture
def client(live_server_url, bot_key):
    c = sdk(live_server_url, bot_key)
    yield c
    c.close()


@pytest.mark.pg
def test_memory_calls_of_the_sdk_integration_file(client):
    first = client.store_memory(
        agent_id=AGENT,
        content="The user prefers dark mode interfaces",
        importance=0.8,
        tags=["preference", "ui"],
    )
    second = client.store_memory(
        agent_id=AGENT,
        content="Python is the user's primary programming language",
        importance=0.9,
        tags=["preference", "coding"],
    )
    assert client.recall(AGENT, "programming language").memories[0].id == second["id"]

    batch = client.batch_recall(BatchRecallRequest(agent_id=AGENT, min_importance=0.85))
    assert [m.id for m in batch.memories] == [second["id"]]
    assert (batch.total, batch.filtered, batch.truncated) == (2, 1, False)

    updated = client.update_importance(AGENT, [first["id"]], 0.95)
    assert updated["importance"] == 0.95
    assert Memory.objects.get(uid=first["id"]).importance == 0.95

    assert client.get_memory(AGENT, first["id"])["content"].startswith("The user prefers")
    with pytest.raises(NotFoundError):
        client.get_memory(AGENT, "nonexistent-memory-id")

    client.forget(AGENT, first["id"])
    assert not Memory.objects.filter(uid=first["id"]).exists()


@pytest.mark.pg
def test_update_feedback_and_batch_forget(client):
    stored = client.store_memory(AGENT, "Customer wants invoices by email", importance=0.6)
    changed = client.update_memory(
        AGENT, stored["id"], content="Customer wants invoices by post", tags=["billing"]
    )
    assert changed["content"] == "Customer wants invoices by post"
    assert changed["memory"]["tags"] == ["billing"]
    # The text index follows the new content.
    assert [m.id for m in client.recall(AGENT, "post invoices").memories] == [stored["id"]]
    assert lexical.lexical_candidates(agent_id=AGENT, terms=["email"], base_sql=None) == []

    up = client.memory_feedback(AGENT, stored["id"], "upvote")
    assert up["new_importance"] == pytest.approx(0.69)
    down = client.memory_feedback(AGENT, stored["id"], "negative")
    assert down["new_importance"] == pytest.approx(0.5865)
    flag = client.memory_feedback(AGENT, stored["id"], "flag")
    assert flag["new_importance"] == pytest.approx(0.5865)
    assert Memory.objects.get(uid=stored["id"]).flagged_at is not None

    client.store_memory(AGENT, "temporary note", tags=["scratch"], importance=0.1)
    gone = client.batch_forget(
        BatchForgetRequest(agent_id=AGENT, filter=BatchMemoryFilter(tags=["scratch"]))
    )
    assert gone.deleted_count == 1
    assert Memory.objects.filter(agent_id=AGENT).count() == 1


@pytest.mark.pg
def test_consolidate_merges_near_exact_duplicates_only(client):
    ids = [
        client.store_memory(AGENT, text, importance=imp, tags=[tag])["id"]
        for text, imp, tag in [
            ("The customer's plan is Pro.", 0.4, "a"),
            ("the customer s plan is   pro", 0.7, "b"),
            ("The customer's plan is Basic.", 0.5, "c"),
        ]
    ]
    result = client.consolidate(AGENT)
    assert result["memories_removed"] == 1
    assert result["consolidated_memory"]["id"] == ids[1]  # the more important one stays
    assert sorted(result["consolidated_memory"]["tags"]) == ["a", "b"]
    assert result["log"] == [
        {"kept": ids[1], "removed": [ids[0]], "reason": "exact or near-exact duplicate"}
    ]
    assert set(Memory.objects.filter(agent_id=AGENT).values_list("uid", flat=True)) == {
        ids[1],
        ids[2],
    }
    # Nothing left to merge: a second run reports so and changes nothing.
    again = client.consolidate(AGENT)
    assert (again["memories_removed"], again["consolidated_memory"]) == (0, None)


@pytest.mark.pg
def test_consolidate_never_removes_a_handoff_memory(client, teams):
    summary = "Customer ACC-1 was charged twice; needs a refund."
    meta = {"type": "handoff", "from_agent": "tier1-bot", "to_agent": "billing-specialist"}
    handoff = client.store_memory(AGENT, summary, importance=0.5, metadata=meta)
    copy = client.store_memory(AGENT, summary.upper(), importance=0.9)
    result = client.consolidate(AGENT)
    assert result["log"][0]["kept"] == handoff["id"]
    assert result["log"][0]["removed"] == [copy["id"]]
    assert Memory.objects.get(uid=handoff["id"]).importance == 0.9
    assert Handoff.objects.get().memory_id == handoff["id"]


@pytest.mark.pg
def test_agents_wake_up_and_export(client):
    session = client.start_session(AGENT)
    client.store_memory(AGENT, "old but vital", importance=1.0, session_id=session["id"])
    client.store_memory(AGENT, "fresh trivia", importance=0.1, memory_type="semantic")
    agents = {a["agent_id"]: a for a in client.list_agents()}
    assert agents[AGENT] == {
        "agent_id": AGENT,
        "memory_count": 2,
        "session_count": 1,
        "active_sessions": 1,
    }
    stats = client.agent_stats(AGENT)
    assert stats["memories_by_type"] == {"episodic": 1, "semantic": 1}
    assert stats["avg_importance"] == pytest.approx(0.55)
    listed = client.agent_memories(AGENT, limit=1, content_preview_chars=5)
    assert [m["content"] for m in listed] == ["fresh"]
    assert listed[0]["content_truncated"] is True
    assert [s["id"] for s in client.agent_sessions(AGENT, active_only=True)] == [session["id"]]

    wake = client.wake_up(AGENT, top_n=1)
    assert [m.content for m in wake.memories] == ["old but vital"]
    assert wake.total_available == 2

    for fmt in ("jsonl", "csv", "mem0", "zep"):
        exported = client.export_memories(format=fmt, agent_id=AGENT)
        assert exported.count == 2, fmt
    rows = client.export_memories(format="jsonl", agent_id=AGENT).data
    assert [r["content"] for r in rows] == ["old but vital", "fresh trivia"]


@pytest.mark.pg
def test_text_namespaces_of_the_sdk_integration_file(client):
    created = client.create_namespace("integ-ns", dimensions=1024)
    assert created.name == "integ-ns"
    assert "integ-ns" in [n.name for n in client.list_namespaces()]
    assert client.get_namespace("integ-ns").dimensions == 1024
    configured = client.configure_namespace("integ-ns", dimension=1024)
    assert configured.created is False

    upserted = client.upsert_text(
        "integ-ns",
        documents=[
            TextDocument(id="doc-1", text="Machine learning transforms data into insights"),
            TextDocument(
                id="doc-2",
                text="Natural language processing understands text",
                metadata={"topic": "nlp"},
            ),
            TextDocument(id="doc-3", text="Deep learning uses neural networks"),
        ],
    )
    assert upserted.upserted_count == 3
    top = client.query_text("integ-ns", "AI neural networks", top_k=3).results
    assert top[0].id == "doc-3"
    assert top[0].text == "Deep learning uses neural networks"
    assert 0 < top[0].score <= 1
    filtered = client.query_text("integ-ns", "language text", filter={"topic": {"$eq": "nlp"}})
    assert [r.id for r in filtered.results] == ["doc-2"]
    assert [r.id for r in client.hybrid_search("integ-ns", query="machine learning data")][:1] == [
        "doc-1"
    ]
    assert client.fulltext_search("integ-ns", query="neural networks")[0].id == "doc-3"
    batch = client.batch_query_text(
        "integ-ns", queries=["machine learning", "deep learning"], top_k=2
    )
    assert [r[0].id for r in batch.results] == ["doc-1", "doc-3"]
    # Upsert replaces by id.
    client.upsert_text("integ-ns", documents=[TextDocument(id="doc-1", text="Bananas are yellow")])
    assert client.fulltext_search("integ-ns", query="bananas")[0].id == "doc-1"
    assert client.get_namespace("integ-ns").vector_count == 3

    stats = client.fulltext_stats("integ-ns")
    assert stats.document_count == 3
    assert stats.unique_terms > 5
    client.index_documents("integ-ns", documents=[{"id": "del-1", "text": "to be deleted"}])
    assert client.fulltext_delete("integ-ns", ["del-1", "nope"])["deleted_count"] == 1

    # Documents are no agent's memories.
    assert all(not a["agent_id"].startswith("_dakera") for a in client.list_agents())
    client.delete_namespace("integ-ns")
    assert "integ-ns" not in [n.name for n in client.list_namespaces()]
    assert not Memory.objects.filter(agent_id__startswith="_dakera_ns_").exists()
    assert not TextNamespace.objects.exists()
    with pytest.raises(DakeraError):
        client.get_namespace("nonexistent-ns-xyz-99999")


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.memory_graph("mem_x", depth=1),
        lambda c: c.extract_entities(text="OpenAI released GPT-4 in San Francisco"),
        lambda c: c.autopilot_status(),
        lambda c: c.decay_config(),
        lambda c: c.decay_stats(),
        lambda c: c.knowledge_graph("integ-agent", memory_id="mem_x"),
    ],
    ids=["memory_graph", "extract_entities", "autopilot", "decay_config", "decay_stats", "kg"],
)
def test_knowledge_and_admin_calls_answer_json_501(client, call):
    with pytest.raises(DakeraError) as raised:
        call(client)
    assert raised.value.status_code == 501
    assert "DAKERA_URL" in str(raised.value)


def test_a_bad_key_is_401_json_before_anything_else(live_server_url):
    bad = sdk(live_server_url, "invalid-key-xxx")
    for call in (
        bad.list_namespaces,
        bad.autopilot_status,
        lambda: bad.update_memory("a", "m", content="x"),
    ):
        with pytest.raises(AuthenticationError):
            call()
    for method, path in [("POST", "/v1/nope"), ("PUT", "/v1/memory/store"), ("DELETE", "/v1/x")]:
        response = httpx.request(
            method, live_server_url + path, headers={"Authorization": "Bearer x"}
        )
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"] == "authentication_error"


def test_unknown_routes_and_methods_answer_json_never_html(live_server_url, bot_key):
    headers = {"Authorization": f"Bearer {bot_key}"}
    for method, path, status in [
        ("POST", "/v1/namespaces/x/vectors", 404),  # vector upsert: not served
        ("DELETE", "/v1/agents/x", 404),
        ("PUT", "/v1/memory/store", 405),
        ("PATCH", "/v1/memory/recall", 405),
    ]:
        response = httpx.request(method, live_server_url + path, headers=headers, content=b"{}")
        assert response.status_code == status, (method, path)
        assert response.headers["content-type"] == "application/json"
        assert "CSRF" not in response.text
        assert set(response.json()) >= {"error", "code"}


@pytest.mark.pg
def test_autogen_and_crewai_packages(live_server_url, bot_key):
    from autogen_dakera import DakeraMemory, DakeraNamespaceManager, DakeraSessionManager
    from crewai_dakera import DakeraStorage

    memory = DakeraMemory(live_server_url, agent_id="autogen-bot", api_key=bot_key)
    stored = memory.add("The deploy runs every Friday", tags=["ops"])
    memory_id = stored["id"]
    memory.add("the deploy runs every friday!")
    assert memory.query("deploy friday")
    memory.update_importance(memory_id, 0.9)
    assert memory.consolidate()["memories_removed"] == 1
    assert memory.stats()["total_memories"] == 1
    memory.forget(memory_id)
    assert not Memory.objects.filter(agent_id="autogen-bot").exists()

    sessions = DakeraSessionManager(live_server_url, agent_id="autogen-bot", api_key=bot_key)
    sid = sessions.start({"channel": "chat"})
    assert sessions.get(sid)["id"] == sid
    sessions.end()
    assert MemorySession.objects.get(pk=sid).ended_at is not None

    spaces = DakeraNamespaceManager(live_server_url, api_key=bot_key)
    spaces.create("autogen-docs", dimensions=384)
    assert "autogen-docs" in [n["name"] for n in spaces.list()]
    spaces.delete("autogen-docs")

    storage = DakeraStorage(live_server_url, agent_id="crew-bot", api_key=bot_key)
    saved = storage.save("Crew prefers short answers", tags=["style"])
    assert storage.search("short answers")
    storage.update_importance(saved["id"], 0.2)
    assert Memory.objects.get(uid=saved["id"]).importance == 0.2
    assert storage.stats()["total_memories"] == 1
    assert storage.consolidate()["memories_removed"] == 0


def test_update_without_agent_id_as_the_js_sdk_sends_it(live_server_url, bot_key, client):
    """JS ``updateMemory`` sends neither a query nor a body ``agent_id``."""
    stored = client.store_memory(AGENT, "JS bots update too", importance=0.3)
    response = httpx.put(
        f"{live_server_url}/v1/memory/update/{stored['id']}",
        headers={"Authorization": f"Bearer {bot_key}", "Content-Type": "application/json"},
        content=json.dumps({"content": "JS bots update memories", "memory_type": "semantic"}),
    )
    assert response.status_code == 200
    assert response.json()["memory"]["memory_type"] == "semantic"
    assert Memory.objects.get(uid=stored["id"]).content == "JS bots update memories"
