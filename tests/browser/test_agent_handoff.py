"""The handoff as an agent lives it, in Chromium (issue 13's findings 1, 2, 3, 4, 5, 9).

Each test drives the real stack (escalations POSTed to the live Daphne, agents signed in
through the login form, the queue live over its socket) and asserts what a person sees.
"""

from __future__ import annotations

import re
import time

import httpx
import pytest
from playwright.sync_api import Page, expect

from handoffs.models import Agent, Handoff, Role, Status, Team

from .conftest import login, wait_live

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SUMMARY = (
    "The customer, a long-standing enterprise account holder, reports being charged twice "
    "($299) for one order. Tone: furious. <b>Needs refund</b> before the board meeting."
)


def accept(page: Page, base: str, handoff: Handoff) -> None:
    wait_live(page)
    page.locator(f"#handoff-{handoff.pk}").get_by_role("button", name="Accept").click()
    expect(page).to_have_url(f"{base}/conversations/{handoff.pk}/")
    wait_live(page)


def endings(page: Page):
    return page.get_by_role("region", name="Close this conversation")


def transfer(page: Page, to: str, note: str) -> None:
    form = endings(page)
    form.get_by_label("Action").select_option("transfer")
    form.get_by_label("Transfer to").select_option(to)
    form.get_by_label(re.compile(r"^Note")).fill(note)
    form.locator("button[type=submit]").click()
    expect(page.locator("#flash")).to_contain_text("Conversation transferred.")


# ---------------------------------------------------------------- finding 1
def test_a_failed_transfer_keeps_every_choice_and_resolve_asks_first(
    new_context, teams, billing_agents, escalate, live_server_url, dialogs
):
    base = live_server_url
    first = escalate.post(customer="cust-1", customer_name="Dave Miller", summary="Refund.")
    second = escalate.post(customer="cust-2", customer_name="Erin Cole", summary="Invoice copy.")
    alice = dialogs.watch(login(new_context(), base, "alice"))
    accept(alice, base, first)

    # Transfer, a team, no note: the error shows and nothing the agent chose is lost.
    form = endings(alice)
    form.get_by_label("Action").select_option("transfer")
    form.get_by_label("Transfer to").select_option("tech-support")
    form.get_by_label("Summary accurate").check()
    form.locator("button[type=submit]").click()
    form = endings(alice)
    expect(form.get_by_label("Action")).to_have_value("transfer")
    expect(form.get_by_label("Transfer to")).to_have_value("tech-support")
    expect(form.get_by_label("Summary accurate")).to_be_checked()
    expect(form.locator(".field-error")).to_contain_text("A note is required")
    first.refresh_from_db()
    assert first.status == Status.ACCEPTED

    # The note typed, the same press transfers: the customer is not resolved.
    form.get_by_label(re.compile(r"^Note")).fill("Refund done; the app crashes on login.")
    form.locator("button[type=submit]").click()
    expect(alice.locator("#flash")).to_contain_text("Conversation transferred.")
    first.refresh_from_db()
    assert first.status == Status.TRANSFERRED and first.rating == "accurate"
    assert Handoff.objects.get(previous=first).team.slug == "tech-support"

    # Resolve asks before closing the customer's link for good, with any rating.
    accept(alice, base, second)
    form = endings(alice)
    expect(form.get_by_label("Action")).to_have_value("resolve")
    form.get_by_label("Missing information").check()
    form.locator("button[type=submit]").click()
    confirm = alice.locator("#resolve-confirm")
    expect(confirm).to_contain_text("Resolve the conversation with Erin Cole?")
    second.refresh_from_db()
    assert second.status == Status.ACCEPTED  # not yet
    confirm.get_by_role("button", name="Yes, resolve").click()
    expect(alice.locator("#flash")).to_contain_text("Conversation resolved.")
    second.refresh_from_db()
    assert second.status == Status.RESOLVED and second.rating == "missing_info"
    assert dialogs.fired == []


# ---------------------------------------------------------------- finding 2
def test_the_opener_says_only_what_is_safe_to_say_to_the_customer(
    new_context, teams, make_agent, escalate, live_server_url, dialogs
):
    base = live_server_url
    make_agent("alice", teams=[teams["billing-specialist"]])
    make_agent("carol", teams=[teams["tech-support"]])
    handoff = escalate.post(
        customer="user-dave",
        customer_name="Dave Miller",
        summary=SUMMARY,
        reason="A <i>double charge</i> on your invoice",
    )
    alice = dialogs.watch(login(new_context(), base, "alice"))
    accept(alice, base, handoff)
    draft = alice.locator("#message-body").input_value()
    assert draft == (
        "Hi Dave, I'm Alice from Billing specialists. I can see you've been in touch about "
        "a double charge on your invoice, and I have the notes from your conversation so "
        "far, so you don't need to repeat anything."
    )
    for internal in ("customer", "enterprise", "furious", "$299", "<", "board", "I can see the"):
        assert internal not in draft

    # After a transfer the next agent's opener never quotes the colleague's note.
    note = "not a tech issue after all: Sending back to billing, customer is a pain."
    transfer(alice, "tech-support", note)
    carol = dialogs.watch(login(new_context(), base, "carol"))
    next_hop = Handoff.objects.get(previous=handoff)
    accept(carol, base, next_hop)
    draft = carol.locator("#message-body").input_value()
    assert draft.startswith("Hi Dave, I'm Carol from Technical support.")
    assert "a double charge on your invoice" in draft  # the bot's stated topic holds
    for internal in ("tech issue", "Sending back", "pain", "Alice"):
        assert internal not in draft
    assert dialogs.fired == []


# ---------------------------------------------------------------- finding 3
def test_unknown_targets_reach_people_agents_release_supervisors_move_to_a_team(
    new_context, teams, make_agent, escalate, live_server_url, dialogs
):
    base = live_server_url
    make_agent("alice", teams=[teams["billing-specialist"]])
    make_agent("bob", teams=[teams["billing-specialist"]])
    make_agent("carol", teams=[teams["tech-support"]])
    make_agent("sue", role=Role.SUPERVISOR)
    # The default queue exists from the first migration (flushed between these tests).
    Team.objects.get_or_create(
        slug="general", defaults={"name": "General queue", "is_default": True}
    )
    carol = dialogs.watch(login(new_context(), base, "carol"))
    wait_live(carol)

    # A bot names a target nobody knows: it lands in the default queue every agent serves.
    lost = escalate.post(customer="cust-lost", summary="Where is my parcel?", to_agent="shipping")
    assert lost.team.slug == "general" and lost.misrouted
    row = carol.locator(f"#handoff-{lost.pk}")
    expect(row).to_be_visible()
    expect(row.locator(".flag")).to_have_text("unknown target")

    # A supervisor moves it to billing's queue: off Carol's screen, onto Bob's.
    bob = dialogs.watch(login(new_context(), base, "bob"))
    wait_live(bob)
    sue = dialogs.watch(login(new_context(), base, "sue"))
    sue.goto(f"{base}/floor/handoffs/{lost.pk}/reassign")
    move = sue.get_by_role("form", name="Move to a team's queue")
    move.get_by_label("Team").select_option("billing-specialist")
    move.get_by_role("button", name="Move to this queue").click()
    expect(sue).to_have_url(f"{base}/floor/")
    expect(sue.locator("#flash")).to_contain_text("moved to the Billing specialists queue")
    expect(bob.locator(f"#handoff-{lost.pk}")).to_be_visible()
    expect(carol.locator(f"#handoff-{lost.pk}")).to_have_count(0)

    # Alice takes it, then releases it to her team's queue: Bob sees it come back.
    alice = dialogs.watch(login(new_context(), base, "alice"))
    accept(alice, base, Handoff.objects.get(pk=lost.pk))
    form = endings(alice)
    form.get_by_label("Action").select_option("release")
    expect(form.get_by_label("Transfer to")).to_be_hidden()
    form.locator("button[type=submit]").click()
    expect(alice.locator("#flash")).to_contain_text("released to the team's queue")
    released = Handoff.objects.get(previous=lost)
    assert released.team.slug == "billing-specialist" and released.status == Status.WAITING
    expect(bob.locator(f"#handoff-{released.pk}")).to_be_visible()
    expect(bob.locator(f"#handoff-{released.pk} .excerpt")).to_contain_text("Where is my parcel?")
    assert dialogs.fired == []


# ---------------------------------------------------------------- finding 4
def test_hops_carry_the_customers_state_and_flag_a_ping_pong(
    new_context, teams, make_agent, escalate, live_server_url, dialogs
):
    base = live_server_url
    make_agent("alice", teams=[teams["billing-specialist"]])
    make_agent("bob", teams=[teams["billing-specialist"]])
    make_agent("carol", teams=[teams["tech-support"]])
    first = escalate.post(
        customer="cust-pp",
        customer_name="Pat Price",
        summary="Double charge, angry.",
        sentiment="frustrated",
        urgency="high",
    )
    alice = dialogs.watch(login(new_context(), base, "alice"))
    carol = dialogs.watch(login(new_context(), base, "carol"))
    wait_live(carol)
    accept(alice, base, first)
    transfer(alice, "tech-support", "Refund done. Seems fine now, just a quick app question.")

    second = Handoff.objects.get(previous=first)
    row = carol.locator(f"#handoff-{second.pk}")
    # A calm note doesn't calm the customer: frustrated and high, as the bot said.
    expect(row.locator(".badge.sentiment")).to_have_text(re.compile(r"\bFrustrated$"))
    expect(row.locator(".badge.urgency")).to_have_text(re.compile(r"\bHigh urgency$"))
    # Their wait started when they first asked for a human, not at this hop.
    expect(row.locator(".wait-since")).to_contain_text("Customer waiting since")
    since = row.locator(".wait-since .timer").get_attribute("data-since")
    assert int(since) == int(first.created_at.timestamp() * 1000)

    accept(carol, base, second)
    transfer(carol, "billing-specialist", "Not an app problem; back to billing.")
    third = Handoff.objects.get(previous=second)
    assert (third.sentiment, third.urgency) == ("frustrated", "high")
    assert third.bounce == "ping_pong"
    bob = dialogs.watch(login(new_context(), base, "bob"))
    wait_live(bob)
    row = bob.locator(f"#handoff-{third.pk}")
    expect(row.locator(".badge.sentiment")).to_have_text(re.compile(r"\bFrustrated$"))
    expect(row.locator(".bounce")).to_have_text("ping-pong")
    row.locator(".customer a").click()
    expect(bob.locator("#handoff-status .bounce")).to_have_text("ping-pong")
    expect(bob.get_by_role("region", name="Handoff chain")).to_contain_text("ping-pong")
    assert dialogs.fired == []


# ---------------------------------------------------------------- finding 5 (and 6, 7)
def test_the_card_after_a_hop_reads_as_people_talk(
    new_context, teams, make_agent, escalate, live_server_url, bot_key, dialogs
):
    base = live_server_url
    make_agent("alice", teams=[teams["billing-specialist"]])
    make_agent("carol", teams=[teams["tech-support"]])
    session = escalate.session("user-frank")
    escalate.memory("user-frank", "Plan: Business, since 2019.", metadata={"type": "context"})
    escalate.memory(
        "user-frank", "Wants any refund back on the original card.", metadata={"type": "preference"}
    )
    time.sleep(1.1)  # memories carry whole seconds: the next one is later
    escalate.memory(
        "user-frank",
        "Bot checked the invoice: two charges of $299.",
        metadata={"type": "action"},
        session_id=session,
    )
    handoff = escalate.post(
        customer="user-frank",
        customer_name="Frank Ocean",
        summary="Charged twice for one order.",
        session_id=session,
    )
    alice = dialogs.watch(login(new_context(), base, "alice"))
    accept(alice, base, handoff)
    alice.fill("#message-body", "Looking at it now.")
    alice.locator("#composer").get_by_role("button", name="Send").click()
    expect(alice.locator("#messages > .msg-agent")).to_have_count(1)
    transfer(alice, "tech-support", "Refund done (RF-1). The app crashes on login now.")

    carol = dialogs.watch(login(new_context(), base, "carol"))
    next_hop = Handoff.objects.get(previous=handoff)
    accept(carol, base, next_hop)
    card = carol.locator("#handoff-card")
    text = card.inner_text()
    expect(card.locator(".card-head")).to_contain_text("From Alice to Technical support")
    expect(card.get_by_role("region", name="Handoff summary").locator("h2")).to_have_text(
        "Alice's note to you"
    )
    for raw in (
        "human:alice",
        "tech-support",
        "Namespace",
        "user-frank",
        "CHAT_MESSAGE",
        "CONTEXT",
        "SAID AND DID",
    ):
        assert raw not in text, raw
    # Alice's chat is the conversation itself: not repeated as "what she said and did".
    assert "Looking at it now." not in text
    expect(carol.locator("details.bot-part")).to_have_count(0)
    chain = card.get_by_role("region", name="Handoff chain")
    expect(chain.locator("li").first).to_contain_text("tier1-bot → Billing specialists")
    expect(chain.locator("li").nth(1)).to_contain_text("Alice → Technical support")
    recalled = card.get_by_role("region", name="Recalled context")
    expect(card.get_by_role("region", name="Account facts")).to_contain_text("Plan: Business")
    expect(recalled.locator("li").first).to_contain_text(
        "Wants any refund back on the original card."
    )
    expect(recalled.locator("li").nth(1)).to_contain_text("Bot checked the invoice")
    expect(recalled.locator("li time").first).to_have_text(re.compile(r"\w{3} \d+, \d\d:\d\d"))
    times = [float(t) for t in recalled.locator("li").evaluate_all("e => e.map(l => l.dataset.at)")]
    assert times == sorted(times)  # oldest first
    assert "Memory context unavailable" not in text

    # A handoff through the API naming a session the store doesn't know: a plain line.
    response = httpx.post(
        f"{base}/api/v1/handoffs",
        headers={"Authorization": f"Bearer {bot_key}"},
        json={
            "customer": "user-dave",
            "source_session_id": "sess_0123",
            "from_agent": "tier1-bot",
            "to_agent": "billing-specialist",
            "summary": "Customer reports a $100 overcharge.",
            "customer_name": "Dave",
        },
        timeout=10,
    )
    assert response.status_code == 201, response.text
    api_hop = Handoff.objects.get(customer="user-dave")
    alice.goto(f"{base}/handoffs/{api_hop.pk}/")
    card = alice.locator("#handoff-card")
    expect(card.locator(".no-session")).to_have_text(
        "No bot session recorded for this handoff: the summary above is what the bot sent."
    )
    expect(card).not_to_contain_text("Memory context unavailable")
    assert dialogs.fired == []


# ---------------------------------------------------------------- finding 9
def saved(page, enabled: bool) -> None:
    """Wait (up to 5 s) for the POST the alerts button sent to store ``enabled``."""
    for _ in range(50):
        if Agent.objects.get(user__username="alice").alerts_enabled == enabled:
            return
        page.wait_for_timeout(100)
    assert Agent.objects.get(user__username="alice").alerts_enabled == enabled


def test_a_dismissed_permission_prompt_never_keeps_alerts_on(
    new_context, teams, billing_agents, live_server_url, dialogs
):
    """The browser's question left unanswered (the agent closed the prompt): the button says
    so, and the next click still turns alerts off instead of asking again."""
    context = new_context()
    # A dismissed prompt: the request resolves without an answer, the permission stays so.
    context.add_init_script("Notification.requestPermission = () => Promise.resolve('default');")
    alice = dialogs.watch(login(context, live_server_url, "alice"))
    button = alice.locator("#alerts-toggle")
    button.click()
    expect(button).to_have_text("Alerts on: sound · desktop not allowed yet")
    saved(alice, True)
    button.click()
    expect(button).to_have_text("Alerts off")
    saved(alice, False)
    assert dialogs.fired == []


def test_alerts_show_the_browsers_real_permission_and_hold_on_every_page(
    new_context, teams, billing_agents, live_server_url, dialogs
):
    base = live_server_url
    alice = dialogs.watch(login(new_context(), base, "alice"))
    button = alice.locator("#alerts-toggle")
    expect(button).to_have_text("Alerts off")
    permission = alice.evaluate("Notification.permission")
    assert permission != "granted"  # this browser context was given no permission
    button.click()
    expect(button).to_have_attribute("aria-pressed", "true")
    expect(button).not_to_have_text(re.compile("desktop$"))
    expect(button).to_have_text(re.compile(r"^Alerts on: sound"))
    expect(button).to_have_attribute("data-permission", alice.evaluate("Notification.permission"))
    saved(alice, True)

    # Another page, another visit: still on, and sound works after any click there.
    alice.goto(f"{base}/conversations/")
    button = alice.locator("#alerts-toggle")
    expect(button).to_have_text(re.compile(r"^Alerts on: sound"))
    assert alice.evaluate("window.handoffAlerts.enabled()")
    alice.locator("main").click()
    alice.wait_for_function("window.handoffAlerts.audioState() === 'running'")

    # Where the browser allows notifications, the button says so.
    granted = new_context()
    granted.grant_permissions(["notifications"], origin=base)
    bob = dialogs.watch(login(granted, base, "bob"))
    bob.locator("#alerts-toggle").click()
    expect(bob.locator("#alerts-toggle")).to_have_text("Alerts on: sound + desktop")

    # Turned off, it stays off.
    alice.locator("#alerts-toggle").click()
    expect(alice.locator("#alerts-toggle")).to_have_text("Alerts off")
    saved(alice, False)  # the page shows it at once; the reload must find it stored
    alice.reload()
    expect(alice.locator("#alerts-toggle")).to_have_text("Alerts off")
    assert dialogs.fired == []
