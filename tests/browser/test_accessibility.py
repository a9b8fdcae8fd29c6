"""Accessibility in Chromium: axe-core (tests/browser/axe.py) finds nothing critical or
serious on the console's pages and the customer's chat, and the keyboard works:
a skip link, shortcuts that don't fire while typing, a help dialog on ``?``, a message
list reachable and scrollable by keyboard, live regions announcing new rows.
"""

from __future__ import annotations

from functools import partial

import pytest
from playwright.sync_api import Page, expect

from handoffs.models import Conversation, Handoff, Role

from .axe import assert_no_serious_violations, violations
from .conftest import customer_writes, login, wait_live
from .conftest import web_escalation as _web_escalation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# High urgency and an unhappy customer: the badges these pages show.
web_escalation = partial(_web_escalation, urgency="high", sentiment="angry")


def accept(page: Page, base: str, handoff: Handoff) -> None:
    page.goto(f"{base}/")
    wait_live(page)
    page.locator(f"#handoff-{handoff.pk}").get_by_role("button", name="Accept").click()
    expect(page).to_have_url(f"{base}/conversations/{handoff.pk}/")
    wait_live(page)


def test_axe_finds_nothing_serious_on_every_page(
    new_context, teams, make_agent, escalate, live_server_url
):
    base = live_server_url
    make_agent("alice", teams=[teams["billing-specialist"]])
    make_agent("sue", teams=[teams["billing-specialist"]], role=Role.SUPERVISOR)
    ann = web_escalation(escalate, customer="cust-ann", name="Ann Lee", summary="Refund due.")
    ben = web_escalation(escalate, customer="cust-ben", name="Ben Ortiz", summary="Wrong plan.")

    alice = login(new_context(), base, "alice")
    wait_live(alice)
    assert_no_serious_violations(alice, where="queue")
    alice.goto(f"{base}/handoffs/{ben.pk}/")
    wait_live(alice)
    assert_no_serious_violations(alice, where="card")
    accept(alice, base, ann)
    customer_writes(base, ann, "Are you still there? Please answer!")
    expect(alice.locator("#messages > .msg-customer")).to_have_count(1)
    alice.locator("#message-body").fill("Yes, I'm here.")
    alice.locator("#composer").get_by_role("button", name="Send").click()
    expect(alice.locator("#messages > .msg-agent")).to_have_count(1)
    assert_no_serious_violations(alice, where="conversation")
    alice.keyboard.press("Escape")
    alice.locator("#messages").focus()
    alice.keyboard.press("?")
    expect(alice.locator("#keys-help")).to_be_visible()
    assert_no_serious_violations(alice, where="conversation with the shortcuts help")
    alice.keyboard.press("Escape")
    alice.goto(f"{base}/conversations/")
    wait_live(alice)
    assert_no_serious_violations(alice, where="inbox")
    alice.goto(f"{base}/profile/")
    assert_no_serious_violations(alice, where="profile")

    customer = new_context().new_page()
    customer.goto(f"{base}/c/{Conversation.objects.get(pk=ann.conversation_id).token}/")
    expect(customer.locator("#live")).to_have_text("Live")
    expect(customer.locator("#messages > .msg-agent")).to_have_count(1)
    assert_no_serious_violations(customer, where="customer chat")

    sue = login(new_context(), base, "sue")
    sue.goto(f"{base}/floor/")
    wait_live(sue)
    assert_no_serious_violations(sue, where="floor")
    sue.goto(f"{base}/reports/transfers/")
    assert_no_serious_violations(sue, where="report")

    # The check can fail: an unlabelled button is reported.
    sue.evaluate(
        "document.querySelector('main').insertAdjacentHTML('beforeend', '<button></button>')"
    )
    assert any(line.startswith("button-name (critical)") for line in violations(sue))


def test_the_keyboard_reaches_everything_and_shortcuts_wait_while_typing(
    new_context, teams, make_agent, escalate, live_server_url
):
    base = live_server_url
    make_agent("alice", teams=[teams["billing-specialist"]], capacity=5)
    ann = web_escalation(escalate, customer="cust-ann", name="Ann Lee", summary="Refund due.")
    ben = web_escalation(escalate, customer="cust-ben", name="Ben Ortiz", summary="Wrong plan.")
    alice = login(new_context(), base, "alice")
    accept(alice, base, ann)
    accept(alice, base, ben)

    # The skip link is the first stop and lands in the main region.
    alice.goto(f"{base}/conversations/")
    wait_live(alice)
    alice.keyboard.press("Tab")
    skip = alice.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    alice.keyboard.press("Enter")
    expect(alice.locator("main")).to_be_focused()

    # j / k walk the conversations in inbox order (longest-waiting first: Ann, Ben).
    alice.keyboard.press("j")
    expect(alice).to_have_url(f"{base}/conversations/{ann.pk}/")
    wait_live(alice)
    alice.keyboard.press("j")
    expect(alice).to_have_url(f"{base}/conversations/{ben.pk}/")
    wait_live(alice)
    alice.keyboard.press("k")
    expect(alice).to_have_url(f"{base}/conversations/{ann.pk}/")
    wait_live(alice)

    # r focuses the composer; typing "j", "k", "?" there types, it doesn't navigate.
    alice.locator("main").focus()
    alice.keyboard.press("r")
    box = alice.locator("#message-body")
    expect(box).to_be_focused()
    box.fill("")
    alice.keyboard.type("jk? ok")
    expect(box).to_have_value("jk? ok")
    expect(alice).to_have_url(f"{base}/conversations/{ann.pk}/")
    expect(alice.locator("#keys-help")).to_be_hidden()
    # Ctrl+Enter sends.
    alice.keyboard.press("Control+Enter")
    expect(alice.locator("#messages > .msg-agent")).to_have_count(1)
    expect(alice.locator("#messages > .msg-agent .msg-body")).to_have_text("jk? ok")

    # l reaches the message list (a labelled log), and the arrow keys scroll it.
    for n in range(25):
        customer_writes(base, ann, f"Message {n}: a long line to fill the list up and more.")
    expect(alice.locator("#messages > .msg-customer")).to_have_count(25)
    alice.locator("main").focus()
    alice.keyboard.press("l")
    log = alice.get_by_role("log", name="Messages")
    expect(log).to_be_focused()
    before = log.evaluate("el => el.scrollTop")
    alice.keyboard.press("Home")
    alice.wait_for_function("() => document.getElementById('messages').scrollTop === 0")
    assert before > 0
    assert alice.evaluate("window.scrollY") == 0

    # e goes to the endings form; ? opens the help, Escape closes it.
    alice.locator("main").focus()
    alice.keyboard.press("e")
    expect(alice.get_by_label("Action")).to_be_focused()
    alice.locator("main").focus()
    alice.keyboard.press("?")
    help_dialog = alice.get_by_role("dialog", name="Keyboard shortcuts")
    expect(help_dialog).to_be_visible()
    expect(help_dialog).to_contain_text("Next / previous of your conversations")
    alice.keyboard.press("Escape")
    expect(help_dialog).to_be_hidden()
    alice.keyboard.press("q")
    expect(alice).to_have_url(f"{base}/")


def test_new_rows_and_messages_are_announced(
    new_context, teams, make_agent, escalate, live_server_url
):
    base = live_server_url
    make_agent("alice", teams=[teams["billing-specialist"]])
    alice = login(new_context(), base, "alice")
    wait_live(alice)
    web_escalation(escalate, customer="cust-cy", name="Cy Young", summary="Card declined.")
    expect(alice.locator("#announcer")).to_have_text("New escalation: Cy Young")
    expect(alice.locator("#announcer")).to_have_attribute("aria-live", "polite")
    expect(alice.locator("#queue-rows .qrow")).to_have_count(1)
    handoff = Handoff.objects.get(customer="cust-cy")
    accept(alice, base, handoff)
    log = alice.get_by_role("log", name="Messages")
    expect(log).to_have_attribute("aria-live", "polite")
    customer_writes(base, handoff, "Still declined.")
    expect(log.locator(".msg-customer .msg-body")).to_have_text("Still declined.")


@pytest.mark.parametrize("width", [390, 1280])
def test_the_longest_top_bar_fits_the_window(
    new_context, teams, make_agent, live_server_url, width
):
    """A staff supervisor's top bar carries every link (Queue … Routing, Admin), the
    search box and the status row; at phone width it wraps instead of widening the page
    (the walkthrough found Log out 124 px off a 390 px screen)."""
    boss = make_agent("boss", teams=[teams["billing-specialist"]], role=Role.SUPERVISOR)
    boss.user.is_staff = True
    boss.user.save()
    page = login(new_context(viewport={"width": width, "height": 844}), live_server_url, "boss")
    nav = page.locator(".topbar nav")
    for name in (
        "Queue",
        "My conversations",
        "History",
        "Saved replies",
        "Floor",
        "Reports",
        "Routing",
        "Admin",
    ):
        expect(nav.get_by_role("link", name=name, exact=False)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    for selector in (
        ".topbar nav a >> nth=-1",
        "#nav-search",
        ".end-shift",
        "#keys-help-open",
        ".topbar button.link",
    ):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, selector


def test_the_floor_and_the_routing_report_fit_a_phone(
    new_context, teams, make_agent, escalate, live_server_url
):
    """Their wide tables scroll inside their panel; nothing widens the page (the
    walkthrough found the floor 676 px and the routing report 510 px wide at 390)."""
    make_agent("boss", teams=[teams["billing-specialist"]], role=Role.SUPERVISOR)
    web_escalation(escalate, customer="cust-wide", name="Wanda Wide", summary="A wide row.")
    page = login(new_context(viewport={"width": 390, "height": 844}), live_server_url, "boss")
    for path in ("/floor/", "/reports/routing/"):
        page.goto(f"{live_server_url}{path}")
        expect(page.locator("main h1")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path


def test_saved_replies_history_and_the_reply_picker_fit_a_phone(
    new_context, teams, make_agent, escalate, live_server_url
):
    """Their tables scroll inside a wrapper and the opened picker (its excerpts don't
    wrap) stays in the one column; the walkthrough measured 451, 549 and 1032 px."""
    from handoffs.lifecycle import accept as accepting
    from handoffs.lifecycle import endings
    from handoffs.models import SavedReply

    alice = make_agent("alice", teams=[teams["billing-specialist"]])
    SavedReply.objects.create(
        team=teams["billing-specialist"],
        shortcut="refund",
        title="Refund on its way",
        body="Hi {{ customer.first_name }}, this is {{ agent.name }} from {{ team.name }}. "
        "Your refund for the duplicate charge is on its way and shows within five days.",
    )
    closed = web_escalation(escalate, customer="cust-old", name="Olga Old", summary="Done.")
    accepting.handoff_accept(handoff_id=closed.pk, agent=alice)
    endings.conversation_resolve(handoff_id=closed.pk, agent=alice, summary="Refunded.")
    open_one = web_escalation(escalate, customer="cust-new", name="Nina New", summary="Help.")
    accepting.handoff_accept(handoff_id=open_one.pk, agent=alice)
    page = login(new_context(viewport={"width": 390, "height": 844}), live_server_url, "alice")
    for path in ("/saved-replies/", "/history/"):
        page.goto(f"{live_server_url}{path}")
        expect(page.locator("main table")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
    page.goto(f"{live_server_url}/conversations/{open_one.pk}/")
    page.locator("#reply-picker-open").click()
    expect(page.locator("#reply-list li").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_the_login_page_and_the_supervisors_only_page_fit_a_phone(
    new_context, teams, make_agent, live_server_url
):
    """Both use the 380 px login card; with its padding it was 444 px on a 390 px phone."""
    make_agent("alice", teams=[teams["billing-specialist"]])
    context = new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(f"{live_server_url}/accounts/login/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.close()
    page = login(context, live_server_url, "alice")
    page.goto(f"{live_server_url}/floor/")
    expect(page.locator("h1")).to_have_text("Supervisors only")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
