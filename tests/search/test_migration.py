"""Migration 0010 (issue 14): what is already in the database is searchable once it ran,
and rolling it back removes the index cleanly, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from handoffs.search.index import text_index

pytestmark = pytest.mark.pg

BEFORE = [("handoffs", "0009_inbox_read_state_time_zone")]
AFTER = [("handoffs", "0010_search_index")]


@pytest.fixture
def back_to_the_latest_schema():
    """Whatever the test did, later tests get every migration applied again."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def search_objects() -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE name LIKE 'search_%%'")
        else:
            cursor.execute(
                "SELECT table_name || '.' || column_name FROM information_schema.columns "
                "WHERE column_name = 'search' AND table_name LIKE 'handoffs_%%'"
            )
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("back_to_the_latest_schema")
def test_existing_rows_are_indexed_and_the_rollback_is_clean():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    assert search_objects() == set()
    old = executor.loader.project_state(BEFORE).apps
    Conversation = old.get_model("handoffs", "Conversation")
    Message = old.get_model("handoffs", "Message")
    Handoff = old.get_model("handoffs", "Handoff")
    conversation = Conversation.objects.create(customer="user-olga", customer_name="Olga Ostrich")
    Message.objects.create(
        conversation=conversation, seq=1, client_id="c1", sender="customer", body="a quince jam"
    )
    Handoff.objects.create(
        customer="user-olga",
        from_agent="tier1-bot",
        to_agent="billing",
        summary="Customer asks about quince",
        sentiment="neutral",
        urgency="normal",
        sentiment_source="bot",
        urgency_source="bot",
        dedupe_key="d-1",
        conversation=conversation,
    )

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    from handoffs.search.index import HopCondition, Rights

    everything = Rights(HopCondition("1 = 1", ()), HopCondition("1 = 1", ()))
    index = text_index()
    assert len(index.messages(terms=["quince", "jam"], rights=everything, limit=5)) == 1
    assert len(index.handoffs(terms=["quince"], rights=everything, limit=5)) == 1
    assert len(index.conversations(terms=["ostrich"], rights=everything, limit=5)) == 1
    assert search_objects()

    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    assert search_objects() == set()
