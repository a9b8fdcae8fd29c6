"""A right that ends, seen in Chromium (issue 12): Alice has the conversation open when it
is transferred to Bob; that open page says why at once, stops receiving (Bob's note and
the customer's next message never show up) and does not reconnect; reloading gives the
read-only transcript up to the handover."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect

from handoffs.models import Handoff, Status

from .conftest import login, wait_live

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def post_from(page: Page, path: str, form: dict[str, str]) -> int:
    """POST a form from inside ``page`` (its session and CSRF token), as htmx would."""
    return page.evaluate(
        """async ([path, form]) => {
            // Staff pages carry the CSRF token on <body>; the customer's chat needs none.
            const headers = document.body.getAttribute("hx-headers");
            const token = headers ? JSON.parse(headers)["X-CSRFToken"] : "";
            const response = await fetch(path, {
                method: "POST", body: new URLSearchParams(form), credentials: "same-origin",
                headers: {"X-CSRFToken": token, "HX-Request": "true"},
            });
            return response.status;
        }""",
        [path, form],
    )


def test_a_transferred_agents_open_page_stops_and_says_why(
    new_context, billing_agents, escalate, live_server_url, artifacts
):
    base = live_server_url
    handoff = escalate.post(
        customer="user-dave", customer_name="Dave Miller", summary="Refund $100."
    )

    alice = login(new_context(), base, "alice")
    wait_live(alice)
    alice.locator(f"#handoff-{handoff.pk}").get_by_role("button", name="Accept").click()
    expect(alice).to_have_url(f"{base}/conversations/{handoff.pk}/")
    expect(alice.locator("#live")).to_have_text("Live")
    assert post_from(
        alice,
        f"/conversations/{handoff.pk}/messages",
        {"body": "Alice-note: refund RF-1 started", "client_id": "alice-note-1", "note": "1"},
    ) in (200, 201)
    expect(alice.locator("#messages")).to_contain_text("Alice-note: refund RF-1 started")

    # The transfer happens elsewhere (another tab of hers); this page only listens.
    other_tab = alice.context.new_page()
    other_tab.goto(f"{base}/conversations/{handoff.pk}/")
    status = post_from(
        other_tab,
        f"/conversations/{handoff.pk}/close",
        {"action": "transfer", "to": "human:bob", "note": "Refund started; Bob finishes it."},
    )
    assert status in (200, 302)
    other_tab.close()
    handoff.refresh_from_db()
    assert handoff.status == Status.TRANSFERRED

    banner = alice.locator("#access-ended")
    expect(banner).to_contain_text("This conversation was passed to Bob")
    expect(alice.locator("#live")).to_have_text("Access ended")
    expect(alice.locator("#composer")).to_have_count(0)
    alice.screenshot(path=str(artifacts / "rights-end-transferred.png"), full_page=True)

    # Bob takes it and writes a private note; the customer writes too. Alice sees neither.
    nxt = Handoff.objects.get(previous=handoff)
    bob = login(new_context(), base, "bob")
    wait_live(bob)
    row = bob.locator(f"#handoff-{nxt.pk}")
    expect(row).to_contain_text("assigned to you", ignore_case=True)
    row.get_by_role("button", name="Accept").click()
    expect(bob).to_have_url(f"{base}/conversations/{nxt.pk}/")
    assert post_from(
        bob,
        f"/conversations/{nxt.pk}/messages",
        {"body": "Bob-note: card flagged", "client_id": "bob-note-1", "note": "1"},
    ) in (200, 201)
    customer = new_context().new_page()
    customer.goto(bob.locator("a[href*='/c/']").first.get_attribute("href"))
    assert post_from(
        customer,
        customer.url + "messages",
        {"body": "Customer-later: thanks", "client_id": "cust-later-1"},
    ) in (200, 201)
    expect(bob.locator("#messages")).to_contain_text("Customer-later: thanks")

    time.sleep(1.0)  # anything still in flight to Alice's page would have arrived
    text = alice.locator("#messages").inner_text()
    assert "Bob-note" not in text and "Customer-later" not in text
    expect(alice.locator("#live")).to_have_text("Access ended")  # it did not reconnect

    # Reloading: read-only, up to the handover, the reason shown.
    alice.reload()
    expect(alice.locator(".read-only-note")).to_contain_text("passed to Bob")
    expect(alice.locator("#messages")).to_contain_text("Alice-note: refund RF-1 started")
    expect(alice.locator("#messages")).not_to_contain_text("Bob-note")
    expect(alice.locator("#messages")).not_to_contain_text("Customer-later")
    expect(alice.locator("#composer")).to_have_count(0)
    alice.screenshot(path=str(artifacts / "rights-end-read-only.png"), full_page=True)
