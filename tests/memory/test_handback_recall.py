"""Hand back to the bot: the bot, using the unmodified ``dakera`` SDK against the live
Daphne, recalls the human's handback note first with the query "handoff tier1-bot".

The namespace is made to compete: the bot's own escalation (also a handoff memory from
tier1-bot, importance 1.0), its earlier turns, and the chat copied into the human's
session, one customer message naming both query words.
"""

from __future__ import annotations

import pytest
from dakera import DakeraClient

from handoffs.delivery import outbox
from handoffs.lifecycle.accept import handoff_accept
from handoffs.lifecycle.endings import handoff_hand_back
from handoffs.lifecycle.messages import message_post
from handoffs.models import Handoff, MemoryWrite, OutboxStatus, Sender, Status

pytestmark = [pytest.mark.pg, pytest.mark.django_db(transaction=True)]

CUSTOMER = "user-dave"
SUMMARY = (
    "Customer ACC-4521 (since 2024) reports $100 billing overcharge. Verified plan is "
    "$199/mo but last invoice shows $299. Customer tone: frustrated but polite. Needs "
    "refund or explanation."
)
NOTE = "Refunded the $100 overcharge (ref RF-2291); customer only wants the receipt resent."


def sdk(url: str, key: str) -> DakeraClient:
    return DakeraClient(url, api_key=key, max_retries=1, timeout=10)


def test_the_bot_recalls_the_handback_note_first(live_server_url, bot_key, teams, make_agent):
    alice = make_agent("alice", teams=[teams["billing-specialist"]])
    client = sdk(live_server_url, bot_key)

    # The bot's part, as in the seed scenario: its turns, then the escalation.
    session = client.start_session(CUSTOMER, metadata={"agent": "tier1-bot", "channel": "chat"})
    sid = session["id"]
    client.store_memory(
        CUSTOMER,
        "User reports billing discrepancy: charged $299 but plan is $199/mo",
        importance=0.9,
        metadata={"type": "issue"},
        session_id=sid,
    )
    client.store_memory(
        CUSTOMER,
        "User has been a customer since 2024. Account ID: ACC-4521.",
        importance=0.8,
        metadata={"type": "context"},
        session_id=sid,
    )
    escalation = client.store_memory(
        CUSTOMER,
        SUMMARY,
        importance=1.0,
        metadata={"type": "handoff", "from_agent": "tier1-bot", "to_agent": "billing-specialist"},
        session_id=sid,
    )
    client.end_session(sid, summary="Bot->human handoff: billing overcharge")
    handoff = Handoff.objects.get(memory_id=escalation["id"])

    # The human's part: accept, chat (copied into the human's session), hand back.
    handoff_accept(handoff_id=handoff.pk, agent=alice)
    conversation = handoff.conversation
    message_post(
        conversation=conversation,
        sender=Sender.CUSTOMER,
        body="The tier1-bot handoff took ages, but thanks for the refund.",
        client_id="c-1",
    )
    message_post(
        conversation=conversation,
        sender=Sender.AGENT,
        body="Done: the $100 is on its way back to your card.",
        client_id="a-1",
        agent=alice,
    )
    back = handoff_hand_back(handoff_id=handoff.pk, agent=alice, note=NOTE)
    outbox.apply_memory_writes()  # what the after-commit kick or the worker does
    assert not MemoryWrite.objects.exclude(status=OutboxStatus.DONE).exists()
    back.refresh_from_db()
    assert back.status == Status.BOT_HOP
    assert back.to_agent == "tier1-bot"
    assert back.memory_id

    # The bot comes back and asks its memory what happened.
    recall = client.recall(CUSTOMER, "handoff tier1-bot", top_k=5)
    memories = recall.memories
    assert len(memories) == 5
    first = memories[0]
    assert first.id == back.memory_id
    assert first.content == f"HANDBACK to tier1-bot from human:alice: {NOTE}"
    assert first.importance == 1.0
    assert first.metadata["type"] == "handoff"
    assert first.metadata["from_agent"] == "human:alice"
    assert first.metadata["to_agent"] == "tier1-bot"
    # The bot's own escalation ranks below the answer to it.
    assert escalation["id"] in [m.id for m in memories[1:]]
    # The human's chat is in the namespace too, in the human's (now ended) session.
    handoff.refresh_from_db()
    assert back.source_session_id == handoff.human_session_id
    human = client.session_memories(handoff.human_session_id)
    assert [m["content"] for m in human][:2] == [
        "The tier1-bot handoff took ages, but thanks for the refund.",
        "Done: the $100 is on its way back to your card.",
    ]
    assert human[-1]["id"] == back.memory_id
