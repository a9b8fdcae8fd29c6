"""A store counts into its session and moves its activity clock only while it is open."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from handoffs.memory.embedded import EmbeddedStore
from handoffs.memory.models import MemorySession

pytestmark = [pytest.mark.django_db, pytest.mark.pg]


def test_storing_counts_and_keeps_an_open_session_alive():
    store = EmbeddedStore()
    session = store.start_session(agent_id="user-cnt")["session"]
    an_hour_ago = timezone.now() - dt.timedelta(hours=1)
    MemorySession.objects.filter(pk=session["id"]).update(last_activity_at=an_hour_ago)

    store.store(agent_id="user-cnt", content="first", session_id=session["id"])
    store.store_batch(
        agent_id="user-cnt",
        memories=[
            {"content": "second", "session_id": session["id"]},
            {"content": "third", "session_id": session["id"]},
        ],
    )

    row = MemorySession.objects.get(pk=session["id"])
    assert row.memory_count == 3
    assert row.last_activity_at > an_hour_ago + dt.timedelta(minutes=59)


def test_storing_into_an_ended_session_counts_but_leaves_its_clock():
    store = EmbeddedStore()
    session = store.start_session(agent_id="user-end")["session"]
    store.end_session(session_id=session["id"])
    ended = MemorySession.objects.get(pk=session["id"])
    an_hour_ago = timezone.now() - dt.timedelta(hours=1)
    MemorySession.objects.filter(pk=session["id"]).update(last_activity_at=an_hour_ago)

    answer = store.store(agent_id="user-end", content="late note", session_id=session["id"])

    row = MemorySession.objects.get(pk=session["id"])
    assert answer["session_state"] == "ended"
    assert row.memory_count == ended.memory_count + 1
    assert row.last_activity_at == an_hour_ago
