"""End of shift (``handoffs.lifecycle.shifts``): drafted handovers, the one-step handover
per conversation, the automatic handover of an agent who went offline, and the pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from handoffs.lifecycle import accept, offers, shifts
from handoffs.lifecycle.errors import HandoffError
from handoffs.lifecycle.messages import message_post
from handoffs.models import (
    Agent,
    Event,
    Handoff,
    MemoryWrite,
    Message,
    Presence,
    Sender,
    ShiftHandover,
    Status,
)
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(teams, make_agent):
    team = teams["billing-specialist"]
    alice = make_agent("alice", teams=[team])
    bob = make_agent("bob", teams=[team])
    Agent.objects.filter(pk__in=[alice.pk, bob.pk]).update(presence=Presence.ONLINE)
    alice.refresh_from_db()
    bob.refresh_from_db()
    return alice, bob


def open_conversation(agent, summary="Customer was charged twice for order 1182."):
    hop = factories.escalate("billing-specialist", summary=summary)
    accept.handoff_accept(handoff_id=hop.pk, agent=agent)
    hop.refresh_from_db()
    return hop


def say(hop, sender, body, agent=None):
    message_post(
        conversation=hop.conversation,
        sender=sender,
        body=body,
        client_id=f"{sender}-{abs(hash(body))}",
        agent=agent,
    )


def test_the_draft_tells_what_happened_since_the_handoff(people):
    alice, _ = people
    hop = open_conversation(alice)
    say(hop, Sender.AGENT, "I can see two charges, checking with the bank.", alice)
    say(hop, Sender.NOTE, "Bank ticket #4471 opened, answer due tomorrow.", alice)
    say(hop, Sender.CUSTOMER, "This is ridiculous, when do I get my money back?")

    draft = shifts.draft_handover(hop)

    assert draft.original_summary == "Customer was charged twice for order 1182."
    assert draft.notes == ["Bank ticket #4471 opened, answer due tomorrow."]
    assert draft.customer_messages == 1
    assert draft.waiting_for.startswith("an answer to their last message")
    assert "when do I get my money back?" in draft.waiting_for
    text = draft.text
    assert "Bank ticket #4471" in text
    assert "Original handoff from tier1-bot: Customer was charged twice" in text
    assert "urgency: high" in text


def test_a_next_step_is_required_and_nothing_is_written_without_it(people):
    alice, _ = people
    first, second = open_conversation(alice), open_conversation(alice)
    items = [
        shifts.HandoverItem(handoff_id=first.pk, next_step="Call the bank", text="x"),
        shifts.HandoverItem(handoff_id=second.pk, next_step="  ", text="y"),
    ]
    with pytest.raises(HandoffError, match="A next step is required"):
        shifts.shift_end(agent=alice, items=items)
    assert not ShiftHandover.objects.exists()
    assert Handoff.objects.filter(accepted_by=alice, status=Status.ACCEPTED).count() == 2
    with pytest.raises(HandoffError, match="Review every open conversation"):
        shifts.shift_end(agent=alice, items=items[:1])
    assert not MemoryWrite.objects.filter(payload__metadata__reason="shift handover").exists()


def test_end_shift_hands_each_conversation_over_and_goes_offline(people, make_agent, teams):
    alice, bob = people
    first, second = open_conversation(alice), open_conversation(alice)
    items = [
        shifts.HandoverItem(
            handoff_id=first.pk, next_step="Call the bank about #4471", text="Bank pending"
        ),
        shifts.HandoverItem(
            handoff_id=second.pk, next_step="Confirm the refund", text="Refund sent", to="human:bob"
        ),
    ]

    result = shifts.shift_end(agent=alice, items=items)

    shift = result.shift
    assert shift.conversations == 2 and not shift.automatic
    to_team, to_bob = result.handed_over
    for old, new in ((first, to_team), (second, to_bob)):
        old.refresh_from_db()
        assert old.status == Status.TRANSFERRED
        assert new.chain_id == old.chain_id and new.previous_id == old.pk
        assert new.conversation_id == old.conversation_id
        assert new.status == Status.WAITING and new.shift_handover == shift
        assert new.reason == "shift handover"
        told = Message.objects.filter(conversation=old.conversation, sender=Sender.SYSTEM)
        assert told.filter(body__startswith="A colleague is taking over").exists()
    assert to_team.team.slug == "billing-specialist" and to_team.assigned_to is None
    assert to_bob.assigned_to == bob
    assert to_team.summary.startswith(
        "HANDOFF SUMMARY (human:alice → billing-specialist): Shift handover. "
        "Next step: Call the bank about #4471\nBank pending"
    )
    memory = MemoryWrite.objects.get(handoff=first, payload__metadata__type="handoff")
    assert memory.payload["importance"] == 1.0
    meta = memory.payload["metadata"]
    assert meta["type"] == "handoff" and meta["reason"] == "shift handover"
    assert meta["from_agent"] == "human:alice" and meta["to_agent"] == "billing-specialist"
    assert memory.payload["agent_id"] == first.customer
    bob_memory = MemoryWrite.objects.get(handoff=second, payload__metadata__type="handoff")
    assert bob_memory.payload["metadata"]["to_agent"] == "human:bob"
    alice.refresh_from_db()
    assert alice.presence == Presence.OFFLINE and alice.shift_ended_at is not None
    assert Event.objects.filter(kind="shift.ended", data__agent="alice").count() == 1


def test_an_ended_shift_stays_offline_until_the_agent_starts_again(people):
    from handoffs.desk.consumers import socket_opened

    alice, _ = people
    shifts.shift_end(agent=alice, items=[])
    alice.refresh_from_db()
    assert alice.presence == Presence.OFFLINE

    socket_opened.func(alice)  # opening any console page
    alice.refresh_from_db()
    assert alice.presence == Presence.OFFLINE

    offers.set_presence(agent=alice, presence=Presence.ONLINE)  # "Start shift"
    alice.refresh_from_db()
    assert alice.presence == Presence.ONLINE and alice.shift_ended_at is None


def test_accepting_work_after_end_shift_starts_a_new_shift(people):
    """Off shift, an agent who still takes a conversation from the queue is working:
    the accept starts their shift again (online), never an off-shift agent chatting."""
    alice, _ = people
    shifts.shift_end(agent=alice, items=[])
    alice.refresh_from_db()
    assert alice.presence == Presence.OFFLINE and alice.shift_ended_at is not None
    open_conversation(alice)
    alice.refresh_from_db()
    assert alice.presence == Presence.ONLINE and alice.shift_ended_at is None


def test_in_an_offer_team_the_handed_over_hop_is_offered(
    people, teams, django_capture_on_commit_callbacks
):
    alice, bob = people
    team = teams["billing-specialist"]
    hop = open_conversation(alice)
    team.routing_mode = "offer"
    team.save()
    with django_capture_on_commit_callbacks(execute=True):
        result = shifts.shift_end(
            agent=alice,
            items=[shifts.HandoverItem(handoff_id=hop.pk, next_step="Refund", text="t")],
        )
    new = result.handed_over[0]
    new.refresh_from_db()
    assert new.offered_to == bob


def test_an_agent_offline_past_the_limit_is_handed_over_automatically_once(people, teams):
    alice, _ = people
    team = teams["billing-specialist"]
    team.handover_after_offline_secs = 600
    team.save()
    hop = open_conversation(alice)
    say(hop, Sender.CUSTOMER, "Hello? Anyone there?")
    offers.set_presence(agent=alice, presence=Presence.OFFLINE)
    now = timezone.now()

    assert shifts.run_due(now + timedelta(seconds=300)).handed_over == []
    result = shifts.run_due(now + timedelta(seconds=601))
    again = shifts.run_due(now + timedelta(seconds=900))

    assert result.handed_over == [alice.pk]
    assert again.handed_over == []
    shift = ShiftHandover.objects.get()
    assert shift.automatic and shift.conversations == 1
    new = Handoff.objects.get(shift_handover=shift)
    assert "Shift handover (automatic)" in new.summary
    assert "Hello? Anyone there?" in new.summary
    memory = MemoryWrite.objects.get(handoff=hop, payload__metadata__type="handoff")
    assert memory.payload["metadata"]["automatic"] is True


def test_the_receivers_card_shows_the_handover_first_and_the_bots_summary_beneath(people):
    alice, bob = people
    hop = open_conversation(alice, summary="Bot: double charge on order 1182")
    result = shifts.shift_end(
        agent=alice,
        items=[shifts.HandoverItem(handoff_id=hop.pk, next_step="Call the bank", text="Pending")],
    )
    new = result.handed_over[0]

    page = factories.logged_in(bob).get(f"/handoffs/{new.pk}/").content.decode()

    handover = page.index("Shift handover from Alice")
    original = page.index("The bot's original summary")
    assert handover < original
    assert "Next step: Call the bank" in page[handover:original]
    assert "Bot: double charge on order 1182" in page[original:]


def test_the_end_shift_page_requires_a_next_step_and_keeps_what_was_typed(people):
    alice, _ = people
    hop = open_conversation(alice)
    client = factories.logged_in(alice)

    page = client.get("/shift/end")
    assert page.status_code == 200
    assert "Waiting for:" in page.content.decode()
    # Team names are plural nouns ("Billing specialists"): no "specialists's".
    assert '<option value="">Billing specialists queue (its team)</option>' in page.content.decode()
    assert "'s queue</option>" not in page.content.decode()
    bad = client.post(
        "/shift/end",
        {"reviewed": [str(hop.pk)], f"next_step-{hop.pk}": "", f"text-{hop.pk}": "my text"},
    )
    assert bad.status_code == 400
    assert "A next step is required." in bad.content.decode()
    assert "my text" in bad.content.decode()
    hop.refresh_from_db()
    assert hop.status == Status.ACCEPTED

    done = client.post(
        "/shift/end",
        {"reviewed": [str(hop.pk)], f"next_step-{hop.pk}": "Refund", f"text-{hop.pk}": "t"},
    )
    assert done.status_code == 302
    hop.refresh_from_db()
    assert hop.status == Status.TRANSFERRED
    after = client.get("/shift/end").content.decode()
    assert "Your shift has ended" in after and "Start shift" in after
