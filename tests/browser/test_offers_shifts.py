"""Offer routing and a shift handover in Chromium, end to end on the live Daphne.

Two agents (Alice, Bob) work a team in offer mode: an escalation is offered to Alice
alone (a panel with a countdown on her page, over the desk socket); she declines with a
reason, it is offered to Bob, who accepts and lands in the conversation. A third agent
(Carol) has two open conversations, presses End shift, writes the next step of each and
hands both to the billing team: they are offered to Alice and Bob, whose cards show
Carol's shift handover first with the bot's original summary beneath. Finally the bot,
with the real ``dakera`` SDK, recalls the handovers from memory ("shift handover").
"""

from __future__ import annotations

import re
import time

import pytest
from dakera import DakeraClient
from playwright.sync_api import Page, expect

from handoffs.models import Agent, Handoff, Message, Offer, Sender, Status

from .conftest import login, wait_live

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def offer_panel(page: Page):
    return page.locator("#offers-panel .offer")


def test_offers_decline_accept_and_a_shift_handover_the_bot_can_recall(
    new_context, teams, make_agent, escalate, live_server_url, bot_key, dialogs
):
    base = live_server_url
    billing = teams["billing-specialist"]
    billing.routing_mode = "offer"
    billing.offer_timeout_secs = 120
    billing.save()
    make_agent("alice", teams=[billing])
    make_agent("bob", teams=[billing])
    make_agent("carol", teams=[billing, teams["tech-support"]])
    Agent.objects.filter(user__username="bob").update(skills="refunds")

    alice = dialogs.watch(login(new_context(), base, "alice"))
    wait_live(alice)
    bob = dialogs.watch(login(new_context(), base, "bob"))
    wait_live(bob)

    # An escalation is offered to one agent: Alice (both idle; she is first).
    first = escalate.post(
        customer="cust-7001",
        customer_name="Dana Whitfield",
        summary="Charged twice for order 1182; wants one charge refunded.",
    )
    offer = offer_panel(alice)
    expect(offer).to_have_count(1)
    expect(offer.locator("h2")).to_contain_text("Offered to you: Dana Whitfield")
    expect(offer.locator(".countdown")).to_have_text(re.compile(r"^1[01][0-9]s$"), timeout=3000)
    expect(offer_panel(bob)).to_have_count(0)
    # Nobody else may take it from the queue: the row says who holds it.
    row = bob.locator(f"#handoff-{first.pk}")
    expect(row.locator(".offered-to")).to_have_text("Offered to Alice")
    expect(row.locator("button.accept")).to_have_count(0)

    # Alice declines with a reason; the offer moves to Bob.
    offer.locator("select[name=reason]").select_option("busy")
    offer.locator("button.decline").click()
    expect(offer_panel(alice)).to_have_count(0)
    expect(alice.locator("#flash")).to_contain_text("Offer declined")
    bob_offer = offer_panel(bob)
    expect(bob_offer).to_have_count(1)
    expect(bob_offer.locator("h2")).to_contain_text("Dana Whitfield")
    with bob.expect_navigation():
        bob_offer.locator("button.accept").click()
    assert bob.url == f"{base}/conversations/{first.pk}/"
    first.refresh_from_db()
    assert first.status == Status.ACCEPTED and first.accepted_by.user.username == "bob"
    assert Offer.objects.get(handoff=first, agent__user__username="alice").reason.startswith(
        "Busy with another customer"
    )

    # Carol takes two conversations from the technical queue (pull mode).
    hops = [
        escalate.post(
            customer=f"cust-80{i}",
            customer_name=name,
            to_agent="tech-support",
            summary=summary,
        )
        for i, (name, summary) in enumerate(
            [
                ("Erik Lund", "Router keeps dropping Wi-Fi every evening since the update."),
                ("Fay Ng", "Cannot log in after the password reset; locked out twice."),
            ]
        )
    ]
    carol = dialogs.watch(login(new_context(), base, "carol"))
    wait_live(carol)
    for hop in hops:
        carol.goto(f"{base}/")
        with carol.expect_navigation():
            carol.locator(f"#handoff-{hop.pk} button.accept").click()
        carol.locator("#composer textarea, #composer input[name=body]").first.fill(
            f"Hi, I'm looking into it (#{hop.pk})."
        )
        carol.locator("#composer button[type=submit]").first.click()
        expect(carol.locator(".msg-agent").last).to_contain_text("looking into it")

    # End shift: drafted handovers, a required next step each, both to billing.
    carol.locator("a.end-shift").click()
    expect(carol.locator("h1")).to_contain_text("End shift")
    for hop in hops:
        card = carol.locator(f"#handover-{hop.pk}")
        expect(card.locator("textarea")).to_contain_text("Original handoff from tier1-bot")
        expect(card.locator(".waiting-for")).to_contain_text("the customer's reply")
    carol.locator("#end-shift-submit").click()  # no next steps yet: refused, nothing sent
    expect(carol.locator(f"#handover-{hops[0].pk} .field-error")).to_have_count(0)
    assert Handoff.objects.filter(shift_handover__isnull=False).count() == 0
    for hop, step in zip(hops, ["Check the router logs", "Unlock the account"], strict=True):
        carol.fill(f"#next-step-{hop.pk}", step)
        carol.select_option(f"#to-{hop.pk}", "billing-specialist")
    with carol.expect_navigation():
        carol.locator("#end-shift-submit").click()
    expect(carol.locator("#flash")).to_contain_text("Shift ended: 2 conversations handed over")
    expect(carol.locator("h1")).to_have_text("Your shift has ended")

    # The two new hops are offered to Alice and Bob, one each.
    new_hops = list(Handoff.objects.filter(shift_handover__isnull=False).order_by("pk"))
    assert len(new_hops) == 2
    for old in hops:
        told = Message.objects.filter(conversation=old.conversation, sender=Sender.SYSTEM)
        assert told.filter(body__startswith="A colleague is taking over").exists()
    receivers = {}
    for page in (alice, bob):
        panel = offer_panel(page)
        expect(panel).to_have_count(1)
        receivers[page] = int(panel.get_attribute("data-handoff"))
    assert sorted(receivers.values()) == [h.pk for h in new_hops]
    for page, hop_id in receivers.items():
        with page.expect_navigation():
            offer_panel(page).locator("button.accept").click()
        assert page.url == f"{base}/conversations/{hop_id}/"
        handover = page.locator("section.handover-card")
        expect(handover.locator("h2")).to_have_text("Shift handover from Carol")
        hop = Handoff.objects.get(pk=hop_id)
        step = "Check the router logs" if hop.customer == "cust-800" else "Unlock the account"
        expect(handover.locator(".handover-text")).to_contain_text(f"Next step: {step}")
        original = handover.locator(".original-summary")
        expect(original.locator("h3")).to_contain_text("The bot's original summary")
        expect(original).to_contain_text(hop.previous.summary)
        # The handover comes before the bot's summary on the card.
        box_handover = handover.locator(".handover-text").bounding_box()
        box_original = original.bounding_box()
        assert box_handover["y"] < box_original["y"]

    # The bot recalls the handover from the customer's memory with the real SDK.
    client = DakeraClient(base, api_key=bot_key, max_retries=1, timeout=10)
    for hop in new_hops:
        deadline = time.monotonic() + 15
        while True:
            memories = client.recall(hop.customer, "shift handover", top_k=3).memories
            found = [m for m in memories if (m.metadata or {}).get("reason") == "shift handover"]
            if found or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert found, [m.content for m in memories]
        memory = found[0]
        assert memories[0].id == memory.id
        assert memory.importance == 1.0
        assert memory.metadata["type"] == "handoff"
        assert memory.metadata["from_agent"] == "human:carol"
        assert memory.metadata["to_agent"] == "billing-specialist"
        assert "Next step:" in memory.content
    assert dialogs.fired == []


def test_the_offer_panel_fits_a_phone_and_its_details_box_is_readable(
    new_context, teams, make_agent, escalate, live_server_url
):
    """At 390 px the fixed panel (420 px at most) stays inside the window, and the
    decline form's details box takes the room left on its line (the walkthrough saw
    its placeholder cut at 160 px)."""
    billing = teams["billing-specialist"]
    billing.routing_mode = "offer"
    billing.offer_timeout_secs = 120
    billing.save()
    make_agent("alice", teams=[billing])
    alice = login(new_context(viewport={"width": 390, "height": 844}), live_server_url, "alice")
    wait_live(alice)
    escalate.post(customer="cust-7002", customer_name="Dana Whitfield", summary="Double charge.")
    offer = offer_panel(alice)
    expect(offer).to_have_count(1)
    box = offer.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    note = offer.locator("input[name=note]")
    expect(note).to_have_attribute("placeholder", "Details (needed for Other)")
    assert note.bounding_box()["width"] >= 200
