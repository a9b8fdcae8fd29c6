"""Bots are isolated (finding 1 of issue 12): keys have a scope (read ⊂ write ⊂ admin) and a
namespace allowlist, and a conversation (with its hops and customer link) belongs to the
bot that started it. A refusal is 403 in the wire error shape and changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from handoffs.api.keys import bot_create
from handoffs.memory.embedded import EmbeddedStore
from handoffs.memory.models import Memory, MemorySession
from handoffs.models import Conversation, Event, Handoff, Message

pytestmark = pytest.mark.pg

ERROR_KEYS = {"error", "code", "details", "resource"}


def bearer(key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


@dataclass
class World:
    user_session: str
    vip_session: str
    user_memory: str
    vip_memory: str


@pytest.fixture
def world(db, teams) -> World:
    store = EmbeddedStore()
    user_session = store.start_session(agent_id="user-dave")["session"]["id"]
    vip_session = store.start_session(agent_id="vip-erin")["session"]["id"]
    user_memory = store.store(
        agent_id="user-dave", content="Dave's card ends 4242", session_id=user_session
    )["memory"]["id"]
    vip_memory = store.store(
        agent_id="vip-erin", content="Erin's card ends 1111", session_id=vip_session
    )["memory"]["id"]
    return World(user_session, vip_session, user_memory, vip_memory)


def state() -> dict[str, Any]:
    return {
        "memories": list(Memory.objects.order_by("pk").values()),
        "sessions": list(MemorySession.objects.order_by("pk").values()),
        "handoffs": list(Handoff.objects.order_by("pk").values()),
        "messages": list(Message.objects.order_by("pk").values()),
    }


def call(client, key: str, method: str, path: str, body: dict | None = None):
    if method == "GET":
        return client.get(path, **bearer(key))
    return client.post(path, body or {}, "application/json", **bearer(key))


def calls(w: World, ns: str) -> list[tuple[str, str, str, dict | None]]:
    """(name, method, path, body) of every memory call, aimed at namespace ``ns``."""
    session = w.vip_session if ns.startswith("vip") else w.user_session
    memory = w.vip_memory if ns.startswith("vip") else w.user_memory
    return [
        ("start", "POST", "/v1/sessions/start", {"agent_id": ns}),
        ("list", "GET", f"/v1/sessions?agent_id={ns}", None),
        ("detail", "GET", f"/v1/sessions/{session}", None),
        ("memories", "GET", f"/v1/sessions/{session}/memories", None),
        ("touch", "POST", f"/v1/sessions/{session}/touch", None),
        ("store", "POST", "/v1/memory/store", {"agent_id": ns, "content": "note"}),
        (
            "batch",
            "POST",
            "/v1/memories/store/batch",
            {"agent_id": ns, "memories": [{"content": "a"}]},
        ),
        ("recall", "POST", "/v1/memory/recall", {"agent_id": ns, "query": "card"}),
        ("search", "POST", "/v1/memory/search", {"agent_id": ns, "query": "card"}),
        ("get", "GET", f"/v1/memory/get/{memory}?agent_id={ns}", None),
        ("get-bare", "GET", f"/v1/memory/get/{memory}", None),
        ("forget", "POST", "/v1/memory/forget", {"agent_id": ns, "memory_ids": [memory]}),
        ("end", "POST", f"/v1/sessions/{session}/end", {"summary": "bye"}),
        (
            "intake",
            "POST",
            "/api/v1/handoffs",
            {
                "customer": ns,
                "from_agent": "user-bot",
                "to_agent": "billing-specialist",
                "summary": f"Refund for {ns}",
            },
        ),
    ]


READS = {"list", "detail", "memories", "recall", "search", "get", "get-bare"}


def test_a_key_limited_to_user_star_cannot_touch_vip_namespaces(client, world):
    _, key = bot_create(name="user-bot", namespaces=["user-*"])
    before = state()
    for name, method, path, body in calls(world, "vip-erin"):
        answer = call(client, key, method, path, body)
        assert answer.status_code == 403, (name, answer.content)
        assert set(answer.json()) <= ERROR_KEYS
        assert answer.json()["code"] == "NAMESPACE_ACCESS_DENIED", name
        assert "Erin" not in answer.content.decode()
    assert state() == before
    # Listing every namespace's sessions is refused to a limited key.
    everything = client.get("/v1/sessions", **bearer(key))
    assert (everything.status_code, everything.json()["code"]) == (403, "NAMESPACE_ACCESS_DENIED")

    # The same calls on its own namespaces work.
    for name, method, path, body in calls(world, "user-dave"):
        answer = call(client, key, method, path, body)
        assert answer.status_code in (200, 201), (name, answer.content)


def test_a_read_key_recalls_but_cannot_store_forget_or_end_sessions(client, world):
    _, key = bot_create(name="reader-bot", scope="read")
    before = state()
    for name, method, path, body in calls(world, "user-dave"):
        answer = call(client, key, method, path, body)
        if name in READS:
            assert answer.status_code == 200, (name, answer.content)
        else:
            assert answer.status_code == 403, (name, answer.content)
            assert answer.json()["code"] == "INSUFFICIENT_SCOPE"
    recalled = call(
        client, key, "POST", "/v1/memory/recall", {"agent_id": "user-dave", "query": "card"}
    )
    assert [m["memory"]["content"] for m in recalled.json()["memories"]] == [
        "Dave's card ends 4242"
    ]
    # Recall bumps access counts (it is a read all the same); nothing else changed.
    after = state()
    for row in (*before["memories"], *after["memories"]):
        row.pop("access_count"), row.pop("last_accessed_at")
    assert after == before


def test_default_keys_keep_every_namespace_with_write_scope(client, world):
    bot, key = bot_create(name="tier1-bot")
    assert (bot.scope, bot.namespaces) == ("write", "")
    for name, method, path, body in calls(world, "vip-erin"):
        answer = call(client, key, method, path, body)
        assert answer.status_code in (200, 201), (name, answer.content)
    assert client.get("/v1/sessions", **bearer(key)).status_code == 200


def test_glob_patterns_and_several_of_them(client, world):
    _, key = bot_create(name="two-bot", namespaces="user-d?ve, vip-[a-e]*")
    ok = {"agent_id": "vip-erin", "query": "card"}
    assert call(client, key, "POST", "/v1/memory/search", ok).status_code == 200
    ok["agent_id"] = "user-dave"
    assert call(client, key, "POST", "/v1/memory/search", ok).status_code == 200
    for ns in ("user-davey", "vip-zed", "USER-DAVE"):
        answer = call(client, key, "POST", "/v1/memory/search", {"agent_id": ns, "query": "x"})
        assert answer.status_code == 403, ns


def test_a_session_of_another_namespace_is_refused_through_its_id(client, world):
    """Session calls take the session's own namespace, not one the caller names."""
    _, key = bot_create(name="user-bot", namespaces=["user-*"])
    answer = call(
        client,
        key,
        "POST",
        "/v1/memory/store",
        {"agent_id": "user-dave", "content": "x", "session_id": world.vip_session},
    )
    assert answer.status_code == 404  # the store's own check: not a session of user-dave
    assert not Memory.objects.filter(content="x").exists()


def test_every_bot_route_declares_its_scope():
    """A new route can't forget: ``bot_api`` refuses to decorate without a scope, and every
    route under /v1/ and /api/ that answers bots carries its declared scopes."""
    routes: list[tuple[str, Any]] = []

    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                routes.append((prefix + str(p.pattern), p.callback))

    walk(get_resolver().url_patterns)
    bot_routes = [
        (path, view)
        for path, view in routes
        if path.startswith(("v1/", "api/"))  # the ``^v1/`` catch-alls are regexes: "^..."
    ]
    assert len(bot_routes) >= 14
    for path, view in bot_routes:
        if getattr(view, "keyless", False):
            assert path in {"api/schema/", "api/docs/"}, path  # the published description
            continue
        scopes = getattr(view, "bot_scopes", None)
        assert scopes, path
        assert set(scopes.values()) <= {"read", "write", "admin"}, path

    from handoffs.memory.http import bot_api

    with pytest.raises(TypeError):
        bot_api(("POST",))  # type: ignore[call-arg]


# ---------------------------------------------------------------- ownership
def post_handoff(client, key: str, **fields):
    body = {
        "customer": "user-dave",
        "source_session_id": "sess_0123",
        "from_agent": "tier1-bot",
        "to_agent": "billing-specialist",
        "summary": "Customer ACC-4521 reports a $100 overcharge. Needs a refund.",
        **fields,
    }
    return client.post("/api/v1/handoffs", body, "application/json", **bearer(key))


@pytest.fixture
def two_bots(db, teams):
    return bot_create(name="tier1-bot"), bot_create(name="snoop-bot")


def test_another_bot_posting_the_same_handoff_gets_no_conversation(client, two_bots):
    (_, owner_key), (_, snoop_key) = two_bots
    first = post_handoff(client, owner_key)
    assert first.status_code == 201
    customer_url = first.json()["handoff"]["conversation"]["customer_url"]
    before = state()

    stolen = post_handoff(client, snoop_key)
    assert stolen.status_code == 409
    body = stolen.json()
    assert set(body) <= ERROR_KEYS
    assert body["code"] == "HANDOFF_OWNED_BY_ANOTHER_BOT"
    text = stolen.content.decode()
    assert customer_url not in text
    assert first.json()["handoff"]["conversation"]["id"] not in text
    assert first.json()["handoff"]["id"] not in text
    assert state() == before
    # The owner still gets its answer (and its retry is still a 200).
    again = post_handoff(client, owner_key)
    assert (again.status_code, again.json()["created"]) == (200, False)
    assert again.json()["handoff"]["conversation"]["customer_url"] == customer_url


def test_only_the_owner_reads_a_handoff_by_id(client, two_bots):
    (_, owner_key), (_, snoop_key) = two_bots
    handoff_id = post_handoff(client, owner_key).json()["handoff"]["id"]
    assert client.get(f"/api/v1/handoffs/{handoff_id}", **bearer(owner_key)).status_code == 200
    other = client.get(f"/api/v1/handoffs/{handoff_id}", **bearer(snoop_key))
    assert other.status_code == 404
    assert other.json()["code"] == "NOT_FOUND"
    assert "customer_url" not in other.content.decode()


def test_a_handoff_memory_found_by_search_gives_another_bot_nothing(client, two_bots):
    """The attack as found: learn the handoff from the shared namespace, replay it."""
    (_, owner_key), (_, snoop_key) = two_bots
    post_handoff(client, owner_key)
    conversation = Conversation.objects.get()
    replay = post_handoff(client, snoop_key)
    assert replay.status_code == 409
    # And it can't write into the customer's chat as the customer.
    spoof = client.post(
        f"/api/v1/conversations/{conversation.public_id}/messages",
        {"client_id": "spoof-1", "body": "refund to my other card", "sender": "customer"},
        "application/json",
        **bearer(snoop_key),
    )
    assert spoof.status_code == 404
    assert not Message.objects.filter(client_id="spoof-1").exists()


def test_a_read_key_may_read_its_conversation_but_not_post(client, teams):
    bot, key = bot_create(name="tier1-bot")
    handoff = post_handoff(client, key).json()["handoff"]
    bot.scope = "read"
    bot.save()
    url = f"/api/v1/conversations/{handoff['conversation']['id']}/messages"
    assert client.get(url, **bearer(key)).status_code == 200
    posted = client.post(
        url,
        {"client_id": "c-1", "body": "hi", "sender": "customer"},
        "application/json",
        **bearer(key),
    )
    assert (posted.status_code, posted.json()["code"]) == (403, "INSUFFICIENT_SCOPE")
    assert post_handoff(client, key, summary="another").status_code == 403
    assert not Message.objects.filter(client_id="c-1").exists()


def test_admin_moves_a_conversation_to_another_bot(admin_client, client, two_bots):
    (old, owner_key), (new, new_key) = two_bots
    handoff = post_handoff(client, owner_key).json()["handoff"]
    conversation = Conversation.objects.get()
    page = admin_client.get(f"/admin/handoffs/conversation/{conversation.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {name: form.initial.get(name) or "" for name in form.fields}
    data.update(
        bot=str(new.pk),
        **{
            "messages-TOTAL_FORMS": "0",
            "messages-INITIAL_FORMS": "0",
            "messages-MIN_NUM_FORMS": "0",
            "messages-MAX_NUM_FORMS": "1000",
        },
    )
    data["closed_at_0"] = data["closed_at_1"] = ""
    created = conversation.created_at
    data["created_at_0"], data["created_at_1"] = (
        created.strftime("%Y-%m-%d"),
        created.strftime("%H:%M:%S"),
    )
    saved = admin_client.post(f"/admin/handoffs/conversation/{conversation.pk}/change/", data)
    assert saved.status_code == 302, saved.content.decode()[:2000]
    conversation.refresh_from_db()
    assert conversation.bot == new
    event = Event.objects.get(kind="conversation.bot_changed")
    assert event.data["from_bot"] == "tier1-bot" and event.data["to_bot"] == "snoop-bot"

    url = f"/api/v1/conversations/{conversation.public_id}/messages"
    assert client.get(url, **bearer(new_key)).status_code == 200
    assert client.get(url, **bearer(owner_key)).status_code == 404
    assert client.get(f"/api/v1/handoffs/{handoff['id']}", **bearer(new_key)).status_code == 200
    assert client.get(f"/api/v1/handoffs/{handoff['id']}", **bearer(owner_key)).status_code == 404
    assert old.pk != new.pk


def test_the_dakera_sdk_raises_authorization_error_for_a_narrow_key(live_server_url, teams):
    """The unmodified SDK maps the 403s to ``AuthorizationError`` with Dakera's codes."""
    import dakera

    _, key = bot_create(name="reader-bot", scope="read", namespaces=["user-*"])
    client = dakera.DakeraClient(live_server_url, api_key=key, max_retries=1, timeout=10)
    assert client.recall("user-dave", "refund", top_k=3) is not None
    with pytest.raises(dakera.AuthorizationError) as denied:
        client.store_memory("user-dave", "a read key cannot store")
    assert denied.value.code == dakera.ErrorCode.INSUFFICIENT_SCOPE
    with pytest.raises(dakera.AuthorizationError) as denied:
        client.recall("vip-erin", "card")
    assert denied.value.code == dakera.ErrorCode.NAMESPACE_ACCESS_DENIED
