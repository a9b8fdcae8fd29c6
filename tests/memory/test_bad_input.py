"""A table of bad inputs: each gets the documented status and body, and leaves the
database unchanged."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connection

from handoffs.api.keys import bot_create, bot_revoke
from handoffs.memory.embedded import EmbeddedStore
from handoffs.memory.models import Memory, MemorySession, TextNamespace
from handoffs.models import Event, Handoff, IdempotencyRecord

pytestmark = pytest.mark.pg

WATCHED = [Memory, MemorySession, TextNamespace, Handoff, Event, IdempotencyRecord]
ERROR_KEYS = {"error", "code", "details", "resource"}
AUTH_KEYS = {"error", "message", "code"}


@dataclass
class Ctx:
    key: str
    revoked_key: str
    session: str
    memory: str
    other_session: str
    ended_session: str


@pytest.fixture
def ctx(db, teams) -> Ctx:
    _, key = bot_create(name="tier1-bot")
    old_bot, revoked_key = bot_create(name="old-bot")
    bot_revoke(bot=old_bot)
    store = EmbeddedStore()
    session = store.start_session(agent_id="user-dave")["session"]["id"]
    memory = store.store(
        agent_id="user-dave", content="User reports a billing discrepancy", session_id=session
    )["memory"]["id"]
    other = store.start_session(agent_id="user-erin")["session"]["id"]
    ended = store.start_session(agent_id="user-dave")["session"]["id"]
    store.end_session(session_id=ended, summary="done")
    TextNamespace.objects.create(name="kb")
    return Ctx(key, revoked_key, session, memory, other, ended)


def snapshot() -> dict[str, Any]:
    """Every row of the watched tables (and the text index), to compare before/after."""
    state: dict[str, Any] = {
        model.__name__: list(model.objects.order_by("pk").values()) for model in WATCHED
    }
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM memory_fts")
            state["memory_fts"] = cursor.fetchone()[0]
    return state


def good(c: Ctx) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {c.key}"}


Body = dict | list | str | bytes | Callable[[Ctx], Any] | None


@dataclass
class Case:
    id: str
    method: str
    path: str
    body: Body
    status: int
    code: str
    resource: str | None = None
    headers: Callable[[Ctx], dict[str, str]] = good
    query: dict[str, str] = field(default_factory=dict)


def send(client, case: Case, c: Ctx):
    data = case.body(c) if callable(case.body) else case.body
    if isinstance(data, dict | list):
        data = json.dumps(data)
    if data is None:
        data = b""
    if isinstance(data, str):
        data = data.encode()
    path = case.path.format(session=c.session, memory=c.memory)
    if case.query:
        path += "?" + "&".join(f"{k}={v}" for k, v in case.query.items())
    return client.generic(
        case.method, path, data=data, content_type="application/json", **case.headers(c)
    )


def store_body(**overrides: Any) -> dict[str, Any]:
    return {"agent_id": "user-dave", "content": "The customer called again.", **overrides}


def intake_body(**overrides: Any) -> dict[str, Any]:
    return {
        "customer": "user-dave",
        "source_session_id": "sess_abc",
        "from_agent": "tier1-bot",
        "to_agent": "billing-specialist",
        "summary": "Customer was charged twice and wants a refund.",
        **overrides,
    }


def recall_body(**overrides: Any) -> dict[str, Any]:
    return {"agent_id": "user-dave", "query": "billing", **overrides}


BAD = "INVALID_REQUEST"
TOO_LARGE = "PAYLOAD_TOO_LARGE"
NOT_FOUND = "NOT_FOUND"
STORE = ("POST", "/v1/memory/store")
RECALL = ("POST", "/v1/memory/recall")
SEARCH = ("POST", "/v1/memory/search")
START = ("POST", "/v1/sessions/start")
BATCH = ("POST", "/v1/memories/store/batch")
FORGET = ("POST", "/v1/memory/forget")
INTAKE = ("POST", "/api/v1/handoffs")
MANY_KEYS = {f"k{i}": i for i in range(101)}
BIG = "x" * 100_001

CASES = [
    # -- malformed JSON
    Case("store-malformed", *STORE, b'{"agent_id": "user-dave", "content": ', 400, BAD),
    Case("store-not-utf8", *STORE, b"\xff\xfe{}", 400, BAD),
    Case("store-array", *STORE, "[1, 2]", 400, BAD),
    Case("store-null", *STORE, "null", 400, BAD),
    Case("store-empty-body", *STORE, None, 400, BAD),
    Case("recall-malformed", *RECALL, "{query:", 400, BAD),
    Case("start-malformed", *START, "{'agent_id': 'x'}", 400, BAD),
    Case("batch-malformed", *BATCH, '{"memories": [}', 400, BAD),
    Case("forget-malformed", *FORGET, "{", 400, BAD),
    Case("end-malformed", "POST", "/v1/sessions/{session}/end", "{", 400, BAD),
    Case("intake-malformed", *INTAKE, '{"customer": "user-dave",', 400, BAD),
    # -- wrong types and values
    Case("content-int", *STORE, store_body(content=42), 400, BAD),
    Case("content-missing", *STORE, {"agent_id": "user-dave"}, 400, BAD),
    Case("content-blank", *STORE, store_body(content="   "), 400, BAD),
    Case("metadata-list", *STORE, store_body(metadata=["type", "issue"]), 400, BAD),
    Case("metadata-string", *STORE, store_body(metadata="issue"), 400, BAD),
    Case("importance-string", *STORE, store_body(importance="high"), 400, BAD),
    Case("importance-above-1", *STORE, store_body(importance=1.5), 400, BAD),
    Case("importance-bool", *STORE, store_body(importance=True), 400, BAD),
    Case("tags-string", *STORE, store_body(tags="billing"), 400, BAD),
    Case("tags-ints", *STORE, store_body(tags=[1, 2]), 400, BAD),
    Case("memory-type-unknown", *STORE, store_body(memory_type="issue"), 400, BAD),
    Case("ttl-string", *STORE, store_body(ttl_seconds="60"), 400, BAD),
    Case("ttl-zero", *STORE, store_body(ttl_seconds=0), 400, BAD),
    Case("expires-at-string", *STORE, store_body(expires_at="tomorrow"), 400, BAD),
    Case("session-id-int", *STORE, store_body(session_id=123), 400, BAD),
    Case("top-k-zero", *RECALL, recall_body(top_k=0), 400, BAD),
    Case("top-k-huge", *RECALL, recall_body(top_k=10_001), 400, BAD),
    Case("top-k-string", *RECALL, recall_body(top_k="3"), 400, BAD),
    Case("top-k-float", *RECALL, recall_body(top_k=2.5), 400, BAD),
    Case("search-top-k-zero", *SEARCH, recall_body(top_k=0), 400, BAD),
    Case("search-top-k-huge", *SEARCH, recall_body(top_k=1_000_000), 400, BAD),
    Case("query-missing", *RECALL, {"agent_id": "user-dave"}, 400, BAD),
    Case("query-int", *SEARCH, recall_body(query=7), 400, BAD),
    Case("since-not-iso", *RECALL, recall_body(since="yesterday"), 400, BAD),
    Case("until-int", *RECALL, recall_body(until=1700000000), 400, BAD),
    Case("min-importance-string", *RECALL, recall_body(min_importance="x"), 400, BAD),
    Case("recall-tags-string", *RECALL, recall_body(tags="billing"), 400, BAD),
    Case("recall-memory-type", *RECALL, recall_body(memory_type="issue"), 400, BAD),
    Case("start-metadata-list", *START, {"agent_id": "user-dave", "metadata": []}, 400, BAD),
    Case("start-idle-negative", *START, {"agent_id": "a", "idle_timeout_secs": -1}, 400, BAD),
    Case("start-idle-huge", *START, {"agent_id": "a", "idle_timeout_secs": 2592001}, 400, BAD),
    Case("end-summary-int", "POST", "/v1/sessions/{session}/end", {"summary": 42}, 400, BAD),
    Case("end-summary-huge", "POST", "/v1/sessions/{session}/end", {"summary": BIG}, 400, BAD),
    Case("forget-ids-string", *FORGET, {"agent_id": "user-dave", "memory_ids": "m"}, 400, BAD),
    Case("batch-not-list", *BATCH, {"agent_id": "user-dave", "memories": {}}, 400, BAD),
    Case("batch-empty", *BATCH, {"agent_id": "user-dave", "memories": []}, 400, BAD),
    Case("batch-item-string", *BATCH, {"agent_id": "user-dave", "memories": ["x"]}, 400, BAD),
    Case(
        "batch-1001",
        *BATCH,
        {"agent_id": "user-dave", "memories": [{"content": "x"}] * 1001},
        400,
        BAD,
    ),
    Case(
        "batch-bad-second-item",
        *BATCH,
        {"agent_id": "user-dave", "memories": [{"content": "fine"}, {"content": 5}]},
        400,
        BAD,
    ),
    Case("list-limit-word", "GET", "/v1/sessions", None, 400, BAD, query={"limit": "ten"}),
    Case("list-limit-huge", "GET", "/v1/sessions", None, 400, BAD, query={"limit": "1001"}),
    Case("list-active-maybe", "GET", "/v1/sessions", None, 400, BAD, query={"active_only": "x"}),
    Case(
        "memories-limit-huge",
        "GET",
        "/v1/sessions/{session}/memories",
        None,
        400,
        BAD,
        query={"limit": "501"},
    ),
    Case("intake-summary-missing", *INTAKE, intake_body(summary=None), 400, BAD),
    Case("intake-unknown-field", *INTAKE, intake_body(priority="p1"), 400, BAD),
    Case("intake-bad-sentiment", *INTAKE, intake_body(sentiment="meh"), 400, BAD),
    Case("intake-bad-urgency", *INTAKE, intake_body(urgency=3), 400, BAD),
    Case("intake-to-agent-int", *INTAKE, intake_body(to_agent=5), 400, BAD),
    Case("intake-importance-string", *INTAKE, intake_body(importance="max"), 400, BAD),
    Case("intake-sentiment-out-of-range", *INTAKE, intake_body(sentiment=2.0), 400, BAD),
    Case(
        "intake-idempotency-key-too-long",
        *INTAKE,
        intake_body(),
        400,
        BAD,
        headers=lambda c: {**good(c), "HTTP_IDEMPOTENCY_KEY": "k" * 256},
    ),
    # -- too large
    Case("content-over-100000-bytes", *STORE, store_body(content=BIG), 413, TOO_LARGE),
    Case("content-multibyte", *STORE, store_body(content="é" * 50_001), 413, TOO_LARGE),
    Case(
        "batch-item-too-large",
        *BATCH,
        {"agent_id": "user-dave", "memories": [{"content": "fine"}, {"content": BIG}]},
        413,
        TOO_LARGE,
    ),
    Case("intake-summary-too-large", *INTAKE, intake_body(summary=BIG), 413, TOO_LARGE),
    Case(
        "body-over-10-mib",
        *STORE,
        json.dumps(store_body(padding="p" * (10 * 1024 * 1024))),
        413,
        TOO_LARGE,
    ),
    Case(
        "body-far-over-10-mib",
        *STORE,
        json.dumps(store_body(padding="p" * (12 * 1024 * 1024))),
        413,
        TOO_LARGE,
    ),
    # -- too many metadata keys
    Case("metadata-101-keys", *STORE, store_body(metadata=MANY_KEYS), 400, BAD),
    Case("start-metadata-101", *START, {"agent_id": "user-dave", "metadata": MANY_KEYS}, 400, BAD),
    Case(
        "batch-metadata-101",
        *BATCH,
        {"agent_id": "user-dave", "memories": [{"content": "x", "metadata": MANY_KEYS}]},
        400,
        BAD,
    ),
    # -- bad agent ids
    *[
        Case(f"store-agent-{name}", *STORE, store_body(agent_id=agent_id), 400, BAD)
        for name, agent_id in [
            ("dash-first", "-x"),
            ("reserved", "_dakera_x"),
            ("242-bytes", "a" * 242),
            ("space", "a b"),
            ("slash", "user/dave"),
            ("empty", ""),
            ("int", 42),
            ("null", None),
        ]
    ],
    Case("start-agent-reserved", *START, {"agent_id": "_dakera_x"}, 400, BAD),
    Case("start-agent-missing", *START, {}, 400, BAD),
    Case("recall-agent-space", *RECALL, recall_body(agent_id="a b"), 400, BAD),
    Case("search-agent-long", *SEARCH, recall_body(agent_id="a" * 242), 400, BAD),
    Case("forget-agent-bad", *FORGET, {"agent_id": "-x", "memory_ids": ["mem_x"]}, 400, BAD),
    Case(
        "forget-agent-missing",
        *FORGET,
        lambda c: {"memory_ids": [c.memory]},
        400,
        BAD,
    ),
    Case("batch-agent-bad", *BATCH, {"agent_id": "a b", "memories": [{"content": "x"}]}, 400, BAD),
    Case("list-agent-bad", "GET", "/v1/sessions", None, 400, BAD, query={"agent_id": "-x"}),
    Case(
        "get-memory-agent-bad",
        "GET",
        "/v1/memory/get/{memory}",
        None,
        400,
        BAD,
        query={"agent_id": "_dakera_x"},
    ),
    Case("intake-customer-bad", *INTAKE, intake_body(customer="a b"), 400, BAD),
    # -- unknown session / memory / handoff / route
    Case("get-unknown-session", "GET", "/v1/sessions/sess_nope", None, 404, NOT_FOUND, "session"),
    Case(
        "memories-unknown-session",
        "GET",
        "/v1/sessions/sess_nope/memories",
        None,
        404,
        NOT_FOUND,
        "session",
    ),
    Case(
        "touch-unknown-session",
        "POST",
        "/v1/sessions/sess_nope/touch",
        None,
        404,
        NOT_FOUND,
        "session",
    ),
    Case(
        "store-unknown-session",
        *STORE,
        store_body(session_id="sess_nope"),
        404,
        NOT_FOUND,
        "session",
    ),
    Case(
        "store-other-agents-session",
        *STORE,
        lambda c: store_body(session_id=c.other_session),
        404,
        NOT_FOUND,
        "session",
    ),
    Case(
        "batch-unknown-session",
        *BATCH,
        {
            "agent_id": "user-dave",
            "memories": [{"content": "a"}, {"content": "b", "session_id": "sess_nope"}],
        },
        404,
        NOT_FOUND,
        "session",
    ),
    Case(
        "get-unknown-memory",
        "GET",
        "/v1/memory/get/mem_nope",
        None,
        404,
        NOT_FOUND,
        "memory",
        query={"agent_id": "user-dave"},
    ),
    Case(
        "get-memory-of-other-agent",
        "GET",
        "/v1/memory/get/{memory}",
        None,
        404,
        NOT_FOUND,
        "memory",
        query={"agent_id": "user-erin"},
    ),
    Case(
        "get-unknown-handoff",
        "GET",
        f"/api/v1/handoffs/{uuid.UUID(int=1)}",
        None,
        404,
        NOT_FOUND,
        "handoff",
    ),
    Case("unknown-route", "POST", "/v1/memory/frobnicate", {}, 404, "ROUTE_NOT_FOUND"),
    Case("unknown-route-delete", "DELETE", "/v1/nothing/here", {}, 404, "ROUTE_NOT_FOUND"),
    Case("unknown-route-put", "PUT", "/v1/namespaces/kb/vectors", {}, 404, "ROUTE_NOT_FOUND"),
    Case("wrong-method", "GET", "/v1/memory/store", None, 405, "METHOD_NOT_ALLOWED"),
    Case("update-wrong-method", "POST", "/v1/memory/update/mem_x", {}, 405, "METHOD_NOT_ALLOWED"),
    # 1-7 of issue 20: the calls the framework packages and the JS SDK make
    Case("update-nothing", "PUT", "/v1/memory/update/{memory}", {}, 400, BAD),
    Case("update-bad-importance", "PUT", "/v1/memory/update/{memory}", {"importance": 2}, 400, BAD),
    Case("update-empty-content", "PUT", "/v1/memory/update/{memory}", {"content": " "}, 400, BAD),
    Case(
        "update-unknown",
        "PUT",
        "/v1/memory/update/mem_nope",
        {"content": "x"},
        404,
        NOT_FOUND,
        "memory",
    ),
    Case(
        "update-other-agent",
        "PUT",
        "/v1/memory/update/{memory}",
        {"content": "x"},
        404,
        NOT_FOUND,
        "memory",
        query={"agent_id": "user-erin"},
    ),
    Case(
        "importance-out-of-range",
        "POST",
        "/v1/memory/importance",
        lambda c: {"agent_id": "user-dave", "memory_id": c.memory, "importance": 1.5},
        400,
        BAD,
    ),
    Case(
        "importance-missing",
        "POST",
        "/v1/memory/importance",
        lambda c: {"agent_id": "user-dave", "memory_id": c.memory},
        400,
        BAD,
    ),
    Case(
        "importance-unknown-memory",
        "POST",
        "/v1/memory/importance",
        {"agent_id": "user-dave", "memory_id": "mem_nope", "importance": 0.2},
        404,
        NOT_FOUND,
        "memory",
    ),
    Case(
        "feedback-bad-signal",
        "POST",
        "/v1/memory/feedback",
        lambda c: {"agent_id": "user-dave", "memory_id": c.memory, "signal": "meh"},
        400,
        BAD,
    ),
    Case(
        "feedback-other-agent",
        "POST",
        "/v1/memory/feedback",
        lambda c: {"agent_id": "user-erin", "memory_id": c.memory, "signal": "upvote"},
        404,
        NOT_FOUND,
        "memory",
    ),
    Case(
        "consolidate-one-id",
        "POST",
        "/v1/memory/consolidate",
        lambda c: {"agent_id": "user-dave", "memory_ids": [c.memory]},
        400,
        BAD,
    ),
    Case(
        "consolidate-bad-threshold",
        "POST",
        "/v1/memory/consolidate",
        {"agent_id": "user-dave", "threshold": 0},
        400,
        BAD,
    ),
    Case(
        "consolidate-unknown-ids",
        "POST",
        "/v1/memory/consolidate",
        lambda c: {"agent_id": "user-dave", "memory_ids": [c.memory, "mem_nope"]},
        404,
        NOT_FOUND,
        "memory",
    ),
    Case(
        "forget-batch-no-filter",
        "DELETE",
        "/v1/memories/forget/batch",
        {"agent_id": "user-dave", "filter": {}},
        400,
        BAD,
    ),
    Case(
        "forget-batch-unknown-field",
        "DELETE",
        "/v1/memories/forget/batch",
        {"agent_id": "user-dave", "filter": {"min_importanc": 0.1}},
        400,
        BAD,
    ),
    Case(
        "recall-batch-limit",
        "POST",
        "/v1/memories/recall/batch",
        {"agent_id": "user-dave", "limit": 0},
        400,
        BAD,
    ),
    Case(
        "recall-batch-bad-date",
        "POST",
        "/v1/memories/recall/batch",
        {"agent_id": "user-dave", "filter": {"created_after": "yesterday"}},
        400,
        BAD,
    ),
    Case(
        "wake-up-top-n",
        "GET",
        "/v1/agents/user-dave/wake-up",
        None,
        400,
        BAD,
        query={"top_n": "101"},
    ),
    Case(
        "wake-up-importance",
        "GET",
        "/v1/agents/user-dave/wake-up",
        None,
        400,
        BAD,
        query={"min_importance": "nan"},
    ),
    Case("agent-bad-id", "GET", "/v1/agents/_dakera_ns_kb/stats", None, 400, BAD),
    Case(
        "export-format",
        "GET",
        "/v1/export",
        None,
        400,
        BAD,
        query={"agent_id": "user-dave", "format": "xml"},
    ),
    Case("export-no-agent", "GET", "/v1/export", None, 400, BAD),
    Case("namespace-bad-name", "POST", "/v1/namespaces", {"name": "_dakera_x"}, 400, BAD),
    Case(
        "namespace-exists", "POST", "/v1/namespaces", {"name": "kb"}, 409, "CONFLICT", "namespace"
    ),
    Case("namespace-unknown", "GET", "/v1/namespaces/nope", None, 404, NOT_FOUND, "namespace"),
    Case("namespace-bad-dimension", "PUT", "/v1/namespaces/kb", {"dimension": -1}, 400, BAD),
    Case(
        "upsert-no-id",
        "POST",
        "/v1/namespaces/kb/upsert-text",
        {"documents": [{"text": "hello"}]},
        400,
        BAD,
    ),
    Case(
        "upsert-one-bad-of-two",
        "POST",
        "/v1/namespaces/kb/upsert-text",
        {"documents": [{"id": "a", "text": "fine"}, {"id": "b", "text": ""}]},
        400,
        BAD,
    ),
    Case(
        "upsert-huge",
        "POST",
        "/v1/namespaces/kb/upsert-text",
        {"documents": [{"id": "a", "text": "x" * 100_001}]},
        413,
        "PAYLOAD_TOO_LARGE",
    ),
    Case("query-no-text", "POST", "/v1/namespaces/kb/query-text", {"top_k": 3}, 400, BAD),
    Case(
        "query-bad-filter",
        "POST",
        "/v1/namespaces/kb/query-text",
        {"text": "x", "filter": {"a": {"$regex": "."}}},
        400,
        BAD,
    ),
    Case(
        "query-unknown-namespace",
        "POST",
        "/v1/namespaces/nope/query-text",
        {"text": "x"},
        404,
        NOT_FOUND,
        "namespace",
    ),
    Case(
        "hybrid-with-vector",
        "POST",
        "/v1/namespaces/kb/hybrid",
        {"text": "x", "vector": [0.1, 0.2]},
        501,
        "NOT_SUPPORTED_IN_EMBEDDED_MODE",
    ),
    Case(
        "bulk-delete-empty",
        "POST",
        "/v1/namespaces/kb/vectors/bulk-delete",
        {"filter": {}},
        400,
        BAD,
    ),
    # 8: the Dakera routes the embedded server does not serve
    Case(
        "kg-graph",
        "GET",
        "/v1/memories/{memory}/graph",
        None,
        501,
        "NOT_SUPPORTED_IN_EMBEDDED_MODE",
    ),
    Case(
        "kg-extract",
        "POST",
        "/v1/memories/extract",
        {"text": "x"},
        501,
        "NOT_SUPPORTED_IN_EMBEDDED_MODE",
    ),
    Case("kg-query", "POST", "/v1/knowledge/graph", {}, 501, "NOT_SUPPORTED_IN_EMBEDDED_MODE"),
    Case(
        "admin-autopilot",
        "GET",
        "/v1/admin/autopilot/status",
        None,
        501,
        "NOT_SUPPORTED_IN_EMBEDDED_MODE",
    ),
    Case("admin-decay", "PUT", "/v1/admin/decay/config", {}, 501, "NOT_SUPPORTED_IN_EMBEDDED_MODE"),
    Case(
        "admin-decay-stats",
        "GET",
        "/v1/admin/decay/stats",
        None,
        501,
        "NOT_SUPPORTED_IN_EMBEDDED_MODE",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(client, ctx, case):
    before = snapshot()
    response = send(client, case, ctx)
    assert response.status_code == case.status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) <= ERROR_KEYS
    assert isinstance(body["error"], str)
    assert body["error"]
    assert body["code"] == case.code
    assert body.get("resource") == case.resource
    assert snapshot() == before


def _with_key(key_of: Callable[[Ctx], str]) -> Callable[[Ctx], dict[str, str]]:
    return lambda c: {"HTTP_AUTHORIZATION": f"Bearer {key_of(c)}"}


AUTH_MODES = {
    "missing": (lambda c: {}, "AUTHENTICATION_REQUIRED"),
    "empty-bearer": (lambda c: {"HTTP_AUTHORIZATION": "Bearer "}, "AUTHENTICATION_REQUIRED"),
    "basic-scheme": (lambda c: {"HTTP_AUTHORIZATION": f"Basic {c.key}"}, "AUTHENTICATION_REQUIRED"),
    "wrong-key": (_with_key(lambda c: "dk-000000000000" + "x" * 43), "INVALID_API_KEY"),
    "right-prefix-wrong-secret": (_with_key(lambda c: c.key[:15] + "y" * 43), "INVALID_API_KEY"),
    "not-a-key": (_with_key(lambda c: "hunter2"), "INVALID_API_KEY"),
    "revoked": (_with_key(lambda c: c.revoked_key), "API_KEY_EXPIRED"),
    "x-api-key-wins-over-bearer": (
        lambda c: {
            "HTTP_X_API_KEY": "dk-000000000000nope",
            "HTTP_AUTHORIZATION": f"Bearer {c.key}",
        },
        "INVALID_API_KEY",
    ),
    "revoked-x-api-key": (lambda c: {"HTTP_X_API_KEY": c.revoked_key}, "API_KEY_EXPIRED"),
}
# A memory-API write, a memory-API read and the console's own intake API.
AUTH_TARGETS = {
    "store": (*STORE, store_body()),
    "update": ("PUT", "/v1/memory/update/{memory}", {"content": "changed"}),
    "importance": (
        "POST",
        "/v1/memory/importance",
        lambda c: {"agent_id": "user-dave", "memory_id": c.memory, "importance": 0.9},
    ),
    "wake-up": ("GET", "/v1/agents/user-dave/wake-up", None),
    "namespaces": ("POST", "/v1/namespaces", {"name": "fresh"}),
    "unknown-route": ("POST", "/v1/frobnicate", {}),
    "unsupported": ("GET", "/v1/admin/autopilot/status", None),
    "end": ("POST", "/v1/sessions/{session}/end", {}),
    "list": ("GET", "/v1/sessions", None),
    "intake": (*INTAKE, intake_body()),
}


@pytest.mark.parametrize("target", list(AUTH_TARGETS))
@pytest.mark.parametrize("mode", list(AUTH_MODES))
def test_authentication_errors(client, ctx, mode, target):
    headers, code = AUTH_MODES[mode]
    method, path, body = AUTH_TARGETS[target]
    before = snapshot()
    response = send(client, Case(mode, method, path, body, 401, code, headers=headers), ctx)
    assert response.status_code == 401
    payload = response.json()
    assert payload["error"] == "authentication_error"
    assert isinstance(payload["message"], str)
    assert payload["message"]
    assert set(payload) <= AUTH_KEYS
    assert payload["code"] == code
    assert response["WWW-Authenticate"] == "Bearer"
    assert snapshot() == before


@pytest.mark.parametrize("target", list(AUTH_TARGETS))
def test_the_same_requests_succeed_with_a_good_key(client, ctx, target):
    """Control for the tables above: the bodies they break are otherwise accepted (the
    unknown and unsupported routes get past the key check to their own JSON answer)."""
    method, path, body = AUTH_TARGETS[target]
    response = send(client, Case(target, method, path, body, 200, ""), ctx)
    expected = {"unknown-route": {404}, "unsupported": {501}}.get(target, {200, 201})
    assert response.status_code in expected, response.content[:300]
    assert response["Content-Type"] == "application/json"


def test_x_api_key_wins_over_a_bad_bearer(client, ctx):
    headers = {"HTTP_X_API_KEY": ctx.key, "HTTP_AUTHORIZATION": "Bearer dk-000000000000nope"}
    response = client.get("/v1/sessions", {"agent_id": "user-dave"}, **headers)
    assert response.status_code == 200
    assert response.json()["total"] == 2


@pytest.mark.parametrize(
    "body",
    [
        store_body(content="x" * 100_000),
        store_body(content="é" * 50_000),
        store_body(metadata={f"k{i}": i for i in range(100)}),
        store_body(agent_id="a" * 241),
        store_body(agent_id="A1_.-z"),
        store_body(importance=0),
        store_body(tags=[]),
    ],
    ids=["100000-bytes", "multibyte-100000", "100-keys", "241-bytes", "charset", "zero", "no-tags"],
)
def test_limits_are_inclusive(client, ctx, body):
    before = Memory.objects.count()
    response = client.post("/v1/memory/store", body, content_type="application/json", **good(ctx))
    assert response.status_code == 200, response.content[:300]
    assert response.json()["memory"]["content"] == body["content"]
    assert Memory.objects.count() == before + 1


def test_top_k_limit_is_inclusive(client, ctx):
    for top_k in (1, 10_000):
        response = client.post(
            "/v1/memory/recall", recall_body(top_k=top_k), "application/json", **good(ctx)
        )
        assert response.status_code == 200
        assert len(response.json()["memories"]) == 1


def test_ending_an_ended_or_unknown_session_is_idempotent(client, ctx):
    before = snapshot()
    unknown = client.post("/v1/sessions/sess_nope/end", {}, "application/json", **good(ctx))
    assert unknown.status_code == 200
    assert unknown.json()["memory_count"] == 0
    again = client.post(
        f"/v1/sessions/{ctx.ended_session}/end",
        {"summary": "other"},
        "application/json",
        **good(ctx),
    )
    assert again.status_code == 200
    assert again.json()["session"]["summary"] == "done"
    assert again.json()["session"]["ended_reason"] == "client"
    assert snapshot() == before


# ---------------------------------------------------------------- duplicate intake
def post_intake(client, ctx, body: dict[str, Any], key: str | None = None):
    headers = good(ctx)
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post("/api/v1/handoffs", body, "application/json", **headers)


def test_duplicate_intake_answers_200_not_created(client, ctx):
    first = post_intake(client, ctx, intake_body())
    assert first.status_code == 201
    assert first.json()["created"] is True
    before = snapshot()
    second = post_intake(client, ctx, intake_body())
    assert second.status_code == 200
    assert second.json() == {"handoff": first.json()["handoff"], "created": False}
    assert snapshot() == before
    assert Handoff.objects.count() == 1


def test_same_idempotency_key_and_body_replays_the_first_answer(client, ctx):
    first = post_intake(client, ctx, intake_body(), key="retry-1")
    assert first.status_code == 201
    assert IdempotencyRecord.objects.count() == 1
    before = snapshot()
    # Key order in the JSON doesn't make it another body.
    reordered = dict(reversed(list(intake_body().items())))
    replay = post_intake(client, ctx, reordered, key="retry-1")
    assert replay.status_code == 201
    assert replay.json() == first.json()
    assert replay["Idempotent-Replayed"] == "true"
    assert snapshot() == before


def test_same_idempotency_key_with_another_body_is_422(client, ctx):
    first = post_intake(client, ctx, intake_body(), key="retry-2")
    assert first.status_code == 201
    before = snapshot()
    other = post_intake(client, ctx, intake_body(summary="Something else entirely."), key="retry-2")
    assert other.status_code == 422
    body = other.json()
    assert set(body) <= ERROR_KEYS
    assert body["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert isinstance(body["error"], str)
    assert snapshot() == before


def test_a_replay_after_a_duplicate_keeps_its_own_first_answer(client, ctx):
    """A new key on an already-recorded handoff records (and replays) the 200."""
    post_intake(client, ctx, intake_body())
    first = post_intake(client, ctx, intake_body(), key="retry-3")
    assert first.status_code == 200
    assert first.json()["created"] is False
    before = snapshot()
    replay = post_intake(client, ctx, intake_body(), key="retry-3")
    assert (replay.status_code, replay.json()) == (200, first.json())
    assert snapshot() == before


def test_idempotency_keys_belong_to_one_bot(client, ctx):
    _, other_key = bot_create(name="other-bot")
    first = post_intake(client, ctx, intake_body(), key="shared")
    assert first.status_code == 201
    other = client.post(
        "/api/v1/handoffs",
        intake_body(summary="A different handoff from another bot."),
        "application/json",
        HTTP_AUTHORIZATION=f"Bearer {other_key}",
        HTTP_IDEMPOTENCY_KEY="shared",
    )
    assert other.status_code == 201
    assert Handoff.objects.count() == 2
