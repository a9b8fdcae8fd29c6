"""Connects in batches (``realtime.batching``): sockets opening together share their trips
to the database thread, and each still gets exactly what it would have got alone."""

from __future__ import annotations

import asyncio
import re
from importlib import import_module

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

from handoffs.access import agents as rights
from handoffs.desk import inbox, snapshots
from handoffs.lifecycle.accept import handoff_accept
from handoffs.lifecycle.presence import agents_set_presence
from handoffs.models import Agent, Event, Handoff, Presence, Team
from handoffs.realtime import batching
from handoffs.realtime.auth import authenticate_scope, authenticate_scopes
from tests import factories

from .test_consumers import socket

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def crew(make_agent, teams) -> dict[str, Agent]:
    Team.objects.update_or_create(slug="general", defaults={"name": "General", "is_default": True})
    return {
        "alice": make_agent("alice", teams=[teams["billing-specialist"]]),
        "bob": make_agent("bob", teams=[teams["billing-specialist"], teams["tech-support"]]),
        "carol": make_agent("carol"),  # no team: the default queue (no agent is in it)
        "sue": make_agent("sue", role="supervisor"),
    }


def _assigned_to(agent: Agent) -> Handoff:
    hop = factories.escalate("tech-support", summary=f"For {agent.user.username} only")
    Handoff.objects.filter(pk=hop.pk).update(assigned_to=agent)
    return hop


@pytest.mark.pg
def test_batched_reads_agree_with_one_agent_at_a_time(crew):
    agents = list(crew.values())
    served = rights.served_teams_many(agents)
    for agent in agents:
        assert sorted(pk for pk, _slug in served[agent.pk]) == sorted(rights.served_team_ids(agent))
    assert [slug for _pk, slug in served[crew["carol"].pk]] == ["general"]

    for name in ("alice", "bob"):
        handoff_accept(handoff_id=factories.escalate("billing-specialist").pk, agent=crew[name])
    handoff_accept(handoff_id=factories.escalate("billing-specialist").pk, agent=crew["alice"])
    badges = inbox.badge_entries_many(agents)
    for agent in agents:
        assert badges[agent.pk] == inbox.badge_entries(agent=agent)
    assert len(badges[crew["alice"].pk]) == 2 and len(badges[crew["bob"].pk]) == 1

    mine = _assigned_to(crew["bob"])
    own = snapshots.own_rows_many(agents)
    for agent in agents:
        assert own[agent.pk] == snapshots._own_rows(agent)
    assert f'id="handoff-{mine.pk}"' in own[crew["bob"].pk]
    assert own[crew["alice"].pk] == ""


def _session(user, *, auth_hash: str | None = None, key: str | None = None):
    store = import_module(settings.SESSION_ENGINE).SessionStore
    session = store()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = auth_hash or user.get_session_auth_hash()
    session.create()
    return store(session.session_key if key is None else key)


@pytest.mark.pg
def test_authenticating_a_batch_decides_each_session_as_alone(crew):
    alice, bob = crew["alice"], crew["bob"]
    make = [
        lambda: _session(alice.user),
        lambda: _session(alice.user),  # a second socket of hers in the same batch
        lambda: _session(bob.user, auth_hash="stale"),  # password changed since
        lambda: _session(bob.user, key="no-such-session-key-000000000000"),
    ]
    alone = [authenticate_scope(m()) for m in make]
    together = authenticate_scopes([m() for m in make])
    for (user_a, agent_a), (user_b, agent_b) in zip(alone, together, strict=True):
        assert user_a == user_b
        assert getattr(agent_a, "pk", None) == getattr(agent_b, "pk", None)
    assert together[0][1].pk == together[1][1].pk == alice.pk
    assert together[0][1] is not together[1][1]  # each consumer keeps its own profile
    assert not together[2][0].is_authenticated and not together[3][0].is_authenticated


def test_presence_for_a_batch_changes_only_what_changes(crew):
    alice, bob, carol = crew["alice"], crew["bob"], crew["carol"]
    Agent.objects.filter(pk=bob.pk).update(presence=Presence.ONLINE)
    bob.refresh_from_db()
    before = Event.objects.filter(kind="agent.presence").count()
    changed = agents_set_presence(agents=[alice, bob, carol], presence=Presence.ONLINE)
    assert sorted(a.pk for a in changed) == sorted([alice.pk, carol.pk])
    assert Event.objects.filter(kind="agent.presence").count() == before + 2
    assert set(
        Agent.objects.filter(pk__in=[alice.pk, bob.pk, carol.pk]).values_list("presence", flat=True)
    ) == {Presence.ONLINE}
    assert agents_set_presence(agents=[alice, carol], presence=Presence.ONLINE) == []


@pytest.mark.asyncio
async def test_calls_waiting_together_go_in_one_batch_and_fail_alone():
    batches: list[list[int]] = []

    def work(items):
        batches.append(list(items))
        return batching.each(lambda n: 1 // (n - 3) if n == 3 else n * 10, items)

    commit = batching.GroupCommit(work)
    results = await asyncio.gather(*(commit(n) for n in range(5)), return_exceptions=True)
    assert batches == [[0, 1, 2, 3, 4]]
    assert results[:3] == [0, 10, 20] and results[4] == 40
    assert isinstance(results[3], ZeroDivisionError)
    assert await commit(7) == 70 and batches[-1] == [7]


@pytest.mark.asyncio
@pytest.mark.usefixtures("fresh_socket_counts")
async def test_queue_sockets_opening_together_each_get_their_own_queue(crew):
    alice, bob, carol = crew["alice"], crew["bob"], crew["carol"]
    billing = await sync_to_async(factories.escalate)("billing-specialist")
    for_bob = await sync_to_async(_assigned_to)(bob)
    clients = {}
    for name in ("alice", "bob", "carol"):
        clients[name] = await sync_to_async(factories.logged_in)(crew[name])
    async with (
        socket("/ws/queue/", client=clients["alice"]) as a,
        socket("/ws/queue/", client=clients["bob"]) as b,
        socket("/ws/queue/", client=clients["carol"]) as c,
    ):
        opened = await asyncio.gather(a.connect(), b.connect(), c.connect())
        assert [ok for ok, _code in opened] == [True, True, True]
        frames = {
            "alice": await a.receive_from(timeout=3),
            "bob": await b.receive_from(timeout=3),
            "carol": await c.receive_from(timeout=3),
        }
        shown = {
            name: set(map(int, re.findall(r'id="handoff-(\d+)"', frame)))
            for name, frame in frames.items()
        }
        assert shown == {"alice": {billing.pk}, "bob": {billing.pk, for_bob.pk}, "carol": set()}
        for frame in frames.values():
            assert 'id="queue-seq"' in frame and 'id="nav-unread"' in frame
        online = await sync_to_async(
            lambda: set(
                Agent.objects.filter(pk__in=[alice.pk, bob.pk, carol.pk]).values_list(
                    "presence", flat=True
                )
            )
        )()
        assert online == {Presence.ONLINE}
