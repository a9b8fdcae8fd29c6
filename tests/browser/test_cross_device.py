"""The seed's cross-device case: mid-chat the customer opens the same link on a second
device (a second browser context: no shared storage or cookies) and sees the whole
conversation, in order, and both devices carry on live."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .conftest import login, wait_live

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SUMMARY = "Charged $299 but the plan is $199/mo; customer wants a refund today."


def send(page: Page, text: str) -> None:
    page.fill("#message-body", text)
    page.locator("#composer").get_by_role("button", name="Send").click()


def bodies(page: Page) -> list[str]:
    return page.locator("#messages > .msg").evaluate_all(
        "els => els.map(e => (e.querySelector('.msg-body, .msg-system') || e).textContent.trim())"
    )


def seqs(page: Page) -> list[int]:
    values = page.locator("#messages > .msg").evaluate_all("els => els.map(e => e.dataset.seq)")
    return [int(v) for v in values]


def test_second_device_sees_the_whole_conversation(
    new_context, billing_agents, escalate, live_server_url, dialogs
):
    base = live_server_url
    handoff = escalate.post(customer="cust-4521", customer_name="Dana Whitfield", summary=SUMMARY)
    alice = dialogs.watch(login(new_context(), base, "alice"))
    alice.goto(f"{base}/handoffs/{handoff.pk}/")
    alice.locator("#handoff-status").get_by_role("button", name="Accept").click()
    expect(alice).to_have_url(f"{base}/conversations/{handoff.pk}/")
    wait_live(alice)
    customer_url = alice.locator("a[href*='/c/']").get_attribute("href")

    laptop = dialogs.watch(new_context().new_page())
    laptop.goto(customer_url)
    expect(laptop.locator("#live")).to_have_text("Live")

    send(alice, "Hi Dana, I can see the $299 charge against your $199 plan.")
    expect(laptop.locator("#messages > .msg-agent")).to_have_count(1)
    send(laptop, "Yes! Please refund the difference.")
    expect(alice.locator("#messages > .msg-customer")).to_have_count(1)
    alice.fill("#message-body", "Internal: refund approved by Sam")
    alice.locator("input[name=note]").check()
    alice.locator("#composer").get_by_role("button", name="Send").click()
    expect(alice.locator("#messages > .msg-note")).to_have_count(1)
    send(alice, "Done: $100 refunded, 3-5 business days.")
    send(laptop, "I'm switching to my phone now.")
    expect(alice.locator("#messages > .msg-customer")).to_have_count(2)

    expected = [
        "Alice from Billing specialists joined the conversation.",
        "Hi Dana, I can see the $299 charge against your $199 plan.",
        "Yes! Please refund the difference.",
        "Done: $100 refunded, 3-5 business days.",
        "I'm switching to my phone now.",
    ]
    expect(laptop.locator("#messages > .msg")).to_have_count(len(expected))
    # A message pushed late (Alice's, seq 5) lands after the laptop's own (seq 6) and is
    # put in order right after the swap: wait for the order, don't read mid-swap.
    laptop.wait_for_function(
        "n => [...document.querySelectorAll('#messages > .msg')]"
        ".map(e => Number(e.dataset.seq)).every((s, i, a) => i === 0 || a[i - 1] < s)",
        arg=len(expected),
    )
    assert bodies(laptop) == expected

    # The same link on a second device: everything so far, in order, no notes.
    phone_context = new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone = dialogs.watch(phone_context.new_page())
    phone.goto(customer_url)
    expect(phone.locator("#live")).to_have_text("Live")
    expect(phone.locator("#messages > .msg")).to_have_count(len(expected))
    assert bodies(phone) == expected
    assert seqs(phone) == [1, 2, 3, 5, 6]  # 4 is Alice's private note
    expect(phone.locator("#messages")).not_to_contain_text("refund approved by Sam")
    # The customer's own messages are "You" on every device.
    expect(phone.locator("#messages > .msg-customer.mine")).to_have_count(2)
    expect(phone.locator("#messages > .msg-customer .who").first).to_have_text("You")

    # Both devices carry on live: a message from the phone reaches the agent and the
    # laptop; the agent's answer reaches both.
    send(phone, "Hi, it's me on the phone.")
    expect(alice.locator("#messages > .msg-customer").last).to_contain_text("on the phone")
    expect(laptop.locator("#messages > .msg-customer").last).to_contain_text("on the phone")
    send(alice, "Got it, Dana.")
    for device in (laptop, phone):
        expect(device.locator("#messages > .msg-agent .msg-body").last).to_have_text(
            "Got it, Dana."
        )
    assert (
        bodies(laptop)
        == bodies(phone)
        == [
            *expected,
            "Hi, it's me on the phone.",
            "Got it, Dana.",
        ]
    )
    assert seqs(laptop) == seqs(phone) == [1, 2, 3, 5, 6, 7, 8]

    # A message over the limit is explained beside the composer and its text kept
    # (issue 17: it used to be thrown away under an error pinned at the top).
    phone.fill("#message-body", "x" * 10_001)
    phone.locator("#composer").get_by_role("button", name="Send").click()
    expect(phone.locator("#composer-error")).to_contain_text("1 character over the limit of 10,000")
    expect(phone.locator("#message-body")).to_have_value("x" * 10_001)
    expect(phone.locator("#pending > .msg")).to_have_count(0)
    phone.fill("#message-body", "")

    # Alice resolves: both devices are told, stop chatting and stop reconnecting, and
    # the link shows the transcript read-only (no composer).
    endings = alice.get_by_role("region", name="Close this conversation")
    endings.get_by_label("Action").select_option("resolve")
    endings.get_by_role("button", name="Resolve…").click()
    alice.locator("#resolve-confirm").get_by_role("button", name="Yes, resolve").click()
    expect(alice).to_have_url(f"{base}/")
    for device in (laptop, phone):
        expect(device.locator("#messages > .msg-system").last).to_have_text(
            "This conversation was resolved. Thank you for contacting us!"
        )
        expect(device.locator(".customer-chat")).to_contain_text("This conversation has ended.")
        expect(device.locator("#composer")).to_have_count(0)
        expect(device.locator("#live")).to_have_text("Ended")
    phone.wait_for_timeout(1_500)  # the old client reconnected after 1 s; this one must not
    expect(phone.locator("#live")).to_have_text("Ended")
    # The link now shows the transcript read-only (TRANSCRIPT_RETENTION_DAYS), no composer.
    answer = laptop.goto(customer_url)
    assert answer.status == 200
    expect(laptop.locator("h1")).to_have_text("Your conversation with support")
    expect(laptop.locator("#messages > .msg-system").last).to_have_text(
        "This conversation was resolved. Thank you for contacting us!"
    )
    expect(laptop.locator("#composer")).to_have_count(0)
    assert dialogs.fired == []
