"""Two agents watch the live queue in Chromium; one accepts, the other is told.

Everything goes through the real stack: escalations are handoff memories POSTed to the
memory API of the live Daphne, agents sign in through the login form, the queue updates
over the WebSocket with no reload.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from .conftest import login, wait_live

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QUEUE_TITLE = "Queue · Handoff console"


def silence_sockets(page: Page) -> None:
    """Answer this page's WebSockets with a silent mock: the page stays as loaded (stale),
    the way a tab looks whose socket message was lost or has not arrived yet."""

    def handler(ws: WebSocketRoute) -> None:  # never connects to the server
        pass

    page.route_web_socket(re.compile(r".*/ws/.*"), handler)


def test_escalation_reaches_two_agents_one_accepts_other_is_told(
    new_context, billing_agents, escalate, live_server_url, dialogs, artifacts
):
    base = live_server_url
    alice = dialogs.watch(login(new_context(), base, "alice"))
    bob_context = new_context()
    bob = dialogs.watch(login(bob_context, base, "bob"))
    for page in (alice, bob):
        wait_live(page)
        expect(page.locator("#queue-empty")).to_be_visible()
        expect(page).to_have_title(QUEUE_TITLE)

    handoff = escalate.post(
        customer="cust-4521",
        customer_name="Dana Whitfield",
        summary="Charged $299 but the plan is $199/mo; customer wants a refund today.",
        sentiment="frustrated",
        urgency="high",
    )
    row_id = f"#handoff-{handoff.pk}"

    # Both queues show it without a reload: badges are words, the title counts it.
    for page in (alice, bob):
        row = page.locator(row_id)
        expect(row).to_be_visible()
        expect(row.locator(".customer")).to_contain_text("Dana Whitfield")
        expect(row.locator(".route")).to_contain_text("tier1-bot → Billing specialists")
        expect(row.locator(".badge.sentiment")).to_have_text(re.compile(r"\bFrustrated$"))
        expect(row.locator(".badge.urgency")).to_have_text(re.compile(r"\bHigh urgency$"))
        expect(page).to_have_title(f"(1) {QUEUE_TITLE}")
        expect(page.locator("#queue-count")).to_have_text("1")
        expect(page.locator("#queue-empty")).to_be_hidden()

    # A second escalation counts too (and a critical one sorts first).
    second = escalate.post(
        customer="cust-7001",
        customer_name="Lee Park",
        summary="Card was charged twice after cancelling; bank dispute threatened.",
        sentiment="angry",
        urgency="critical",
    )
    for page in (alice, bob):
        expect(page).to_have_title(f"(2) {QUEUE_TITLE}")
        expect(page.locator(".qrow").first).to_have_id(f"handoff-{second.pk}")
        expect(page.locator(f"#handoff-{second.pk} .badge.urgency")).to_have_text(
            re.compile(r"\bCritical urgency$")
        )

    # Bob keeps two card pages open from before the accept: a live one and a stale one
    # (its socket silenced), so he can still click a button that is out of date.
    bob_card = dialogs.watch(bob_context.new_page())
    bob_card.goto(f"{base}/handoffs/{handoff.pk}/")
    wait_live(bob_card)
    bob_stale = dialogs.watch(bob_context.new_page())
    silence_sockets(bob_stale)
    bob_stale.goto(f"{base}/handoffs/{handoff.pk}/")
    expect(bob_stale.locator("#handoff-status button.accept")).to_be_visible()

    # Alice accepts from her queue row and lands in the conversation.
    alice.locator(row_id).get_by_role("button", name="Accept").click()
    expect(alice).to_have_url(f"{base}/conversations/{handoff.pk}/")
    expect(alice.locator("#handoff-status")).to_contain_text("Accepted by Alice")

    # Bob's queue row disappears without a reload; the other one stays.
    expect(bob.locator(row_id)).to_have_count(0)
    expect(bob.locator(f"#handoff-{second.pk}")).to_be_visible()
    expect(bob).to_have_title(f"(1) {QUEUE_TITLE}")
    expect(bob.locator("#queue-count")).to_have_text("1")
    # His live card page says who took it and offers no Accept any more.
    expect(bob_card.locator("#handoff-status")).to_contain_text("Accepted by Alice")
    expect(bob_card.locator("#handoff-status button.accept")).to_have_count(0)

    # The late click on the stale card gets a clear 409 message, not an error page.
    with bob_stale.expect_response(f"**/handoffs/{handoff.pk}/accept") as answer:
        bob_stale.locator("#handoff-status button.accept").click()
    assert answer.value.status == 409
    flash = bob_stale.locator("#flash [role=alert]")
    expect(flash).to_have_text("Already accepted by Alice.")
    expect(flash).to_be_visible()
    assert bob_stale.url == f"{base}/handoffs/{handoff.pk}/"
    bob_stale.screenshot(path=artifacts / "late-click.png")

    # Reloading the queue shows the same state the live updates produced.
    bob.reload()
    wait_live(bob)
    expect(bob.locator(".qrow")).to_have_count(1)
    expect(bob.locator(row_id)).to_have_count(0)
    assert dialogs.fired == []


def test_late_click_on_a_stale_queue_row(
    new_context, billing_agents, escalate, live_server_url, dialogs
):
    """A queue row whose removal never arrived: clicking Accept explains who took it."""
    base = live_server_url
    handoff = escalate.post(summary="Refund for a duplicate charge on invoice 8812.")
    bob_context = new_context()
    bob = dialogs.watch(login(bob_context, base, "bob"))
    stale = dialogs.watch(bob_context.new_page())
    silence_sockets(stale)
    stale.goto(f"{base}/")
    expect(stale.locator(f"#handoff-{handoff.pk}")).to_be_visible()

    alice = login(new_context(), base, "alice")
    wait_live(alice)
    alice.locator(f"#handoff-{handoff.pk}").get_by_role("button", name="Accept").click()
    expect(alice).to_have_url(f"{base}/conversations/{handoff.pk}/")

    with stale.expect_response(f"**/handoffs/{handoff.pk}/accept") as answer:
        stale.locator(f"#handoff-{handoff.pk}").get_by_role("button", name="Accept").click()
    assert answer.value.status == 409
    expect(stale.locator("#flash [role=alert]")).to_have_text("Already accepted by Alice.")
    assert stale.url == f"{base}/"
    assert bob.url == f"{base}/"
    assert dialogs.fired == []


def test_live_indicator(new_context, billing_agents, live_server_url):
    """ "Live" once the socket is open; "Reconnecting…" when it drops; "Live" again after."""
    context = new_context()
    sockets: list[WebSocketRoute] = []

    def through(ws: WebSocketRoute) -> None:
        ws.connect_to_server()
        sockets.append(ws)

    # A reconnect resumes from the last queue change it saw (``?after=N``, reconnect.js).
    context.route_web_socket(re.compile(r".*/ws/queue/(\?after=\d+)?$"), through)
    page = login(context, live_server_url, "alice")

    live = page.locator("#live")
    expect(live).to_have_text("Live")
    expect(live).to_have_class(re.compile(r"\bonline\b"))
    assert len(sockets) == 1

    # The server side goes away (1012: service restart): the indicator says so ...
    sockets[0].close(code=1012, reason="restart")
    expect(live).to_have_text("Reconnecting…")
    expect(live).not_to_have_class(re.compile(r"\bonline\b"))
    # ... and the extension reconnects on its own, re-syncing from the database.
    expect(live).to_have_text("Live", timeout=15_000)
    assert len(sockets) == 2
