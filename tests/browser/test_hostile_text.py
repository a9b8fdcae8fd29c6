"""Customer and bot text is hostile: in Chromium it renders as literal text everywhere
(live-pushed queue row, reloaded queue, handoff card, document title) and no script runs.

Each page registers a ``dialog`` listener before any hostile text can reach it; an
``alert(1)`` that executed would be recorded there.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .conftest import login, wait_live

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "</script><script>alert(1)</script>"


def assert_row_literal(page: Page, pk: int, name: str, summary: str) -> None:
    row = page.locator(f"#handoff-{pk}")
    expect(row).to_be_visible()
    expect(row.locator(".customer a")).to_have_text(name)
    expect(row.locator(".excerpt")).to_have_text(summary)
    assert row.locator("img, script").count() == 0
    # The raw markup is escaped in the DOM, not parsed into elements.
    assert "&lt;" in row.inner_html()


def assert_no_injected_nodes(page: Page) -> None:
    """No <img src=x> and no inline script carrying the payload anywhere on the page."""
    assert page.locator("img[src=x]").count() == 0
    inline = page.eval_on_selector_all(
        "script:not([src])", "nodes => nodes.map(n => n.textContent)"
    )
    assert not any("alert(1)" in text for text in inline), inline


def test_hostile_customer_text_is_literal_everywhere(
    new_context, billing_agents, escalate, live_server_url, dialogs
):
    base = live_server_url
    page = dialogs.watch(login(new_context(), base, "alice"))
    wait_live(page)

    first = escalate.post(customer="cust-x1", customer_name=IMG, summary=SCRIPT)
    second = escalate.post(customer="cust-x2", customer_name=SCRIPT, summary=IMG)
    cases = [(first.pk, IMG, SCRIPT), (second.pk, SCRIPT, IMG)]

    # Pushed live over the WebSocket (htmx out-of-band swap).
    for pk, name, summary in cases:
        assert_row_literal(page, pk, name, summary)
    expect(page).to_have_title("(2) Queue · Handoff console")
    assert_no_injected_nodes(page)

    # The same after a reload (server-rendered page and the socket's snapshot).
    page.reload()
    wait_live(page)
    for pk, name, summary in cases:
        assert_row_literal(page, pk, name, summary)
    assert_no_injected_nodes(page)

    # The card page and its title.
    for pk, name, summary in cases:
        card = dialogs.watch(page.context.new_page())
        card.goto(f"{base}/handoffs/{pk}/")
        wait_live(card)
        expect(card).to_have_title(f"{name} · Handoff console")
        expect(card.locator("#handoff-card h1")).to_have_text(name)
        expect(card.locator("#handoff-card .pinned .summary")).to_have_text(summary)
        assert_no_injected_nodes(card)
        card.close()

    # Accepting one: its conversation page title, and the removal pushed to the queue.
    other = dialogs.watch(login(new_context(), base, "bob"))
    wait_live(other)
    other.locator(f"#handoff-{first.pk}").get_by_role("button", name="Accept").click()
    expect(other).to_have_url(f"{base}/conversations/{first.pk}/")
    expect(other).to_have_title(f"{IMG} · Conversation · Handoff console")
    assert_no_injected_nodes(other)
    expect(page.locator(f"#handoff-{first.pk}")).to_have_count(0)
    expect(page).to_have_title("(1) Queue · Handoff console")

    page.wait_for_timeout(300)  # let any late onerror handler fire before the verdict
    assert dialogs.fired == []


def test_the_dialog_watch_would_catch_the_payload(new_context, dialogs):
    """Control: the same payloads, injected unescaped, do fire a dialog that is recorded."""
    page = dialogs.watch(new_context().new_page())
    page.set_content(f"<title>x</title><body>{IMG}</body>")
    page.wait_for_timeout(300)
    assert dialogs.fired and "alert: 1" in dialogs.fired[0]
