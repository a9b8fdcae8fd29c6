"""The whole human side of a handoff in Chromium, two people at once.

A bot escalates over HTTP (the memory API of the live Daphne); Alice (billing) accepts
from her queue; the customer opens the link from the conversation page in a separate
browser context and sees Alice join; Alice sends the suggested first message, which
proves continuity ($299 vs $199); they chat and see each other typing; Alice transfers
to tech-support with a note; Carol (tech-support) sees the new row arrive live, accepts,
and reads the chain (2 hops) with Alice's note as the handoff summary, first.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from handoffs.models import Handoff, Status

from .conftest import login, wait_live

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CUSTOMER = "user-dave"
SUMMARY = (
    "Customer ACC-4521 (since 2024) reports $100 billing overcharge. Verified plan is "
    "$199/mo but last invoice shows $299. Customer tone: frustrated but polite. Needs "
    "refund or explanation."
)
NOTE = "Refund of $100 done (RF-2291). Customer now says the app crashes on login, iOS 17."


def messages(page: Page):
    return page.locator("#messages > .msg")


def send(page: Page, text: str) -> None:
    page.fill("#message-body", text)
    page.locator("#composer").get_by_role("button", name="Send").click()


def test_accept_chat_typing_transfer_and_the_next_agent(
    new_context, teams, make_agent, escalate, live_server_url, dialogs
):
    base = live_server_url
    make_agent("alice", teams=[teams["billing-specialist"]])
    make_agent("carol", teams=[teams["tech-support"]])

    # The bot's session, then its escalation (a handoff memory) over HTTP.
    session = escalate.session(CUSTOMER)
    escalate.memory(
        CUSTOMER,
        "User reports billing discrepancy: charged $299 but plan is $199/mo",
        importance=0.9,
        metadata={"type": "issue"},
        session_id=session,
    )
    handoff = escalate.post(
        customer=CUSTOMER,
        customer_name="Dave Miller",
        summary=SUMMARY,
        session_id=session,
        sentiment="frustrated",
        urgency="high",
    )

    carol = dialogs.watch(login(new_context(), base, "carol"))
    wait_live(carol)
    expect(carol.locator("#queue-empty")).to_be_visible()

    # Alice accepts from her queue and lands in the conversation.
    alice = dialogs.watch(login(new_context(), base, "alice"))
    wait_live(alice)
    alice.locator(f"#handoff-{handoff.pk}").get_by_role("button", name="Accept").click()
    expect(alice).to_have_url(f"{base}/conversations/{handoff.pk}/")
    wait_live(alice)
    expect(alice.locator("#handoff-status")).to_contain_text("Accepted by Alice")
    # The bot's part of the transcript sits above the human part.
    bot_part = alice.locator("details.bot-part")
    expect(bot_part).to_contain_text("charged $299 but plan is $199/mo")
    assert bot_part.bounding_box()["y"] < alice.locator("#messages").bounding_box()["y"]

    # The customer opens the link shown on the conversation page, on a phone.
    link = alice.locator("a[href*='/c/']")
    customer_url = link.get_attribute("href")
    assert customer_url.startswith(f"{base}/c/")
    phone = new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    customer = dialogs.watch(phone.new_page())
    customer.goto(customer_url)
    expect(customer.locator("#live")).to_have_text("Live")
    expect(messages(customer).first).to_have_text(
        "Alice from Billing specialists joined the conversation."
    )

    # The suggested first message is prefilled: safe to say (nothing from the summary);
    # Alice adds the detail that proves continuity before sending it.
    draft = alice.locator("#message-body").input_value()
    assert draft.startswith("Hi Dave, I'm Alice from Billing specialists.")
    assert "$299" not in draft and "ACC-4521" not in draft, draft
    alice.fill("#message-body", draft + " I see the $299 invoice against your $199 plan.")
    alice.locator("#composer").get_by_role("button", name="Send").click()
    continuity = customer.locator("#messages > .msg-agent")
    expect(continuity).to_have_count(1)
    expect(continuity.locator(".msg-body")).to_contain_text("$299")
    expect(continuity.locator(".msg-body")).to_contain_text("$199")
    expect(continuity.locator(".who")).to_have_text("Alice (support)")

    # The customer types: Alice sees it; then the message arrives and the hint goes.
    customer.fill("#message-body", "Yes, that's right. When")
    typing = alice.locator("#typing-indicator")
    expect(typing).to_be_visible()
    expect(typing).to_have_text("Customer is typing…")
    send(customer, "Yes, that's right. When will I get the $100 back?")
    expect(alice.locator("#messages > .msg-customer .msg-body")).to_have_text(
        "Yes, that's right. When will I get the $100 back?"
    )
    expect(typing).to_be_hidden()

    # Alice types: the customer sees her name; then her answer. (Typing signals go at
    # most every 1.5 s; her edit of the opener above sent one.)
    alice.wait_for_timeout(1600)
    alice.fill("#message-body", "It's on")
    customer_typing = customer.locator("#typing-indicator")
    expect(customer_typing).to_be_visible()
    expect(customer_typing).to_have_text("Alice is typing…")
    send(alice, "It's on its way: 3-5 business days (ref RF-2291).")
    expect(customer.locator("#messages > .msg-agent").last).to_contain_text("RF-2291")
    expect(customer_typing).to_be_hidden()

    # A private note reaches Alice's screen only.
    alice.fill("#message-body", "NOTE: customer mentioned an iOS crash on the phone")
    alice.locator("input[name=note]").check()
    alice.locator("#composer").get_by_role("button", name="Send").click()
    expect(alice.locator("#messages > .msg-note")).to_have_count(1)
    send(customer, "Also the app crashes when I log in on my iPhone.")
    expect(alice.locator("#messages > .msg-customer")).to_have_count(2)
    expect(customer.locator("#messages")).not_to_contain_text("iOS crash on the phone")

    expected_customer_view = [
        "Alice from Billing specialists joined the conversation.",
        "$299",
        "When will I get the $100 back?",
        "RF-2291",
        "app crashes when I log in",
    ]
    bodies = messages(customer).all_inner_texts()
    assert len(bodies) == len(expected_customer_view), bodies
    for body, expected in zip(bodies, expected_customer_view, strict=True):
        assert expected in body
    alice_seqs = [
        int(s) for s in messages(alice).evaluate_all("els => els.map(e => e.dataset.seq)")
    ]
    assert alice_seqs == list(range(1, 7))  # the note (5) is between, only for agents

    # Alice transfers to tech-support with a note, through "Close this conversation".
    endings = alice.get_by_role("region", name="Close this conversation")
    endings.get_by_label("Action").select_option("transfer")
    endings.get_by_label("Transfer to").select_option("tech-support")
    endings.get_by_label(re.compile(r"^Note")).fill(NOTE)
    endings.get_by_label("Summary accurate").check()
    endings.get_by_role("button", name="Transfer").click()
    expect(alice).to_have_url(f"{base}/")
    expect(alice.locator("#flash")).to_contain_text("Conversation transferred.")
    expect(customer.locator("#messages > .msg-system").last).to_contain_text(
        "You're being transferred"
    )

    handoff.refresh_from_db()
    assert handoff.status == Status.TRANSFERRED
    assert handoff.rating == "accurate"
    new = Handoff.objects.get(previous=handoff)
    assert new.hop_index == 1
    assert new.conversation_id == handoff.conversation_id

    # Carol's queue shows the new hop live, with the hop count and the note.
    row = carol.locator(f"#handoff-{new.pk}")
    expect(row).to_be_visible()
    expect(row.locator(".route")).to_contain_text("Alice → Technical support")
    expect(row.locator(".hops")).to_have_text("1 earlier hop")
    expect(row.locator(".excerpt")).to_contain_text("Refund of $100 done")
    expect(carol.locator("#queue-count")).to_have_text("1")

    row.get_by_role("button", name="Accept").click()
    expect(carol).to_have_url(f"{base}/conversations/{new.pk}/")
    wait_live(carol)
    card = carol.locator("#handoff-card")
    # The transfer note is the handoff summary, the first thing on the card ...
    first_section = card.locator("section").first
    expect(first_section).to_have_attribute("aria-label", "Handoff summary")
    expect(first_section.locator(".summary")).to_contain_text(NOTE)
    # The "HANDOFF SUMMARY (a → b):" prefix isn't repeated under the heading that says it;
    # the route is in the card's header.
    expect(first_section.locator(".summary")).not_to_contain_text("HANDOFF SUMMARY (")
    expect(card.locator(".card-head")).to_contain_text("From Alice to Technical support")
    # ... then the chain of the issue: two hops, the current one last.
    chain = card.get_by_role("region", name="Handoff chain")
    expect(chain.locator("h2")).to_have_text("Chain of this issue (2 hops)")
    hops = chain.locator("ol.chain > li")
    expect(hops).to_have_count(2)
    expect(hops.nth(0)).to_contain_text("tier1-bot → Billing specialists")
    expect(hops.nth(0)).to_contain_text("Transferred")
    expect(hops.nth(1)).to_contain_text("Alice → Technical support")
    expect(hops.nth(1)).to_have_class(re.compile(r"\bcurrent\b"))
    # Alice's chat is the conversation itself, on Carol's screen (not repeated on the card).
    expect(carol.locator("#messages")).to_contain_text("When will I get the $100 back?")

    # The whole conversation so far is on Carol's screen; the customer sees her join.
    expect(carol.locator("#messages")).to_contain_text("RF-2291")
    expect(carol.locator("#messages")).to_contain_text("iOS crash on the phone")
    expect(customer.locator("#messages > .msg-system").last).to_have_text(
        "Carol from Technical support joined the conversation."
    )
    send(carol, "Hi Dave, Carol here: which iOS version are you on?")
    expect(customer.locator("#messages > .msg-agent").last).to_contain_text("Carol here")
    expect(customer.locator("#messages > .msg-agent .who").last).to_have_text("Carol (support)")
    assert dialogs.fired == []
