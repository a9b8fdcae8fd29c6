"""Migration 0006 (issue 12): existing keys keep their reach, orphan conversations get
the bot of their first hop."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.pg

BEFORE = [("handoffs", "0005_report_indexes")]
AFTER = [("handoffs", "0006_bot_key_scope_and_conversation_owner")]


@pytest.fixture
def back_to_the_latest_schema():
    """Whatever the test did, later tests get every migration applied again."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("back_to_the_latest_schema")
def test_existing_keys_keep_write_and_every_namespace_and_orphans_get_an_owner():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    Bot = old.get_model("handoffs", "Bot")
    Conversation = old.get_model("handoffs", "Conversation")
    Handoff = old.get_model("handoffs", "Handoff")
    bot = Bot.objects.create(name="tier1-bot", key_prefix="abcdefabcdef", key_hash="0" * 64)
    orphan = Conversation.objects.create(customer="user-dave", token="t-1")
    alone = Conversation.objects.create(customer="user-erin", token="t-2")
    common = {"summary": "s", "sentiment": "neutral", "urgency": "normal"}
    Handoff.objects.create(
        customer="user-dave",
        from_agent="tier1-bot",
        to_agent="billing",
        dedupe_key="d1",
        conversation=orphan,
        created_by_bot=bot,
        **common,
    )
    Handoff.objects.create(
        customer="user-erin",
        from_agent="human:x",
        to_agent="billing",
        dedupe_key="d2",
        conversation=alone,
        **common,
    )

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    migrated = new.get_model("handoffs", "Bot").objects.get(pk=bot.pk)
    assert (migrated.scope, migrated.namespaces) == ("write", "")
    conversations = new.get_model("handoffs", "Conversation").objects
    assert conversations.get(pk=orphan.pk).bot_id == bot.pk
    assert conversations.get(pk=alone.pk).bot_id is None
