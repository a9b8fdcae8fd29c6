"""Remote mode when the memory server goes away and comes back.

The stand-in Dakera (the console's embedded server in another process, see
``dakera_process``) is stopped and restarted on the same port, with the same database
and key: a real outage as the console sees it (connection refused), then recovery.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from handoffs.delivery import outbox
from handoffs.lifecycle.messages import message_post
from handoffs.memory.remote import RemoteStore
from handoffs.models import Handoff, MemoryWrite, Message, OutboxStatus, Sender, Status

from .dakera_process import DakeraProcess, start_dakera

SUMMARY = (
    "Customer ACC-4521 reports a $100 billing overcharge: plan is $199/mo, last invoice "
    "shows $299. Frustrated but polite. Needs a refund."
)


@pytest.fixture(scope="module")
def dakera(tmp_path_factory) -> Iterator[DakeraProcess]:
    process = start_dakera(tmp_path_factory.mktemp("dakera-faults"))
    yield process
    process.stop()


@pytest.fixture
def up(dakera) -> DakeraProcess:
    """The server is running at the start of each test (a test may stop it)."""
    if dakera.server is None:
        dakera.start()
    return dakera


@pytest.fixture
def remote_mode(up, settings) -> RemoteStore:
    settings.DAKERA_URL, settings.DAKERA_API_KEY = up.url, up.key
    settings.DAKERA_CONNECT_TIMEOUT = 1
    settings.DAKERA_MAX_RETRIES = 1
    settings.DAKERA_FAIL_FAST_SECS = 0
    return RemoteStore(base_url=up.url, api_key=up.key, fail_fast_secs=0)


@pytest.fixture
def alice(make_agent, teams):
    return make_agent("alice", teams=[teams["billing-specialist"]])


def post_handoff(client, bot_key: str, customer: str, **extra):
    return client.post(
        "/api/v1/handoffs",
        data=json.dumps(
            {
                "customer": customer,
                "from_agent": "tier1-bot",
                "to_agent": "billing-specialist",
                "summary": SUMMARY,
                "sentiment": "frustrated",
                "urgency": "high",
                **extra,
            }
        ),
        content_type="application/json",
        headers={"Authorization": f"Bearer {bot_key}"},
    )


def time_passes() -> None:
    """Make every queued memory write due now (instead of sleeping through backoff)."""
    MemoryWrite.objects.filter(status=OutboxStatus.PENDING).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def test_intake_and_the_card_while_the_memory_server_is_down(
    remote_mode, up, client, bot_key, alice
):
    customer = f"user-{uuid.uuid4().hex[:12]}"
    # The bot stored its context in Dakera before escalating ...
    session = remote_mode.start_session(agent_id=customer)["session"]["id"]
    remote_mode.store(
        agent_id=customer,
        content="Account ID: ACC-4521, customer since 2024.",
        importance=0.8,
        metadata={"type": "context"},
        session_id=session,
    )
    up.stop()  # ... and then Dakera went down.

    response = post_handoff(client, bot_key, customer, source_session_id=session)
    assert response.status_code == 201, response.content
    hop = Handoff.objects.get(customer=customer)
    # Queued with the console's own snapshot.
    assert (hop.status, hop.summary, hop.sentiment, hop.urgency) == (
        Status.WAITING,
        SUMMARY,
        "frustrated",
        "high",
    )
    # A retried POST is still one handoff.
    again = post_handoff(client, bot_key, customer, source_session_id=session)
    assert again.status_code == 200 and Handoff.objects.filter(customer=customer).count() == 1

    client.force_login(alice.user)
    queue = client.get("/")
    assert queue.status_code == 200 and customer in queue.content.decode()
    card = client.get(f"/handoffs/{hop.pk}/")
    assert card.status_code == 200
    page = card.content.decode()
    assert "context unavailable, retrying" in page
    assert "$299" in page  # the snapshot of the summary is shown regardless
    assert "ACC-4521, customer since 2024" not in page

    health = client.get("/health/ready")
    assert health.status_code == 503
    assert "can't be reached" in health.json()["reason"]

    # Coming back: the same card shows the context again.
    up.start()
    page = client.get(f"/handoffs/{hop.pk}/").content.decode()
    assert "context unavailable" not in page
    assert "ACC-4521, customer since 2024" in page
    assert client.get("/health/ready").status_code == 200


def test_accept_and_chat_while_down_then_recovery_stores_in_order_once(
    remote_mode, up, client, bot_key, alice, django_capture_on_commit_callbacks
):
    customer = f"user-{uuid.uuid4().hex[:12]}"
    assert post_handoff(client, bot_key, customer).status_code == 201
    hop = Handoff.objects.get(customer=customer)
    up.stop()

    # Accept while down: accepted, the bot muted, no memory session yet (no 500).
    client.force_login(alice.user)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/handoffs/{hop.pk}/accept").status_code == 302
    hop.refresh_from_db()
    assert hop.status == Status.ACCEPTED and hop.human_session_id == ""
    assert client.get(f"/conversations/{hop.pk}/").status_code == 200

    lines = [
        (Sender.AGENT, "Hi, I can see the $299 invoice."),
        (Sender.CUSTOMER, "Right, it should be $199."),
        (Sender.AGENT, "Refunding the $100 now."),
        (Sender.CUSTOMER, "Thanks!"),
    ]
    for n, (sender, body) in enumerate(lines):
        with django_capture_on_commit_callbacks(execute=True):  # the kick after commit
            if sender == Sender.AGENT:
                response = client.post(
                    f"/conversations/{hop.pk}/messages", {"body": body, "client_id": f"m{n}"}
                )
                assert response.status_code == 201
            else:
                message_post(
                    conversation=hop.conversation, sender=sender, body=body, client_id=f"m{n}"
                )
    # Every message is committed; every memory copy waits, in order.
    assert list(
        Message.objects.filter(conversation=hop.conversation, sender__in=["agent", "customer"])
        .order_by("seq")
        .values_list("body", flat=True)
    ) == [body for _, body in lines]
    writes = list(MemoryWrite.objects.filter(conversation=hop.conversation).order_by("pk"))
    assert [w.payload["content"] for w in writes] == [body for _, body in lines]
    assert all(w.status == OutboxStatus.PENDING for w in writes)
    assert writes[0].attempts >= 1 and "SERVICE_UNAVAILABLE" in writes[0].last_error
    assert all(w.attempts == 0 for w in writes[1:])  # never overtaking the first

    # Still down: the worker's pass changes nothing and loses nothing.
    time_passes()
    assert outbox.apply_memory_writes() == 0
    assert MemoryWrite.objects.filter(status=OutboxStatus.PENDING).count() == len(lines)

    # Coming back.
    up.start()
    time_passes()
    assert outbox.apply_memory_writes() == len(lines)
    hop.refresh_from_db()
    assert hop.human_session_id.startswith("sess_")  # started by the first write
    stored = remote_mode.session_memories(session_id=hop.human_session_id)["memories"]
    assert [m["content"] for m in stored] == [body for _, body in lines]
    assert [m["metadata"]["client_id"] for m in stored] == [f"m{n}" for n in range(len(lines))]
    # A second pass (or a second worker) stores nothing twice.
    time_passes()
    assert outbox.apply_memory_writes() == 0
    again = remote_mode.session_memories(session_id=hop.human_session_id)
    assert again["total"] == len(lines)
    assert {w.result_id for w in MemoryWrite.objects.filter(conversation=hop.conversation)} == {
        m["id"] for m in stored
    }


def test_a_transfer_while_down_is_delivered_after_recovery(
    remote_mode, up, client, bot_key, alice, django_capture_on_commit_callbacks
):
    customer = f"user-{uuid.uuid4().hex[:12]}"
    assert post_handoff(client, bot_key, customer).status_code == 201
    hop = Handoff.objects.get(customer=customer)
    client.force_login(alice.user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/handoffs/{hop.pk}/accept")
    hop.refresh_from_db()
    human_session = hop.human_session_id
    assert human_session

    up.stop()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/conversations/{hop.pk}/messages", {"body": "One moment.", "client_id": "a"})
        response = client.post(
            f"/conversations/{hop.pk}/close",
            {"action": "transfer", "to": "tech-support", "note": "Refund done; router next."},
        )
    assert response.status_code == 302
    next_hop = Handoff.objects.get(previous=hop)
    assert next_hop.status == Status.WAITING and next_hop.memory_id == ""
    operations = list(
        MemoryWrite.objects.filter(conversation=hop.conversation)
        .order_by("pk")
        .values_list("operation", "status")
    )
    assert operations == [
        ("store", OutboxStatus.PENDING),  # the chat message
        ("store", OutboxStatus.PENDING),  # the HANDOFF SUMMARY memory
        ("end_session", OutboxStatus.PENDING),
    ]

    up.start()
    time_passes()
    assert outbox.apply_memory_writes() == 3
    next_hop.refresh_from_db()
    summary = remote_mode.get_memory(agent_id=customer, memory_id=next_hop.memory_id)
    assert summary["content"].startswith("HANDOFF SUMMARY")
    contents = [
        m["content"] for m in remote_mode.session_memories(session_id=human_session)["memories"]
    ]
    assert contents == ["One moment.", summary["content"]]
    assert remote_mode.get_session(session_id=human_session)["ended_reason"] == "client"
