"""Hostile input, class by class (issue 15): each gets a clear 4xx in the documented
shape, never a 5xx, and writes nothing. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from django.test import Client

from handoffs.api.keys import bot_create
from handoffs.lifecycle.accept import handoff_accept
from handoffs.lifecycle.intake import handoff_intake
from handoffs.models import Conversation, Message
from tests import factories
from tests.conftest import free_port, start_daphne
from tests.memory.test_bad_input import intake_body, snapshot, store_body

pytestmark = pytest.mark.pg

SURROGATE = "\ud800"
NUL = "\x00"


@pytest.fixture
def key(db, teams) -> str:
    return bot_create(name="tier1-bot")[1]


def post(client, path: str, body, key: str, **extra):
    raw = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.generic(
        "POST",
        path,
        raw,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
        **extra,
    )


def assert_refused(response, status: int = 400, *, names: str | None = None) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] and isinstance(body["error"], str)
    if names is not None:
        assert names in body["error"], body
    return body


def conversation_of(key_bot_name: str = "tier1-bot") -> Conversation:
    from handoffs.models import Bot

    bot = Bot.objects.get(name=key_bot_name)
    hop = handoff_intake(
        customer="user-dave",
        source_session_id="s1",
        from_agent="tier1-bot",
        to_agent="billing-specialist",
        summary="Charged twice.",
        bot=bot,
    ).handoff
    return hop.conversation


# Each string field the API takes, with the surrogate and the NUL put into it.
STRING_FIELDS = [
    ("/v1/memory/store", lambda bad: store_body(content=f"a{bad}b"), "content"),
    ("/v1/memory/store", lambda bad: store_body(agent_id=f"user{bad}"), "agent_id"),
    ("/v1/memory/store", lambda bad: store_body(metadata={"note": f"x{bad}"}), "metadata.note"),
    ("/v1/memory/store", lambda bad: store_body(metadata={f"k{bad}": 1}), "metadata"),
    ("/v1/memory/store", lambda bad: store_body(tags=["ok", f"t{bad}"]), "tags[1]"),
    (
        "/v1/memories/store/batch",
        lambda bad: {"agent_id": "user-dave", "memories": [{"content": "fine"}, {"content": bad}]},
        "memories[1].content",
    ),
    (
        "/v1/sessions/start",
        lambda bad: {"agent_id": "user-dave", "metadata": {"a": bad}},
        "metadata.a",
    ),
    ("/v1/memory/recall", lambda bad: {"agent_id": "user-dave", "query": f"q{bad}"}, "query"),
    ("/api/v1/handoffs", lambda bad: intake_body(summary=f"s{bad}"), "summary"),
    ("/api/v1/handoffs", lambda bad: intake_body(customer_name=f"D{bad}"), "customer_name"),
    ("/api/v1/handoffs", lambda bad: intake_body(to_agent=f"b{bad}"), "to_agent"),
]


@pytest.mark.parametrize("bad", [SURROGATE, NUL], ids=["surrogate", "nul"])
@pytest.mark.parametrize("path,body,field", STRING_FIELDS, ids=[f[2] for f in STRING_FIELDS])
def test_unstorable_text_is_refused_naming_the_field(client, key, bad, path, body, field):
    before = snapshot()
    assert_refused(post(client, path, body(bad), key), names=field)
    assert snapshot() == before


@pytest.mark.parametrize("bad", [SURROGATE, NUL], ids=["surrogate", "nul"])
def test_unstorable_text_in_a_bot_message_is_refused(client, key, bad):
    conversation = conversation_of()
    path = f"/api/v1/conversations/{conversation.public_id}/messages"
    body = {"client_id": "c1", "sender": "customer", "body": f"hi{bad}"}
    assert_refused(post(client, path, body, key), names="body")
    assert not Message.objects.filter(client_id="c1").exists()


def test_a_nul_in_the_customer_chat_form_is_a_friendly_400(client, key):
    conversation = conversation_of()
    response = client.post(
        f"/c/{conversation.token}/messages", {"body": f"hello{NUL}", "client_id": "c2"}
    )
    assert response.status_code == 400
    assert "NUL" in response.content.decode()
    assert not Message.objects.filter(client_id="c2").exists()


@pytest.mark.parametrize(
    "body",
    [
        "[" * 5000 + "]" * 5000,
        '{"agent_id": "user-dave", "content": "x", "metadata": '
        + '{"a": ' * 3000
        + "1"
        + "}" * 3000
        + "}",
        json.dumps(store_body(metadata=json.loads('{"a": ' * 70 + "1" + "}" * 70))),
    ],
    ids=["top-level-array", "metadata-3000-deep", "metadata-70-deep"],
)
def test_deep_nesting_is_refused(client, key, body):
    before = snapshot()
    assert_refused(post(client, "/v1/memory/store", body, key), names="nested deeper")
    assert snapshot() == before


@pytest.mark.parametrize(
    "body,names",
    [
        (store_body(ttl_seconds=10**20), "ttl_seconds"),
        (store_body(ttl_seconds=10**10), "ttl_seconds"),
        (store_body(expires_at=10**20), "expires_at"),
        (store_body(expires_at=10**15), "expires_at"),
        ('{"agent_id": "user-dave", "content": "x", "metadata": {"n": NaN}}', "metadata.n"),
        ('{"agent_id": "user-dave", "content": "x", "metadata": {"n": 1e999}}', "metadata.n"),
        ('{"agent_id": "user-dave", "content": "x", "metadata": {"n": -Infinity}}', "metadata.n"),
        ('{"agent_id": "user-dave", "content": "x", "importance": NaN}', "importance"),
    ],
)
def test_numbers_out_of_range_are_refused(client, key, body, names):
    before = snapshot()
    assert_refused(post(client, "/v1/memory/store", body, key), names=names)
    assert snapshot() == before


@pytest.mark.parametrize("sender", [["customer"], {}, 1, None])
def test_a_wrong_type_for_sender_is_refused(client, key, sender):
    conversation = conversation_of()
    path = f"/api/v1/conversations/{conversation.public_id}/messages"
    body = {"client_id": "c3", "sender": sender, "body": "hello"}
    if sender is None:
        body.pop("sender")  # missing: a customer message, accepted
        assert post(client, path, body, key).status_code == 201
        return
    assert_refused(post(client, path, body, key), names="sender")
    assert not Message.objects.filter(client_id="c3").exists()


@pytest.mark.parametrize("after", ["²", "٣٣", "99999999999999999999999", "-1x"])
def test_after_takes_ascii_digits_within_range(client, key, after):
    conversation = conversation_of()
    response = client.get(
        f"/api/v1/conversations/{conversation.public_id}/messages",
        {"after": after},
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert_refused(response, names="after")


def test_reassign_target_ids_take_ascii_digits_only(client, teams, make_agent, key):
    from handoffs.models import Role

    hop = conversation_of().hops.get()
    client.force_login(make_agent("sam", teams=list(teams.values()), role=Role.SUPERVISOR).user)
    for bad in ["²", "１", "9" * 30]:
        response = client.post(f"/floor/handoffs/{hop.pk}/reassign", {"to": bad})
        assert response.status_code == 400, bad
        assert "Choose the agent" in response.content.decode()


def test_report_dates_far_in_the_future_are_a_form_error(client, teams, make_agent):
    from handoffs.models import Role

    client.force_login(make_agent("sam", teams=list(teams.values()), role=Role.SUPERVISOR).user)
    for query in [{"from": "9999-12-31", "to": "9999-12-31"}, {"to": "9999-12-31"}]:
        response = client.get("/reports/transfers/", query)
        assert response.status_code == 400
        assert "before 3000-01-01" in response.content.decode()
    csv = client.get("/reports/transfers.csv", {"to": "9999-12-31"})
    assert csv.status_code == 400


@pytest.mark.parametrize("path", ["/health", "/health/live", "/health/ready"])
def test_health_checks_answer_other_methods_in_json(db, path):
    client = Client(enforce_csrf_checks=True)
    response = client.post(path, "{}", content_type="application/json")
    body = assert_refused(response, 405)
    assert body["code"] == "METHOD_NOT_ALLOWED"
    assert response["Allow"] == "GET"


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/v1/memory/nope/mem_1", "/v1/nope", "/api/v1/nope"])
def test_unknown_routes_check_the_key_first_then_answer_json_404(key, method, path):
    client = Client(enforce_csrf_checks=True)
    anonymous = client.generic(method, path, "{}", content_type="application/json")
    assert assert_refused(anonymous, 401)["code"] == "AUTHENTICATION_REQUIRED"
    wrong = client.generic(
        method, path, "{}", content_type="application/json", HTTP_AUTHORIZATION="Bearer dk-nope"
    )
    assert assert_refused(wrong, 401)["code"] == "INVALID_API_KEY"
    right = client.generic(
        method, path, "{}", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
    )
    assert assert_refused(right, 404)["code"] == "ROUTE_NOT_FOUND"


def test_a_known_route_checks_the_key_before_the_method(key):
    client = Client(enforce_csrf_checks=True)
    assert client.delete("/v1/memory/store").status_code == 401
    wrong_method = client.delete("/v1/memory/store", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert assert_refused(wrong_method, 405)["code"] == "METHOD_NOT_ALLOWED"
    assert wrong_method["Allow"] == "POST"


def test_with_the_database_unreachable_the_api_answers_json_503_and_pages_a_503_page():
    """A real Daphne whose database is a closed port (nothing mocked)."""
    server = start_daphne(
        extra_env={"DATABASE_URL": f"postgres://root@127.0.0.1:{free_port()}/nowhere"},
        ready="/health/live",
    )
    url = server.url
    try:
        intake = httpx.post(
            f"{url}/api/v1/handoffs",
            json=intake_body(),
            headers={"Authorization": "Bearer dk-000000000000" + "x" * 43},
        )
        assert intake.status_code == 503
        assert intake.headers["content-type"] == "application/json"
        assert intake.json()["code"] == "SERVICE_UNAVAILABLE"
        assert intake.headers["retry-after"] == "5"
        ready = httpx.get(f"{url}/health/ready")
        assert ready.status_code == 503
        assert ready.json()["status"] == "not_ready"
        page = httpx.get(f"{url}/c/some-customer-link/")
        assert page.status_code == 503
        assert "Temporarily unavailable" in page.text
        assert page.headers["retry-after"] == "5"
    finally:
        server.stop()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_flood_of_typing_frames_is_forwarded_at_most_twice_a_second(teams, make_agent):
    from channels.db import database_sync_to_async

    from tests.lifecycle.test_chat import _socket

    @database_sync_to_async
    def setup():
        alice = make_agent("alice", teams=[teams["billing-specialist"]])
        hop = factories.escalate("billing-specialist")
        handoff_accept(handoff_id=hop.pk, agent=alice)
        return alice, hop, Conversation.objects.get(pk=hop.conversation_id)

    alice, hop, conversation = await setup()
    customer = _socket(f"/ws/chat/{conversation.token}/")
    agent = _socket(f"/ws/conversations/{hop.pk}/", user=alice.user)
    try:
        assert (await customer.connect())[0]
        assert (await agent.connect())[0]
        await customer.receive_from()  # the snapshots
        await agent.receive_from()
        started = time.monotonic()
        for _ in range(500):
            await customer.send_to(text_data='{"typing": true}')
        received = 0
        while not await agent.receive_nothing(timeout=0.6):
            await agent.receive_from()
            received += 1
        elapsed = time.monotonic() - started
    finally:
        await customer.disconnect()
        await agent.disconnect()
    # 500 frames in a burst: the agent sees at least one, at most two a second.
    assert 1 <= received <= 2 * elapsed + 1, (received, elapsed)
