"""The agent's inbox in Chromium: alerts wherever the agent is, read on one device
clears the other, times in the viewer's zone, a conversation page that stays put.

Customers write as their browser does (``POST /c/<token>/messages`` on the live Daphne);
the desktop notification is a spy installed before any page script runs.
"""

from __future__ import annotations

import re
import zoneinfo
from functools import partial

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from handoffs.models import Agent, Conversation, Handoff, Message

from .conftest import customer_writes, login, wait_live
from .conftest import web_escalation as _web_escalation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FAST = 1_000  # ms: "within one second"

NOTIFICATION_SPY = """
window.__notifications = [];
window.Notification = class {
  constructor(title, options) {
    window.__notifications.push({ title: title, body: (options || {}).body || "" });
  }
  static get permission() { return "granted"; }
  static requestPermission() { return Promise.resolve("granted"); }
};
"""

# High urgency and an unhappy customer: the badges these pages show.
web_escalation = partial(_web_escalation, urgency="high", sentiment="frustrated")


def agent_context(new_context, **kwargs) -> BrowserContext:
    context = new_context(**kwargs)
    context.add_init_script(NOTIFICATION_SPY)
    return context


def accept(page: Page, base: str, handoff: Handoff) -> None:
    page.goto(f"{base}/")
    wait_live(page)
    page.locator(f"#handoff-{handoff.pk}").get_by_role("button", name="Accept").click()
    expect(page).to_have_url(f"{base}/conversations/{handoff.pk}/")
    wait_live(page)


def notifications(page: Page) -> list[dict]:
    return page.evaluate("window.__notifications")


def badge(page: Page):
    return page.locator("#nav-unread")


def test_a_customer_message_alerts_the_agent_on_the_queue_and_in_another_conversation(
    new_context, teams, make_agent, escalate, live_server_url
):
    base = live_server_url
    make_agent("alice", teams=[teams["billing-specialist"]], capacity=5)
    ann = web_escalation(escalate, customer="cust-ann", name="Ann Lee", summary="Refund due.")
    ben = web_escalation(escalate, customer="cust-ben", name="Ben Ortiz", summary="Wrong plan.")

    alice = login(agent_context(new_context), base, "alice")
    wait_live(alice)
    alice.locator("#alerts-toggle").click()  # the visible toggle; the spy grants permission
    expect(alice.locator("#alerts-toggle")).to_have_text("Alerts on: sound + desktop")
    accept(alice, base, ann)
    accept(alice, base, ben)

    # The agent is on the queue page; her inbox is open in another tab.
    alice.goto(f"{base}/")
    wait_live(alice)
    inbox = alice.context.new_page()
    inbox.goto(f"{base}/conversations/")
    wait_live(inbox)
    expect(badge(alice)).to_be_hidden()
    expect(alice).to_have_title("Queue · Handoff console")
    ann_row = inbox.locator(f"#inbox-{ann.pk}")
    expect(ann_row.locator(".unread-count")).to_have_count(0)

    customer_writes(base, ann, "Are you still there? Please answer!")
    expect(badge(alice)).to_be_visible(timeout=FAST)
    expect(badge(alice)).to_have_attribute("data-count", "1", timeout=FAST)
    expect(alice).to_have_title(re.compile(r"^\(1\) Queue"), timeout=FAST)
    alice.wait_for_function("() => window.__notifications.length === 1", timeout=FAST)
    assert notifications(alice)[0] == {
        "title": "Ann Lee wrote",
        "body": "Are you still there? Please answer!",
    }
    expect(ann_row.locator(".unread-count")).to_contain_text("1", timeout=FAST)
    expect(ann_row.locator(".preview")).to_have_text(
        "Are you still there? Please answer!", timeout=FAST
    )
    expect(ann_row.locator(".waiting-for-you")).to_be_visible()
    # Longest-waiting first: Ann (no reply yet, waiting since her handoff) leads Ben.
    expect(inbox.locator(".inbox-row").first).to_have_id(f"inbox-{ann.pk}")

    # Reading Ann's conversation clears it; then the agent is in Ben's conversation.
    alice.goto(f"{base}/conversations/{ann.pk}/")
    wait_live(alice)
    expect(badge(alice)).to_be_hidden()
    expect(ann_row.locator(".unread-count")).to_have_count(0, timeout=FAST)
    alice.goto(f"{base}/conversations/{ben.pk}/")
    wait_live(alice)
    expect(alice).to_have_title("Ben Ortiz · Conversation · Handoff console")

    customer_writes(base, ann, "Hello?? Anyone?")
    expect(badge(alice)).to_have_attribute("data-count", "1", timeout=FAST)
    expect(badge(alice)).to_be_visible()
    expect(alice).to_have_title("(1) Ben Ortiz · Conversation · Handoff console", timeout=FAST)
    alice.wait_for_function("() => window.__notifications.length === 1", timeout=FAST)
    assert notifications(alice)[0]["body"] == "Hello?? Anyone?"
    expect(ann_row.locator(".preview")).to_have_text("Hello?? Anyone?", timeout=FAST)
    expect(ann_row.locator(".unread-count")).to_contain_text("1", timeout=FAST)
    # Announced for screen readers, on whatever page she is.
    expect(alice.locator("#announcer")).to_have_text(
        "New message from Ann Lee: Hello?? Anyone?", timeout=FAST
    )

    # A message in the conversation she is looking at raises nothing: it is read.
    customer_writes(base, ben, "Thanks, I'm here.")
    expect(alice.locator("#messages > .msg-customer")).to_have_count(1)
    alice.wait_for_timeout(500)
    assert len(notifications(alice)) == 1
    expect(badge(alice)).to_have_attribute("data-count", "1")


def test_reading_on_one_device_clears_the_badge_on_the_other(
    new_context, teams, make_agent, escalate, live_server_url
):
    base = live_server_url
    alice_agent = make_agent("alice", teams=[teams["billing-specialist"]])
    ann = web_escalation(escalate, customer="cust-ann", name="Ann Lee", summary="Refund due.")

    laptop = login(agent_context(new_context), base, "alice")
    accept(laptop, base, ann)
    laptop.goto(f"{base}/")
    wait_live(laptop)
    phone = login(agent_context(new_context), base, "alice")  # a second device
    wait_live(phone)

    customer_writes(base, ann, "Is my refund through?")
    for device in (laptop, phone):
        expect(badge(device)).to_have_attribute("data-count", "1", timeout=FAST)
        expect(device).to_have_title(re.compile(r"^\(1\) "), timeout=FAST)

    # Read on the laptop: the phone's badge and title clear, live.
    laptop.goto(f"{base}/conversations/{ann.pk}/")
    expect(laptop.locator("#messages > .msg-customer")).to_have_count(1)
    expect(badge(phone)).to_be_hidden(timeout=FAST)
    expect(phone).to_have_title("Queue · Handoff console", timeout=FAST)
    conversation = Conversation.objects.get(pk=ann.conversation_id)
    mark = alice_agent.read_marks.get(conversation=conversation)
    assert mark.last_read_seq == conversation.messages.order_by("-seq").first().seq


def test_times_are_shown_in_the_browsers_zone(
    new_context, teams, make_agent, escalate, live_server_url
):
    base = live_server_url
    make_agent("alice", teams=[teams["billing-specialist"]])
    ann = web_escalation(escalate, customer="cust-ann", name="Ann Lee", summary="Refund due.")
    new_york = zoneinfo.ZoneInfo("America/New_York")

    alice = login(new_context(timezone_id="America/New_York"), base, "alice")
    # The first visit stores the browser's zone on her profile.
    alice.wait_for_function("() => document.body.dataset.tz === 'America/New_York'")
    assert Agent.objects.get(user__username="alice").time_zone == "America/New_York"
    expect(alice.locator("#tz-label")).to_have_text("(America/New_York)")
    accept(alice, base, ann)
    customer = new_context(timezone_id="America/New_York").new_page()
    customer.goto(f"{base}/c/{Conversation.objects.get(pk=ann.conversation_id).token}/")
    expect(customer.locator("#live")).to_have_text("Live")
    customer_writes(base, ann, "Hello from New York")

    message = Message.objects.get(conversation_id=ann.conversation_id, body="Hello from New York")
    ny = message.created_at.astimezone(new_york).strftime("%H:%M")
    utc = message.created_at.astimezone(zoneinfo.ZoneInfo("UTC")).strftime("%H:%M")
    assert ny != utc
    for page in (alice, customer):  # pushed live (rendered once, in no one's zone)
        expect(page.locator(f"#msg-{message.seq} time")).to_have_text(ny)
    # Rendered by the server in her stored zone too (the agent's page, reloaded).
    alice.reload()
    expect(alice.locator(f"#msg-{message.seq} time")).to_have_text(ny)
    accepted = Handoff.objects.get(pk=ann.pk).accepted_at.astimezone(new_york)
    expect(alice.locator("#handoff-status time")).to_have_text(accepted.strftime("%H:%M"))
    html = httpx.get(f"{base}/c/{Conversation.objects.get(pk=ann.conversation_id).token}/")
    assert f">{utc}</time>" in html.text  # the customer's page, before the browser runs

    # The profile shows and changes the zone.
    alice.goto(f"{base}/profile/")
    expect(alice.get_by_label("Time zone")).to_have_value("America/New_York")
    alice.get_by_label("Time zone").select_option("Asia/Tokyo")
    alice.get_by_role("button", name="Save").click()
    expect(alice.locator("#flash")).to_contain_text("Times are now shown in Asia/Tokyo")
    alice.goto(f"{base}/conversations/{ann.pk}/")
    tokyo = message.created_at.astimezone(zoneinfo.ZoneInfo("Asia/Tokyo")).strftime("%H:%M")
    expect(alice.locator(f"#msg-{message.seq} time")).to_have_text(tokyo)


SCROLL_WATCH = """
window.__maxScrollY = 0;
addEventListener("scroll", function () {
  window.__maxScrollY = Math.max(window.__maxScrollY, window.scrollY);
}, { passive: true });
"""


def test_the_conversation_page_stays_put_across_live_messages(
    new_context, teams, make_agent, escalate, live_server_url
):
    base = live_server_url
    make_agent("alice", teams=[teams["billing-specialist"]])
    ann = web_escalation(escalate, customer="cust-ann", name="Ann Lee", summary="Refund due.")
    context = new_context(viewport={"width": 1280, "height": 720})
    context.add_init_script(SCROLL_WATCH)
    alice = login(context, base, "alice")
    accept(alice, base, ann)
    # After accept the cursor is in the composer.
    expect(alice.locator("#message-body")).to_be_focused()
    messages = alice.locator("#messages")

    for n in range(20):
        customer_writes(base, ann, f"Line {n + 1}: still waiting for the refund, please check.")
        expect(alice.locator("#messages > .msg-customer")).to_have_count(n + 1)
        assert alice.evaluate("window.scrollY") == 0
    assert alice.evaluate("window.__maxScrollY") == 0
    # The list scrolls inside itself and followed to the latest message.
    assert messages.evaluate("el => el.scrollHeight > el.clientHeight")
    assert messages.evaluate("el => el.scrollHeight - el.scrollTop - el.clientHeight < 40")
    expect(alice.locator("#new-messages")).to_be_hidden()

    # Scrolled up to read: a new message doesn't pull her down; a pill says it came.
    messages.evaluate("el => { el.scrollTop = 0; }")
    alice.wait_for_timeout(100)
    customer_writes(base, ann, "One more thing.")
    expect(alice.locator("#messages > .msg-customer")).to_have_count(21)
    expect(alice.locator("#new-messages")).to_be_visible()
    assert messages.evaluate("el => el.scrollTop") == 0
    pill = alice.locator("#new-messages").bounding_box()
    assert pill["y"] + pill["height"] <= 720  # in view: the window needn't move to show it
    alice.locator("#new-messages").click()
    expect(alice.locator("#new-messages")).to_be_hidden()
    assert messages.evaluate("el => el.scrollHeight - el.scrollTop - el.clientHeight < 40")
    assert alice.evaluate("window.__maxScrollY") == 0


def test_a_crowded_chat_column_scrolls_so_send_stays_reachable(
    new_context, teams, make_agent, escalate, live_server_url
):
    """A tall head (bot part, sentiment, link) plus the composer's flags and error can
    outgrow a 1280x800 window; the page itself never scrolls (body overflow hidden), so
    the chat column scrolls instead of pushing Send below the window's edge."""
    base = live_server_url
    make_agent("alice", teams=[teams["billing-specialist"]])
    ann = web_escalation(escalate, customer="cust-ann", name="Ann Lee", summary="Refund due.")
    alice = login(new_context(viewport={"width": 1280, "height": 800}), base, "alice")
    accept(alice, base, ann)
    alice.evaluate(
        "() => { const d = document.createElement('div'); d.style.height = '320px';"
        " document.querySelector('.chat-head').appendChild(d); }"
    )
    alice.fill("#message-body", "z" * 10_050)
    alice.locator("#composer button[type=submit]").click()
    expect(alice.locator("#composer-error")).to_be_visible()
    assert alice.evaluate("document.documentElement.scrollHeight") <= 800
    alice.evaluate(
        "() => { const c = document.querySelector('.chat'); c.scrollTop = c.scrollHeight; }"
    )
    send = alice.locator("#composer button[type=submit]").bounding_box()
    assert send is not None and send["y"] + send["height"] <= 800
