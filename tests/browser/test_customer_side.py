"""The customer's side in Chromium, on a phone (390×844) and a desktop.

- waiting: the customer sees a person is coming, the topic, their place in the queue
  (going down live as agents accept others) and the wait;
- the loop back to the bot: after a hand back the customer's message is delivered to the
  demo bot (``manage.py demo_bot``) as a signed webhook by the worker
  (``manage.py run_worker``), and the bot's answer appears in the chat;
- after resolve: one tap rates the conversation, the rating is on the agent's screen and
  in the supervisors' report; a reload still shows the transcript;
- the widget on the demo page opens the same conversation as the link, shows an unread
  dot, works with the keyboard, is full screen on a phone, and refuses to load in a
  frame from an origin the bot doesn't list;
- the customer page passes axe-core (0 critical / serious) and has its landmarks.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from handoffs.models import Bot, Conversation, Handoff, OutboxStatus, Role, WebhookDelivery

from ..conftest import ROOT, free_port
from ..conftest import test_database_env as database_env
from .axe import violations as serious
from .conftest import login, wait_live, web_escalation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
    "desktop": {"viewport": {"width": 1280, "height": 900}},
}


@pytest.fixture(params=sorted(VIEWPORTS))
def device(request) -> tuple[str, dict[str, Any]]:
    return request.param, VIEWPORTS[request.param]


def customer_page(new_context, device, url: str) -> Page:
    _name, options = device
    page = new_context(**options).new_page()
    page.goto(url)
    expect(page.locator("#live")).to_have_text("Live")
    return page


def link_of(handoff: Handoff) -> str:
    conversation = Conversation.objects.get(pk=handoff.conversation_id)
    return f"/c/{conversation.token}/"


def accept(agent_page: Page, base: str, handoff: Handoff) -> None:
    agent_page.goto(f"{base}/")
    wait_live(agent_page)
    agent_page.locator(f"#handoff-{handoff.pk}").get_by_role("button", name="Accept").click()
    expect(agent_page).to_have_url(f"{base}/conversations/{handoff.pk}/")
    wait_live(agent_page)


def close_as(agent_page: Page, action: str, note: str = "") -> None:
    endings = agent_page.get_by_role("region", name="Close this conversation")
    endings.get_by_label("Action").select_option(action)
    if note:
        endings.get_by_label(re.compile(r"^Note")).fill(note)
    endings.locator("button[type=submit]").first.click()
    if action == "resolve":  # Resolve asks to be confirmed (issue 13)
        agent_page.locator("#resolve-confirm").get_by_role("button", name="Yes, resolve").click()


def send(page: Page, text: str) -> None:
    page.fill("#message-body", text)
    page.locator("#composer").get_by_role("button", name="Send").click()


# ---------------------------------------------------------------- waiting, told honestly
def test_queue_position_goes_down_as_agents_accept_others(
    new_context, device, teams, make_agent, escalate, live_server_url
):
    base = live_server_url
    billing = teams["billing-specialist"]
    make_agent("alice", teams=[billing])
    make_agent("bob", teams=[billing])
    first = web_escalation(escalate, customer="cust-a", name="Ann", summary="Refund for order 1.")
    second = web_escalation(escalate, customer="cust-b", name="Ben", summary="Invoice is wrong.")
    mine = web_escalation(
        escalate,
        customer="cust-c",
        name="Cleo",
        summary="Charged twice for the May invoice. Wants the duplicate refunded.",
        reason="Double charge on the May invoice",
    )

    customer = customer_page(new_context, device, base + link_of(mine))
    status = customer.get_by_role("region", name="Where you stand")
    expect(status).to_contain_text("A person from Billing specialists will join you.")
    expect(status.locator(".topic")).to_have_text("Double charge on the May invoice")
    expect(customer.locator("#queue-position strong")).to_have_text("number 3")
    # No accepts yet in this team: too little data for an estimate.
    expect(customer.locator("#queue-estimate")).to_have_text(
        re.compile(r"We usually answer within \d+ minutes?\.")
    )

    alice = login(new_context(), base, "alice")
    accept(alice, base, first)
    expect(customer.locator("#queue-position strong")).to_have_text("number 2")
    bob = login(new_context(), base, "bob")
    accept(bob, base, second)
    expect(customer.locator("#queue-position strong")).to_have_text("number 1")

    # Alice takes this one: the customer sees her name and team.
    alice.locator("a", has_text="Back to the queue").click()
    accept(alice, base, mine)
    expect(customer.locator("#with-agent")).to_have_text(
        "You're chatting with Alice from Billing specialists."
    )
    expect(customer.locator("#messages > .msg-system").last).to_have_text(
        "Alice from Billing specialists joined the conversation."
    )


# ---------------------------------------------------------------- the loop back to the bot
@pytest.fixture
def demo_bot_and_worker(live_console, bot_and_key) -> Iterator[Bot]:
    """``manage.py demo_bot`` and ``manage.py run_worker`` against the test database, the
    bot's callback pointing at the demo bot."""
    bot, key = bot_and_key
    port = free_port()
    Bot.objects.filter(pk=bot.pk).update(callback_url=f"http://127.0.0.1:{port}/webhooks")
    env = {**os.environ, **database_env(), "DJANGO_DEBUG": "1"}
    log = open(ROOT / f".pytest_cache/demo-bot-{port}.log", "w")  # noqa: SIM115
    processes = [
        subprocess.Popen(
            [sys.executable, "manage.py", "demo_bot", "--port", str(port)]
            + ["--console", live_console.url],
            cwd=ROOT,
            env={**env, "DEMO_BOT_KEY": key, "DEMO_BOT_SECRET": bot.webhook_secret},
            stdout=log,
            stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            [sys.executable, "manage.py", "run_worker", "--poll", "0.2"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        ),
    ]
    yield bot
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    log.close()


def test_after_hand_back_the_demo_bot_answers_the_customer(
    new_context, device, teams, make_agent, escalate, live_server_url, demo_bot_and_worker
):
    base = live_server_url
    make_agent("alice", teams=[teams["billing-specialist"]])
    handoff = web_escalation(
        escalate, customer="cust-d", name="Dave", summary="Charged $299, plan is $199."
    )
    customer = customer_page(new_context, device, base + link_of(handoff))
    alice = login(new_context(), base, "alice")
    accept(alice, base, handoff)
    send(alice, "Refund of $100 is on its way.")
    expect(customer.locator("#messages > .msg-agent")).to_contain_text("Refund of $100")

    close_as(alice, "handback", note="Refund done; nothing else open.")
    expect(customer.locator("#messages > .msg-system").last).to_contain_text(
        "You're back with our assistant"
    )
    expect(customer.locator("#with-bot")).to_be_visible()

    send(customer, "Thanks! Will I get an email receipt?")
    answer = customer.locator("#messages > .msg-bot")
    expect(answer).to_contain_text("I got your message: “Thanks! Will I get an email receipt?”")
    expect(answer.locator(".who")).to_have_text("Assistant")
    delivery = WebhookDelivery.objects.get(event="message.created")
    assert delivery.status == OutboxStatus.DONE
    assert delivery.payload["message"]["sender"] == "customer"
    assert delivery.payload["message"]["body"] == "Thanks! Will I get an email receipt?"

    # Asking for a person escalates again: the customer is back in the queue.
    send(customer, "Actually I'd like to talk to an agent")
    expect(customer.locator("#queue-position strong")).to_have_text("number 1", timeout=15_000)
    again = Handoff.objects.filter(conversation_id=handoff.conversation_id).order_by("-pk")[0]
    assert again.status == "waiting" and again.hop_index == 2


# ---------------------------------------------------------------- rating and transcript
def test_one_tap_rating_reaches_the_agent_and_the_report_and_reload_keeps_the_transcript(
    new_context, device, teams, make_agent, escalate, live_server_url
):
    base = live_server_url
    make_agent("alice", teams=[teams["billing-specialist"]])
    make_agent("sam", teams=[teams["billing-specialist"]], role=Role.SUPERVISOR)
    handoff = web_escalation(escalate, customer="cust-e", name="Eve", summary="Wrong VAT rate.")
    customer = customer_page(new_context, device, base + link_of(handoff))
    alice = login(new_context(), base, "alice")
    accept(alice, base, handoff)
    send(customer, "The VAT on my invoice is 25%, should be 19%.")
    send(alice, "Corrected: new invoice INV-77 sent.")
    expect(customer.locator("#messages > .msg-agent")).to_contain_text("INV-77")
    alice_conversation = alice.url

    close_as(alice, "resolve", note="Invoice corrected.")
    # The page turns into the read-only transcript with the rating question.
    rating = customer.get_by_role("region", name="How did we do?")
    expect(rating).to_be_visible()
    expect(customer.locator("#composer")).to_have_count(0)
    expect(customer.locator("#messages")).to_contain_text("INV-77")

    rating.get_by_role("button", name="5 of 5: Very good").tap() if device[0] == "phone" else (
        rating.get_by_role("button", name="5 of 5: Very good").click()
    )
    expect(customer.locator("#rating-given")).to_contain_text("5 out of 5")
    conversation = Conversation.objects.get(pk=handoff.conversation_id)
    assert conversation.csat_score == 5
    assert Handoff.objects.get(pk=handoff.pk).csat_score == 5

    # Reload: still the transcript, with the rating given.
    customer.reload()
    expect(customer.locator("#messages")).to_contain_text("The VAT on my invoice is 25%")
    expect(customer.locator("#messages")).to_contain_text("INV-77")
    expect(customer.locator("#rating-given")).to_contain_text("5 out of 5")

    # The agent sees it on the conversation page; the supervisor in the report.
    alice.goto(alice_conversation)
    expect(alice.locator("#csat .csat-score")).to_have_text("5/5")
    sam = login(new_context(), base, "sam")
    sam.goto(f"{base}/reports/transfers/")
    expect(sam.locator("#csat-score")).to_have_text("100%")
    expect(sam.locator("#csat-response")).to_have_text("100%")
    expect(sam.locator("#csat-agent tr[data-name=alice] .score")).to_have_text("100%")
    expect(sam.locator("#csat-team tr[data-name=billing-specialist] .response")).to_have_text(
        "100%"
    )
    expect(sam.locator("#csat-source tr[data-name=tier1-bot] .score")).to_have_text("100%")
    csv = sam.request.get(f"{base}/reports/transfers.csv").text()
    header, row = csv.splitlines()[:2]
    assert header.endswith("csat_asked,csat_score,csat_comment")
    assert row.endswith("yes,5,")


# ---------------------------------------------------------------- the widget
def frame_of(page: Page):
    return page.locator("#handoff-chat-frame").content_frame


def test_the_widget_opens_the_same_conversation_and_only_listed_origins_may_frame_it(
    new_context, device, teams, make_agent, escalate, live_server_url, bot
):
    base = live_server_url
    make_agent("alice", teams=[teams["billing-specialist"]])
    handoff = web_escalation(escalate, customer="cust-f", name="Fay", summary="Card declined.")
    link = base + link_of(handoff)
    alice = login(new_context(), base, "alice")
    accept(alice, base, handoff)
    send(alice, "Hi Fay, I'm looking at the declined card now.")

    name, options = device
    context: BrowserContext = new_context(**options)
    site = context.new_page()
    site.goto(f"{base}/demo/widget/")
    launcher = site.locator("#handoff-chat-launcher")
    site.get_by_role("button", name="Open the chat of Fay").click()
    frame = frame_of(site)
    expect(frame.locator("#live")).to_have_text("Live")
    expect(frame.locator("#messages > .msg-agent")).to_contain_text("declined card")
    # The same conversation as the link.
    direct = context.new_page()
    direct.goto(link)
    assert frame.locator("#messages").inner_text() == direct.locator("#messages").inner_text()
    assert site.locator("#handoff-chat-frame").get_attribute("src") == link
    direct.close()

    panel = site.locator("#handoff-chat-panel")
    box = panel.bounding_box()
    if name == "phone":  # full screen on a phone
        assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 390, 844)
    else:
        assert box["width"] == 380 and box["x"] > 800

    # Keyboard: Escape closes and gives focus back to the bubble; Enter opens again.
    frame.locator("#message-body").focus()
    site.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(launcher).to_be_focused()
    expect(launcher).to_have_attribute("aria-expanded", "false")

    # A message while closed shows the unread dot (and says so to screen readers).
    send(alice, "Your card was blocked by the bank's fraud check.")
    expect(site.locator("#handoff-chat-unread")).to_be_visible()
    expect(launcher).to_have_attribute("aria-label", "Open the chat (new message)")
    site.keyboard.press("Enter")
    expect(panel).to_be_visible()
    expect(site.locator("#handoff-chat-unread")).to_be_hidden()
    expect(frame.locator("#messages")).to_contain_text("fraud check")

    # Another origin (localhost is not 127.0.0.1) the bot doesn't list: the frame is refused.
    port = base.rsplit(":", 1)[1]
    other = context.new_page()
    other.goto(f"http://localhost:{port}/demo/widget/")
    with other.expect_response(link) as refused:
        other.evaluate("url => window.HandoffChat.open(url)", link)
    assert "frame-ancestors 'self'" in refused.value.headers["content-security-policy"]
    assert "localhost" not in refused.value.headers["content-security-policy"]
    expect(other.locator("#handoff-chat-panel")).to_be_visible()
    refused_frame = other.frame_locator("#handoff-chat-frame")
    other.wait_for_timeout(1000)
    assert refused_frame.locator("#messages").count() == 0
    assert any(f.url.startswith("chrome-error://") for f in other.frames)

    # Listed for the bot: the same page may frame it.
    Bot.objects.filter(pk=bot.pk).update(widget_origins=f"http://localhost:{port}")
    other.reload()  # the bubble comes back from sessionStorage; open it
    other.locator("#handoff-chat-launcher").click()
    expect(frame_of(other).locator("#messages")).to_contain_text("fraud check")


# ---------------------------------------------------------------- accessibility


def test_the_customer_page_passes_axe_and_has_landmarks(
    new_context, device, teams, make_agent, escalate, live_server_url
):
    base = live_server_url
    make_agent("alice", teams=[teams["billing-specialist"]])
    handoff = web_escalation(escalate, customer="cust-g", name="Gus", summary="Login fails.")
    customer = customer_page(new_context, device, base + link_of(handoff))
    for role in ("banner", "main", "contentinfo"):
        expect(customer.get_by_role(role)).to_have_count(1)
    assert serious(customer) == []
    # The check can fail: a button without a name is reported (then removed again).
    customer.evaluate(
        "document.querySelector('main').insertAdjacentHTML('beforeend', "
        "'<button id=axe-probe></button>')"
    )
    assert any(line.startswith("button-name (critical)") for line in serious(customer))
    customer.evaluate("document.getElementById('axe-probe').remove()")

    alice = login(new_context(), base, "alice")
    accept(alice, base, handoff)
    send(customer, "It still fails after a reset.")
    send(alice, "Reset done on our side; try again please.")
    expect(customer.locator("#messages > .msg-agent")).to_be_visible()
    close_as(alice, "resolve", note="Reset.")
    expect(customer.get_by_role("region", name="How did we do?")).to_be_visible()
    for role in ("banner", "main", "contentinfo"):
        expect(customer.get_by_role(role)).to_have_count(1)
    assert serious(customer) == []


def test_transcript_downloads_are_clean_files(new_context, teams, escalate, live_server_url):
    handoff = web_escalation(escalate, customer="cust-h", name="Hal", summary="<b>bold</b> claim.")
    url = live_server_url + link_of(handoff)
    httpx.post(url + "messages", data={"body": "<script>x()</script>", "client_id": "h-1"})
    text = httpx.get(url + "transcript.txt")
    assert text.headers["content-disposition"].startswith("attachment;")
    assert "You:\n  <script>x()</script>" in text.text
    html = httpx.get(url + "transcript.html")
    assert "&lt;script&gt;x()&lt;/script&gt;" in html.text
    assert "<script>" not in html.text
