"""Accept: exactly one agent wins a handoff, on SQLite and on PostgreSQL.

The race harness starts one thread per agent (each thread has its own database
connection), lines them up on a barrier and lets them all accept the same waiting
handoff at once. ``race_problems`` lists every way the outcome breaks the invariant
(one winner, everyone else a 409, one audit row, one broadcast).

Why a second harness run against a naive accept: a race test that can't fail proves
nothing. ``naive_accept`` reads the status, sleeps a little and then saves, the
read-then-write a refactor could slip in. On PostgreSQL (READ COMMITTED) every thread
reads "waiting" before anyone writes, so the harness sees many winners. On SQLite the
project opens every transaction with ``BEGIN IMMEDIATE`` (settings: ``transaction_mode``),
which takes the write lock before the read, so writers queue and even the naive version
has one winner: SQLite hides this class of bug, which is why this module is marked
``pg`` and ``make test`` runs it again on PostgreSQL. The naive test asserts whichever
behaviour the current database must show, so it documents both instead of skipping one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from unittest import mock

import pytest
from django.db import connection, transaction
from django.utils import timezone

from handoffs.lifecycle.accept import handoff_accept
from handoffs.lifecycle.errors import AgentAtCapacity, HandoffConflict, HandoffNotFound
from handoffs.models import Agent, Event, Handoff, Status
from handoffs.realtime import broadcast
from tests import factories

pytestmark = [pytest.mark.pg, pytest.mark.django_db(transaction=True)]

RACERS = 50
Accept = Callable[..., Handoff]


def escalate(team_slug: str, *, summary: str = "Customer was double charged") -> Handoff:
    """One waiting handoff routed to ``team_slug``."""
    return factories.escalate(team_slug, summary=summary, sentiment="neutral", urgency="normal")


@dataclass
class RaceResult:
    winners: list[Agent] = field(default_factory=list)
    conflicts: list[HandoffConflict] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    accepted_events: int = 0
    accepted_broadcasts: int = 0


def run_race(accept: Accept, *, handoff: Handoff, agents: list[Agent]) -> RaceResult:
    """All ``agents`` call ``accept`` on ``handoff`` at the same moment, one thread each."""
    barrier = threading.Barrier(len(agents))
    lock = threading.Lock()
    result = RaceResult()
    published: list[tuple[int, str]] = []

    def record_publish(handoff_id: int, change: str) -> None:
        with lock:
            published.append((handoff_id, change))

    def attempt(agent: Agent) -> None:
        try:
            connection.ensure_connection()  # connect before the barrier, not in the race
            barrier.wait(timeout=30)
            accept(handoff_id=handoff.pk, agent=agent)
        except HandoffConflict as exc:
            with lock:
                result.conflicts.append(exc)
        except Exception as exc:
            with lock:
                result.errors.append(exc)
        else:
            with lock:
                result.winners.append(agent)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(agent,)) for agent in agents]
    with mock.patch(
        "handoffs.realtime.broadcast.publish_handoff_change", side_effect=record_publish
    ) as publish:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a racer hung"
    assert publish.call_count == len(published)
    result.accepted_events = Event.objects.filter(handoff=handoff, kind="handoff.accepted").count()
    result.accepted_broadcasts = published.count((handoff.pk, "accepted"))
    return result


def race_problems(result: RaceResult, *, racers: int) -> list[str]:
    """Every way ``result`` breaks "exactly one winner" (empty when it holds)."""
    problems = []
    if len(result.winners) != 1:
        problems.append(f"{len(result.winners)} winners")
    if len(result.conflicts) != racers - 1:
        problems.append(f"{len(result.conflicts)} conflicts")
    if result.errors:
        problems.append(f"unexpected errors: {result.errors[:3]!r}")
    if result.accepted_events != 1:
        problems.append(f"{result.accepted_events} handoff.accepted events")
    if result.accepted_broadcasts != 1:
        problems.append(f"{result.accepted_broadcasts} 'accepted' broadcasts")
    return problems


def naive_accept(*, handoff_id: int, agent: Agent) -> Handoff:
    """The broken way: read the status, think a little, then save. Never do this."""
    with transaction.atomic():
        handoff = Handoff.objects.get(pk=handoff_id)
        if handoff.status != Status.WAITING:
            raise HandoffConflict("Already accepted.")
        time.sleep(0.05)
        handoff.status = Status.ACCEPTED
        handoff.accepted_by = agent
        handoff.accepted_at = timezone.now()
        handoff.save(update_fields=["status", "accepted_by", "accepted_at"])
        Event.objects.create(handoff=handoff, kind="handoff.accepted", actor=agent.memory_name)
        broadcast.handoff_changed_on_commit(handoff_id=handoff.pk, change="accepted")
    return handoff


@pytest.fixture
def racers(make_agent, teams) -> list[Agent]:
    return [make_agent(f"racer{i:02d}", teams=[teams["billing-specialist"]]) for i in range(RACERS)]


def test_fifty_concurrent_accepts_have_exactly_one_winner(racers, teams):
    handoff = escalate("billing-specialist")

    result = run_race(handoff_accept, handoff=handoff, agents=racers)

    assert race_problems(result, racers=RACERS) == []
    (winner,) = result.winners
    handoff.refresh_from_db()
    assert handoff.status == Status.ACCEPTED
    assert handoff.accepted_by_id == winner.pk
    assert {exc.status for exc in result.conflicts} == {409}
    assert {exc.message for exc in result.conflicts} == {
        f"Already accepted by {winner.user.get_full_name()}."
    }
    event = Event.objects.get(handoff=handoff, kind="handoff.accepted")
    assert event.actor == f"human:{winner.user.username}"


def test_naive_read_then_write_accept_loses_the_race_on_postgresql(racers, teams):
    """The same harness catches a read-then-write accept, where the database can show it.

    PostgreSQL: every racer reads "waiting" during the sleep, so many win and each
    writes an audit row and a broadcast. SQLite: ``BEGIN IMMEDIATE`` serialises the
    whole read-sleep-write, so the naive version still has one winner there (the
    reason this module also runs on PostgreSQL).
    """
    handoff = escalate("billing-specialist")

    result = run_race(naive_accept, handoff=handoff, agents=racers)

    if connection.vendor == "postgresql":
        assert len(result.winners) > 1
        assert result.accepted_events == len(result.winners)
        assert result.accepted_broadcasts == len(result.winners)
        assert race_problems(result, racers=RACERS) != []
    else:
        assert connection.vendor == "sqlite"
        assert race_problems(result, racers=RACERS) == []


def test_agent_at_capacity_is_told_why(make_agent, teams):
    agent = make_agent("carol", teams=[teams["billing-specialist"]])
    assert agent.capacity == 3
    for _ in range(3):
        handoff_accept(handoff_id=escalate("billing-specialist").pk, agent=agent)
    fourth = escalate("billing-specialist")

    with pytest.raises(AgentAtCapacity) as caught:
        handoff_accept(handoff_id=fourth.pk, agent=agent)

    assert caught.value.status == 409
    assert caught.value.message == (
        "You already have 3 open conversations (your limit). "
        "Resolve or transfer one before accepting another."
    )
    fourth.refresh_from_db()
    assert fourth.status == Status.WAITING
    assert fourth.accepted_by is None
    assert not Event.objects.filter(handoff=fourth, kind="handoff.accepted").exists()


def test_accept_view_at_capacity_answers_409_with_the_reason(client, make_agent, teams):
    agent = make_agent("carol", teams=[teams["billing-specialist"]], capacity=1)
    handoff_accept(handoff_id=escalate("billing-specialist").pk, agent=agent)
    second = escalate("billing-specialist")
    client.force_login(agent.user)

    response = client.post(f"/handoffs/{second.pk}/accept", headers={"HX-Request": "true"})

    assert response.status_code == 409
    assert "You already have 1 open conversations (your limit)." in response.text
    second.refresh_from_db()
    assert second.status == Status.WAITING


def test_agent_of_another_team_gets_404_and_changes_nothing(client, make_agent, teams):
    outsider = make_agent("tess", teams=[teams["tech-support"]])
    handoff = escalate("billing-specialist")
    with pytest.raises(HandoffNotFound):
        handoff_accept(handoff_id=handoff.pk, agent=outsider)
    client.force_login(outsider.user)

    response = client.post(f"/handoffs/{handoff.pk}/accept")

    assert response.status_code == 404
    assert "no such handoff in your queues" in response.text
    handoff.refresh_from_db()
    assert handoff.status == Status.WAITING
    assert handoff.accepted_by is None
    assert not Event.objects.filter(handoff=handoff, kind="handoff.accepted").exists()


def test_winner_lands_in_the_conversation_and_late_click_gets_409(client, make_agent, teams):
    alice = make_agent("alice", teams=[teams["billing-specialist"]])
    bob = make_agent("bob", teams=[teams["billing-specialist"]])
    handoff = escalate("billing-specialist")

    client.force_login(alice.user)
    won = client.post(f"/handoffs/{handoff.pk}/accept", headers={"HX-Request": "true"})
    assert won.status_code == 200
    assert won.headers["HX-Redirect"] == f"/conversations/{handoff.pk}/"

    client.force_login(bob.user)
    late = client.post(f"/handoffs/{handoff.pk}/accept", headers={"HX-Request": "true"})

    assert late.status_code == 409
    assert "Already accepted by Alice." in late.text
    assert "<html" not in late.text
    handoff.refresh_from_db()
    assert handoff.accepted_by_id == alice.pk
    assert Event.objects.filter(handoff=handoff, kind="handoff.accepted").count() == 1
