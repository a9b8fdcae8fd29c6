"""Handoff intake: the service (from a stored memory or explicit) and ``/api/v1/handoffs``."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from handoffs.api.keys import bot_create
from handoffs.lifecycle.intake import CHAIN_WINDOW_DAYS, handoff_intake
from handoffs.memory.embedded import EmbeddedStore
from handoffs.memory.models import Memory
from handoffs.memory.services import memory_store, memory_store_batch
from handoffs.models import Event, Handoff, Status, Team
from handoffs.realtime import broadcast

pytestmark = pytest.mark.pg


SUMMARY = (
    "Customer ACC-4521 (since 2024) reports $100 billing overcharge. Verified plan is "
    "$199/mo but last invoice shows $299. Customer tone: frustrated but polite. Needs "
    "refund or explanation."
)
HANDOFF_JSON_KEYS = {
    "id",
    "customer",
    "customer_name",
    "source_session_id",
    "from_agent",
    "to_agent",
    "team",
    "misrouted",
    "status",
    "summary",
    "reason",
    "importance",
    "sentiment",
    "sentiment_source",
    "urgency",
    "urgency_source",
    "chain_id",
    "hop_index",
    "memory_id",
    "accepted_by",
    "created_at",
    "accepted_at",
}


def intake(**overrides):
    fields = {
        "customer": "user-dave",
        "source_session_id": "sess_1",
        "from_agent": "tier1-bot",
        "to_agent": "billing-specialist",
        "summary": SUMMARY,
    }
    return handoff_intake(**{**fields, **overrides})


def store_handoff_memory(bot, *, customer="user-dave", session_id=None, **metadata):
    return memory_store(
        bot=bot,
        agent_id=customer,
        content=metadata.pop("content", SUMMARY),
        importance=metadata.pop("importance", 1.0),
        metadata={"type": "handoff", "from_agent": "tier1-bot", **metadata},
        session_id=session_id,
    )


# ---------------------------------------------------------------- the service
def test_routes_to_the_team_named_by_to_agent(teams, bot):
    result = store_handoff_memory(bot, to_agent="tech-support")
    handoff = Handoff.objects.get()
    assert handoff.team == teams["tech-support"]
    assert handoff.status == Status.WAITING
    assert not handoff.misrouted
    assert handoff.to_bot is None
    assert handoff.memory_id == result["memory"]["id"]
    assert handoff.created_by_bot == bot
    assert handoff.customer == "user-dave"
    assert handoff.from_agent == "tier1-bot"
    assert handoff.summary == SUMMARY


def test_unknown_target_goes_to_the_default_team_flagged_misrouted(teams):
    Team.objects.filter(is_default=True).delete()  # the default team is made on demand
    result = intake(to_agent="billing-specialists")
    handoff = result.handoff
    assert result.created
    assert handoff.misrouted
    assert handoff.status == Status.WAITING
    assert handoff.team.is_default
    assert handoff.team.slug == "general"
    event = Event.objects.get(handoff=handoff)
    assert event.data["misrouted"] is True
    assert event.data["team"] == "general"
    # A second misrouted handoff reuses that team.
    intake(to_agent="nobody", summary="Another one.")
    assert Team.objects.filter(is_default=True).count() == 1


def test_an_existing_default_team_receives_misrouted_handoffs(teams):
    Team.objects.filter(is_default=True).delete()
    fallback = Team.objects.create(slug="front-desk", name="Front desk", is_default=True)
    handoff = intake(to_agent="").handoff
    assert handoff.team == fallback
    assert handoff.misrouted


def test_to_agent_naming_a_bot_is_a_bot_hop_not_queued(teams, bot):
    triage, _ = bot_create(name="triage-bot")
    result = store_handoff_memory(bot, to_agent="triage-bot")
    handoff = Handoff.objects.get(memory_id=result["memory"]["id"])
    assert handoff.status == Status.BOT_HOP
    assert handoff.to_bot == triage
    assert handoff.team is None
    assert not handoff.misrouted
    assert not Handoff.objects.filter(status=Status.WAITING).exists()
    event = Event.objects.get(handoff=handoff)
    assert event.kind == "handoff.created"
    assert event.data["team"] is None


def test_bot_given_sentiment_and_urgency_are_kept(teams, bot):
    store_handoff_memory(bot, to_agent="billing-specialist", sentiment="angry", urgency="critical")
    handoff = Handoff.objects.get()
    assert (handoff.sentiment, handoff.sentiment_source) == ("angry", "bot")
    assert (handoff.urgency, handoff.urgency_source) == ("critical", "bot")
    assert handoff.urgency_rank == 3


def test_numeric_sentiment_from_the_bot(teams):
    handoff = intake(sentiment=0.8, urgency="LOW").handoff
    assert (handoff.sentiment, handoff.sentiment_score, handoff.sentiment_source) == (
        "positive",
        0.8,
        "bot",
    )
    assert (handoff.urgency, handoff.urgency_source) == ("low", "bot")


def test_missing_or_unreadable_sentiment_and_urgency_are_estimated(teams, bot):
    store_handoff_memory(bot, to_agent="billing-specialist", sentiment="🤷", urgency=7)
    handoff = Handoff.objects.get()
    assert handoff.sentiment_source == "estimated"
    assert handoff.urgency_source == "estimated"
    assert handoff.sentiment == "frustrated"  # VADER on "frustrated but polite ... overcharge"
    assert handoff.urgency == "normal"


def test_estimated_urgency_reads_the_wording(teams):
    outage = intake(summary="Full outage: the service is down for everyone.").handoff
    assert (outage.urgency, outage.urgency_source) == ("critical", "estimated")
    cancel = intake(summary="Customer wants to cancel today unless refunded.").handoff
    assert cancel.urgency == "high"
    minor = intake(summary="Customer asks about the logo colour.", importance=0.2).handoff
    assert minor.urgency == "low"


def test_storing_the_same_handoff_memory_twice_makes_one_handoff(teams, bot):
    session = EmbeddedStore().start_session(agent_id="user-dave")["session"]["id"]
    first = store_handoff_memory(bot, to_agent="billing-specialist", session_id=session)
    second = store_handoff_memory(bot, to_agent="billing-specialist", session_id=session)
    assert first["memory"]["id"] != second["memory"]["id"]
    assert Memory.objects.filter(content=SUMMARY).count() == 2
    assert Handoff.objects.count() == 1
    assert Handoff.objects.get().memory_id == first["memory"]["id"]
    assert Event.objects.filter(kind="handoff.created").count() == 1


def test_same_summary_for_another_target_is_another_handoff(teams, bot):
    store_handoff_memory(bot, to_agent="billing-specialist")
    store_handoff_memory(bot, to_agent="tech-support")
    assert Handoff.objects.count() == 2


def test_non_handoff_memories_make_no_handoff(teams, bot):
    memory_store(bot=bot, agent_id="user-dave", content="a note", metadata={"type": "issue"})
    memory_store(bot=bot, agent_id="user-dave", content="handoff in words only")
    assert Handoff.objects.count() == 0
    assert Event.objects.count() == 0


def test_from_agent_falls_back_to_metadata_agent_then_the_bot(teams, bot):
    memory_store(
        bot=bot,
        agent_id="user-a",
        content="Needs billing help.",
        metadata={"type": "handoff", "agent": "web-bot", "to_agent": "billing-specialist"},
    )
    memory_store(
        bot=bot,
        agent_id="user-b",
        content="Needs billing help.",
        metadata={"type": "handoff", "to_agent": "billing-specialist"},
    )
    assert Handoff.objects.get(customer="user-a").from_agent == "web-bot"
    assert Handoff.objects.get(customer="user-b").from_agent == "tier1-bot"


def test_optional_metadata_fields_are_copied(teams, bot):
    store_handoff_memory(
        bot,
        to_agent="billing-specialist",
        reason="refund over limit",
        customer_name="Dave Smith",
        importance=0.7,
    )
    handoff = Handoff.objects.get()
    assert handoff.reason == "refund over limit"
    assert handoff.customer_name == "Dave Smith"
    assert handoff.importance == 0.7


def test_batch_store_intakes_each_handoff_memory(teams, bot):
    result = memory_store_batch(
        bot=bot,
        agent_id="user-dave",
        memories=[
            {"content": "context"},
            {
                "content": "first handoff",
                "metadata": {"type": "handoff", "to_agent": "billing-specialist"},
            },
            {"content": "second handoff", "metadata": {"type": "handoff", "to_agent": "x"}},
        ],
    )
    assert result["stored_count"] == 3
    assert sorted(Handoff.objects.values_list("summary", flat=True)) == [
        "first handoff",
        "second handoff",
    ]


def test_chain_continuation(teams, bot):
    triage, _ = bot_create(name="triage-bot")
    first = intake(to_agent="triage-bot", summary="Billing question, routing to triage.").handoff
    assert (first.status, first.hop_index, first.previous) == (Status.BOT_HOP, 0, None)

    second = intake(from_agent="triage-bot", summary="Needs a refund, over to billing.").handoff
    assert second.chain_id == first.chain_id
    assert second.hop_index == 1
    assert second.previous == first
    assert second.status == Status.WAITING

    third = intake(
        from_agent="billing-specialist", to_agent="tech-support", summary="Actually a bug."
    ).handoff
    assert (third.chain_id, third.hop_index, third.previous) == (second.chain_id, 2, second)

    other_customer = intake(customer="user-erin", from_agent="triage-bot").handoff
    assert other_customer.chain_id != first.chain_id
    assert other_customer.hop_index == 0

    unrelated = intake(from_agent="someone-else", summary="Fresh issue.").handoff
    assert unrelated.chain_id != first.chain_id
    assert unrelated.hop_index == 0


def test_resolved_hops_are_not_continued(teams):
    first = intake(to_agent="billing-specialist").handoff
    Handoff.objects.filter(pk=first.pk).update(status=Status.RESOLVED)
    again = intake(from_agent="billing-specialist", to_agent="tech-support").handoff
    assert again.hop_index == 0
    assert again.chain_id != first.chain_id


def test_only_hops_within_the_chain_window_are_continued(teams):
    """A customer's open hop older than ``CHAIN_WINDOW_DAYS`` starts no chain; a recent
    one does, even with an older open hop of theirs still around."""
    stale = intake(to_agent="billing-specialist").handoff
    long_ago = timezone.now() - timedelta(days=CHAIN_WINDOW_DAYS, hours=1)
    Handoff.objects.filter(pk=stale.pk).update(created_at=long_ago)
    fresh = intake(from_agent="billing-specialist", to_agent="tech-support").handoff
    assert (fresh.hop_index, fresh.previous) == (0, None)
    assert fresh.chain_id != stale.chain_id

    onward = intake(from_agent="tech-support", to_agent="billing-specialist").handoff
    assert (onward.hop_index, onward.previous, onward.chain_id) == (1, fresh, fresh.chain_id)


def test_event_row_is_written(teams, bot):
    result = intake(bot=bot)
    events = list(Event.objects.filter(handoff=result.handoff))
    assert len(events) == 1
    event = events[0]
    assert event.kind == "handoff.created"
    assert event.actor == "bot:tier1-bot"
    assert event.data == {
        "from": "tier1-bot",
        "to": "billing-specialist",
        "team": "billing-specialist",
        "misrouted": False,
        "memory_id": "",
        "bounce": "",
    }
    duplicate = intake(bot=bot)
    assert not duplicate.created
    assert duplicate.handoff == result.handoff
    assert Event.objects.count() == 1
    assert Event.objects.get(handoff=intake(summary="Other.").handoff).actor == "tier1-bot"


def test_intake_broadcasts_only_after_commit(
    teams, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(broadcast, "send", lambda group, event: sent.append(group))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        intake()
    # Nothing is sent inside the transaction; the doorbell waits for the commit.
    assert sent == []
    assert callbacks


def test_a_failed_store_makes_no_handoff(teams, bot):
    from handoffs.memory.base import MemoryNotFound

    with pytest.raises(MemoryNotFound):
        store_handoff_memory(bot, to_agent="billing-specialist", session_id="sess_missing")
    assert Handoff.objects.count() == 0
    assert Memory.objects.count() == 0


# ---------------------------------------------------------------- the API
def auth(key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def api_body(**overrides):
    return {
        "customer": "user-dave",
        "source_session_id": "sess_abc",
        "from_agent": "tier1-bot",
        "to_agent": "billing-specialist",
        "summary": SUMMARY,
        **overrides,
    }


def test_api_creates_a_handoff(client, bot_key, bot, teams):
    response = client.post(
        "/api/v1/handoffs",
        api_body(sentiment="frustrated", urgency="high", reason="refund", customer_name="Dave"),
        "application/json",
        **auth(bot_key),
    )
    assert response.status_code == 201
    body = response.json()
    assert body["created"] is True
    record = body["handoff"]
    assert set(record) >= HANDOFF_JSON_KEYS
    handoff = Handoff.objects.get()
    assert record["id"] == str(handoff.public_id)
    assert record["team"] == "billing-specialist"
    assert record["status"] == "waiting"
    assert (record["sentiment"], record["sentiment_source"]) == ("frustrated", "bot")
    assert (record["urgency"], record["urgency_source"]) == ("high", "bot")
    assert record["reason"] == "refund"
    assert record["customer_name"] == "Dave"
    assert record["importance"] == 1.0
    assert record["memory_id"] is None
    assert record["hop_index"] == 0
    assert handoff.created_by_bot == bot
    assert Event.objects.get(handoff=handoff).actor == "bot:tier1-bot"


def test_api_estimates_when_the_bot_does_not_say(client, bot_key, teams):
    response = client.post("/api/v1/handoffs", api_body(), "application/json", **auth(bot_key))
    record = response.json()["handoff"]
    assert record["sentiment_source"] == "estimated"
    assert record["urgency_source"] == "estimated"
    assert record["sentiment"] in {"positive", "neutral", "frustrated", "angry"}
    assert record["urgency"] in {"low", "normal", "high", "critical"}


def test_api_explicit_null_importance_means_the_default(client, bot_key, teams):
    response = client.post(
        "/api/v1/handoffs", api_body(importance=None), "application/json", **auth(bot_key)
    )
    assert response.status_code == 201
    assert response.json()["handoff"]["importance"] == 1.0


def test_api_bot_hop_and_misroute(client, bot_key, teams):
    bot_create(name="triage-bot")
    hop = client.post(
        "/api/v1/handoffs", api_body(to_agent="triage-bot"), "application/json", **auth(bot_key)
    ).json()["handoff"]
    assert (hop["status"], hop["team"], hop["misrouted"]) == ("bot_hop", None, False)
    lost = client.post(
        "/api/v1/handoffs", api_body(to_agent="nobody"), "application/json", **auth(bot_key)
    ).json()["handoff"]
    assert lost["misrouted"] is True
    assert lost["status"] == "waiting"
    assert lost["team"] == "general"


def test_api_get_handoff(client, bot_key, teams):
    created = client.post(
        "/api/v1/handoffs", api_body(), "application/json", **auth(bot_key)
    ).json()["handoff"]
    response = client.get(f"/api/v1/handoffs/{created['id']}", **auth(bot_key))
    assert response.status_code == 200
    assert response.json() == {"handoff": created}

    missing = client.get(f"/api/v1/handoffs/{uuid.uuid4()}", **auth(bot_key))
    assert missing.status_code == 404
    assert missing.json()["resource"] == "handoff"
    assert client.get(f"/api/v1/handoffs/{created['id']}").status_code == 401
    assert client.get("/api/v1/handoffs/not-a-uuid", **auth(bot_key)).status_code == 404


def test_api_get_reflects_a_handoff_made_from_memory(client, bot_key, bot, teams):
    stored = client.post(
        "/v1/memory/store",
        {
            "agent_id": "user-dave",
            "content": SUMMARY,
            "importance": 1.0,
            "metadata": {"type": "handoff", "to_agent": "billing-specialist"},
        },
        "application/json",
        **auth(bot_key),
    )
    assert stored.status_code == 200
    handoff = Handoff.objects.get()
    record = client.get(f"/api/v1/handoffs/{handoff.public_id}", **auth(bot_key)).json()
    assert record["handoff"]["memory_id"] == stored.json()["memory"]["id"]
    assert record["handoff"]["from_agent"] == "tier1-bot"
    assert record["handoff"]["source_session_id"] == ""


def test_api_chain_continuation(client, bot_key, teams):
    bot_create(name="triage-bot")
    first = client.post(
        "/api/v1/handoffs", api_body(to_agent="triage-bot"), "application/json", **auth(bot_key)
    ).json()["handoff"]
    second = client.post(
        "/api/v1/handoffs",
        api_body(from_agent="triage-bot", summary="Refund needed."),
        "application/json",
        **auth(bot_key),
    ).json()["handoff"]
    assert second["chain_id"] == first["chain_id"]
    assert second["hop_index"] == 1


def test_overlong_agent_names_in_metadata_do_not_break_the_store(teams, bot):
    """Metadata is free-form: a 300-character ``to_agent`` still stores (and is misrouted)."""
    result = store_handoff_memory(bot, to_agent="x" * 300, from_agent="y" * 300)
    handoff = Handoff.objects.get(memory_id=result["memory"]["id"])
    assert handoff.misrouted
    assert handoff.to_agent == "x" * 241
    assert handoff.from_agent == "y" * 241
