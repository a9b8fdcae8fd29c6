"""Timers with a controllable clock: ``run_due(now=...)`` is handed the time.

SLA alerts fire once per handoff however often the worker passes; an unanswered
conversation alerts once and, where the team says so, goes back to the queue once,
audited. The marks are claimed by conditional UPDATEs, so racing workers can't double up.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection

from handoffs.delivery import outbox
from handoffs.lifecycle import timers
from handoffs.lifecycle.accept import handoff_accept, open_conversations
from handoffs.lifecycle.messages import message_post
from handoffs.models import Event, Handoff, Sender, Status
from handoffs.realtime import broadcast
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.pg]


escalate = factories.escalate


def kinds(handoff: Handoff) -> list[str]:
    return list(
        Event.objects.filter(handoff=handoff)
        .exclude(kind__in=["handoff.created", "handoff.accepted"])
        .values_list("kind", flat=True)
    )


# ---------------------------------------------------------------- SLA
def test_breach_alert_fires_once(teams, sent):
    team = teams["billing-specialist"]
    team.warn_after_secs, team.breach_after_secs = 120, 300
    team.save()
    handoff = escalate(customer_name="Dana Whitfield")
    t0 = handoff.created_at

    assert not timers.run_due(now=t0 + timedelta(seconds=119)).fired
    assert kinds(handoff) == []

    result = timers.run_due(now=t0 + timedelta(seconds=120))
    assert result.warned == [handoff.pk] and result.breached == []
    assert not timers.run_due(now=t0 + timedelta(seconds=299)).fired
    assert kinds(handoff) == ["sla.warn"]

    sent.clear()
    result = timers.run_due(now=t0 + timedelta(seconds=300))
    assert result.breached == [handoff.pk] and result.warned == []
    breach = Event.objects.get(handoff=handoff, kind="sla.breach")
    assert breach.actor == "system"
    assert breach.data == {"team": "billing-specialist", "waited_secs": 300, "threshold_secs": 300}
    assert breach.created_at == t0 + timedelta(seconds=300)  # the timer's clock
    # The supervisors are told: the floor is re-rendered (once) and lists the alert.
    floor_events = [event for group, event in sent if group == broadcast.FLOOR]
    assert len(floor_events) == 1
    assert floor_events[0]["type"] == "floor.update"
    assert "SLA breach</strong>: Dana Whitfield waited 5m 00s" in floor_events[0]["html"]

    # Later passes, however many, fire nothing more.
    for later in (301, 600, 86_400):
        assert not timers.run_due(now=t0 + timedelta(seconds=later)).fired
    assert kinds(handoff) == ["sla.warn", "sla.breach"]
    assert Handoff.objects.get(pk=handoff.pk).sla_breached_at == t0 + timedelta(seconds=300)


def test_a_handoff_found_past_breach_alerts_breach_only(teams, sent):
    handoff = escalate()
    timers.run_due(now=handoff.created_at + timedelta(hours=2))
    timers.run_due(now=handoff.created_at + timedelta(hours=3))
    assert kinds(handoff) == ["sla.breach"]


def test_accepted_handoffs_never_breach(teams, make_agent, sent):
    alice = make_agent("alice", teams=[teams["billing-specialist"]])
    handoff = escalate()
    handoff_accept(handoff_id=handoff.pk, agent=alice)
    timers.run_due(now=handoff.created_at + timedelta(hours=1))
    assert not Event.objects.filter(kind__startswith="sla.").exists()


def test_thresholds_are_per_team(teams, sent):
    teams["tech-support"].breach_after_secs = 60
    teams["tech-support"].save()
    billing, tech = escalate("billing-specialist"), escalate("tech-support")
    result = timers.run_due(now=max(billing.created_at, tech.created_at) + timedelta(seconds=90))
    assert result.breached == [tech.pk]
    assert result.warned == []  # billing's warn is at 120 s


def test_the_mark_is_claimed_once(teams):
    """Two workers that both saw the handoff as due: only one claim succeeds."""
    handoff = escalate()
    now = handoff.created_at + timedelta(hours=1)
    team = teams["billing-specialist"]
    claims = [
        timers._mark(
            handoff.pk,
            "sla_breached_at",
            now,
            kind="sla.breach",
            team=team,
            since=handoff.created_at,
        )
        for _ in range(2)
    ]
    assert claims == [True, False]
    assert Event.objects.filter(kind="sla.breach").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_alert_once(teams):
    handoffs = [escalate() for _ in range(5)]
    now = max(h.created_at for h in handoffs) + timedelta(hours=1)
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            timers.run_due(now=now)
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Event.objects.filter(kind="sla.breach").count() == 5
    assert Event.objects.filter(kind="sla.warn").count() == 0


# ---------------------------------------------------------------- unanswered conversations
@pytest.fixture
def accepted(teams, make_agent):
    """A billing conversation alice accepted (and hasn't answered)."""
    alice = make_agent("alice", teams=[teams["billing-specialist"]])
    handoff = escalate(customer_name="Lee Park")
    return handoff_accept(handoff_id=handoff.pk, agent=alice), alice


def test_unanswered_alerts_once_without_requeue(accepted, sent):
    handoff, alice = accepted
    t = handoff.accepted_at
    assert not timers.run_due(now=t + timedelta(seconds=299)).unanswered
    result = timers.run_due(now=t + timedelta(seconds=300))
    assert result.unanswered == [handoff.pk] and result.requeued == []
    event = Event.objects.get(kind="conversation.unanswered")
    assert event.handoff_id == handoff.pk and event.actor == "system"
    assert event.data["agent"] == "alice" and event.data["unanswered_secs"] == 300
    for later in (301, 3_600):
        assert not timers.run_due(now=t + timedelta(seconds=later)).fired
    handoff.refresh_from_db()
    assert handoff.status == Status.ACCEPTED and handoff.accepted_by == alice
    assert Event.objects.filter(kind="conversation.unanswered").count() == 1


def test_requeue_happens_once_and_is_audited(
    teams, accepted, make_agent, sent, django_capture_on_commit_callbacks
):
    team = teams["billing-specialist"]
    team.requeue_unanswered = True
    team.unanswered_after_secs = 120
    team.save()
    handoff, alice = accepted
    t = handoff.accepted_at

    with django_capture_on_commit_callbacks(execute=True):
        result = timers.run_due(now=t + timedelta(seconds=120))
    assert result.unanswered == [handoff.pk] and result.requeued == [handoff.pk]
    handoff.refresh_from_db()
    assert handoff.status == Status.WAITING
    assert handoff.accepted_by is None and handoff.accepted_at is None
    assert handoff.requeued_at == t + timedelta(seconds=120)
    requeued = Event.objects.get(kind="handoff.requeued")
    assert requeued.actor == "system" and requeued.handoff_id == handoff.pk
    assert requeued.data["agent"] == "alice" and requeued.data["reason"] == "unanswered"
    assert kinds(handoff) == ["conversation.unanswered", "handoff.requeued"]
    # Back in the team's queue, on the floor, and alice is told.
    groups = [group for group, _ in sent]
    assert broadcast.queue_group("billing-specialist") in groups
    assert broadcast.FLOOR in groups
    notices = [
        e
        for g, e in sent
        if g == broadcast.user_group(alice.user_id) and e["type"] == "user.notice"
    ]
    assert notices and "went back to the queue" in notices[0]["html"]
    assert open_conversations(alice) == 0

    # Someone else takes it; it is never requeued (or alerted) a second time.
    bob = make_agent("bob", teams=[team])
    handoff_accept(handoff_id=handoff.pk, agent=bob)
    for later in (600, 86_400):
        assert not timers.run_due(now=t + timedelta(seconds=later)).fired
    handoff.refresh_from_db()
    assert handoff.status == Status.ACCEPTED and handoff.accepted_by == bob
    assert Event.objects.filter(kind="handoff.requeued").count() == 1


def test_an_answered_customer_is_not_unanswered_until_they_write_again(accepted, sent):
    handoff, alice = accepted
    reply = message_post(
        conversation=handoff.conversation,
        sender=Sender.AGENT,
        body="Hi Lee, I'm on it.",
        client_id="a-1",
        agent=alice,
    ).message
    assert not timers.run_due(now=reply.created_at + timedelta(hours=5)).fired
    question = message_post(
        conversation=handoff.conversation,
        sender=Sender.CUSTOMER,
        body="Any news?",
        client_id="c-1",
    ).message
    assert not timers.run_due(now=question.created_at + timedelta(seconds=299)).fired
    result = timers.run_due(now=question.created_at + timedelta(seconds=300))
    assert result.unanswered == [handoff.pk]


def test_zero_turns_the_unanswered_timer_off(teams, accepted, sent):
    teams["billing-specialist"].unanswered_after_secs = 0
    teams["billing-specialist"].save()
    handoff, _ = accepted
    assert not timers.run_due(now=handoff.accepted_at + timedelta(days=1)).unanswered


def test_the_worker_loop_runs_the_timers(monkeypatch, settings):
    settings.SERVING_TIMERS = False  # scale-out: the worker runs them
    calls = []
    monkeypatch.setattr(timers, "run_due", lambda now=None: calls.append(now))
    monkeypatch.setattr(outbox, "apply_memory_writes", lambda: 0)
    monkeypatch.setattr(outbox, "deliver_webhooks", lambda client: 0)
    call_command("run_worker", "--once")
    assert calls == [None]


def test_the_worker_leaves_the_timers_to_a_serving_process(monkeypatch, settings):
    """Embedded mode (SERVING_TIMERS): the Daphne process runs them, so their pushes reach
    its pages through its in-memory channel layer; a worker running them too would push
    into a layer no page listens to."""
    settings.SERVING_TIMERS = True
    calls = []
    monkeypatch.setattr(timers, "run_due", lambda now=None: calls.append(now))
    monkeypatch.setattr(outbox, "apply_memory_writes", lambda: 0)
    monkeypatch.setattr(outbox, "deliver_webhooks", lambda client: 0)
    call_command("run_worker", "--once")
    assert calls == []


def test_a_timer_failure_does_not_stop_the_outbox(monkeypatch, caplog, settings):
    settings.SERVING_TIMERS = False
    delivered = []

    def broken(now=None):
        raise RuntimeError("boom")

    monkeypatch.setattr(timers, "run_due", broken)
    monkeypatch.setattr(outbox, "apply_memory_writes", lambda: delivered.append("m") or 0)
    monkeypatch.setattr(outbox, "deliver_webhooks", lambda client: 0)
    call_command("run_worker", "--once")
    assert delivered == ["m"]
    assert "periodic task broken failed" in caplog.text
