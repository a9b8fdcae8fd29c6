"""The composer in Chromium: saved replies with `/`, attachments both ways (paste, picker),
who may open a file, and a 20,000-character paste that keeps every character.

Escalations are posted over HTTP to the live Daphne (tests/browser/conftest.py).
"""

from __future__ import annotations

import base64
import re
import time

import httpx
import pytest
import time_machine
from playwright.sync_api import Page, Route, expect

from handoffs.access import links
from handoffs.models import Attachment, Message, SavedReply
from tests.files import images

from .conftest import accept_and_chat, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SUMMARY = "Charged twice for order 1182; customer wants one charge refunded."


def open_chat(new_context, escalate, base: str, *, customer_name: str = "Dana Whitfield"):
    """Alice accepts a fresh escalation; the customer opens the chat link. Both live."""
    handoff = escalate.post(
        customer="cust-7781",
        customer_name=customer_name,
        summary=SUMMARY,
        reason="a double charge",
    )
    alice, customer = accept_and_chat(new_context, base, handoff)
    return handoff, alice, customer


def paste_file(page: Page, selector: str, data: bytes, name: str, mime: str) -> None:
    """Dispatch a real paste event carrying a file (what a screenshot paste does)."""
    page.evaluate(
        """([selector, b64, name, mime]) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: mime }));
            const event = new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true,
                                                        cancelable: true });
            document.querySelector(selector).dispatchEvent(event);
        }""",
        [selector, base64.b64encode(data).decode(), name, mime],
    )


def test_slash_refund_inserts_the_filled_reply_and_the_customer_reads_it(
    new_context, teams, make_agent, escalate, live_server_url
):
    base = live_server_url
    make_agent("alice", teams=[teams["billing-specialist"]])
    reply = SavedReply.objects.create(
        team=teams["billing-specialist"],
        shortcut="refund",
        title="Refund on its way",
        body="Hi {{ customer.first_name }}, this is {{ agent.name }} from {{ team.name }}. "
        "About {{ topic }}: your refund is on its way.",
    )
    SavedReply.objects.create(
        team=teams["billing-specialist"], shortcut="receipt", title="Receipt", body="Receipt."
    )
    handoff, alice, customer = open_chat(new_context, escalate, base)
    box = alice.locator("#message-body")
    box.fill("")
    box.press_sequentially("/ref")
    popup = alice.locator("#slash-popup")
    expect(popup).to_be_visible()
    expect(popup.locator(".choice")).to_have_count(1)
    expect(popup.locator(".choice.active")).to_contain_text("/refund")
    box.press("Enter")  # chooses the suggestion, doesn't send
    filled = (
        "Hi Dana, this is Alice from Billing specialists. About a double charge: your refund "
        "is on its way."
    )
    expect(box).to_have_value(filled)
    expect(popup).to_be_hidden()
    expect(alice.locator("#composer-flags")).to_be_hidden()
    box.press("Enter")
    expect(customer.locator("#messages > .msg-agent .msg-body").last).to_have_text(filled)
    assert "{{" not in Message.objects.filter(sender="agent").last().body
    reply.refresh_from_db()
    assert reply.use_count == 1

    # A variable with no value is flagged, blocks the send, and never reaches the customer.
    handoff.refresh_from_db()
    SavedReply.objects.create(
        owner=handoff.accepted_by, shortcut="late", title="Late", body="Sorry {{ customer.nick }}."
    )
    box.press_sequentially("/late")
    expect(popup.locator(".choice.active")).to_contain_text("/late")
    box.press("Tab")
    expect(box).to_have_value("Sorry {{ customer.nick }}.")
    expect(alice.locator("#composer-flags")).to_contain_text("{{ customer.nick }}")
    box.press("Enter")
    expect(alice.locator("#composer-error")).to_contain_text("replace the {{ … }}")
    expect(box).to_have_value("Sorry {{ customer.nick }}.")
    assert not Message.objects.filter(body__contains="{{").exists()

    # The searchable picker inserts too.
    box.fill("")
    alice.get_by_role("button", name="Saved replies").click()
    alice.fill("#reply-search", "receipt")
    expect(alice.locator("#reply-list .choice")).to_have_count(1)
    alice.locator("#reply-search").press("Enter")
    expect(box).to_have_value("Receipt.")
    # Beside text already typed it is set apart by a space, not glued to the last word.
    box.fill("Thanks for waiting.")
    # Enter before this opening's list has arrived chooses nothing (the last opening's
    # choice carried the caret of an empty box and put "Receipt." first) and sends nothing.
    held: list[Route] = []
    alice.route(re.compile(r".*/saved-replies$"), lambda route: held.append(route))
    alice.get_by_role("button", name="Saved replies").click()
    # The last opening's list (filtered to one reply) is not shown again meanwhile.
    expect(alice.locator("#reply-list .choice")).to_have_count(0)
    expect(alice.locator("#reply-list")).to_contain_text("Loading saved replies")
    alice.locator("#reply-search").press("Enter")
    alice.wait_for_timeout(200)
    expect(box).to_have_value("Thanks for waiting.")
    assert held, "the picker asked for its list"
    for route in held:
        route.continue_()
    alice.unroute(re.compile(r".*/saved-replies$"))
    alice.fill("#reply-search", "receipt")
    expect(alice.locator("#reply-list .choice")).to_have_count(1)
    alice.locator("#reply-search").press("Enter")
    expect(box).to_have_value("Thanks for waiting. Receipt.")
    assert Message.objects.filter(body__startswith="Thanks for waiting").count() == 0


def test_customer_pastes_an_image_and_the_agent_opens_it(
    new_context, teams, make_agent, escalate, live_server_url
):
    base = live_server_url
    make_agent("alice", teams=[teams["billing-specialist"]])
    _, alice, customer = open_chat(new_context, escalate, base)
    shot = images.png_with_gps((900, 700))
    assert b"eXIf" in shot and b"secret-location" in shot
    paste_file(customer, "#message-body", shot, "screenshot.png", "image/png")
    mine = customer.locator("#messages > .msg-customer figure.attachment-image")
    expect(mine).to_have_count(1)
    thumb = alice.locator("#messages > .msg-customer img.attachment-thumb")
    expect(thumb).to_have_count(1)
    # The thumbnail really loaded (a server-made image, smaller than the original).
    alice.wait_for_function(
        "() => { const i = document.querySelector('#messages img.attachment-thumb');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    width = alice.evaluate("document.querySelector('#messages img.attachment-thumb').naturalWidth")
    assert 0 < width <= 480
    with alice.context.expect_page() as opened:
        thumb.click()
    full = opened.value
    full.wait_for_load_state()
    assert "/files/" in full.url
    response = alice.context.request.get(full.url)
    assert response.status == 200 and response.headers["content-type"] == "image/png"
    served = response.body()
    assert b"eXIf" not in served and b"secret-location" not in served  # GPS, text: gone
    attachment = Attachment.objects.get()
    assert (attachment.width, attachment.height) == (900, 700)


def test_agent_sends_a_pdf_the_customer_downloads_and_no_one_else_opens(
    new_context, teams, make_agent, escalate, live_server_url, tmp_path, settings
):
    base = live_server_url
    make_agent("alice", teams=[teams["billing-specialist"]])
    make_agent("carol", teams=[teams["tech-support"]])
    _, alice, customer = open_chat(new_context, escalate, base)
    pdf = tmp_path / "refund-confirmation.pdf"
    pdf.write_bytes(images.pdf())
    alice.set_input_files("#attach-input", str(pdf))
    link = customer.locator("#messages > .msg-agent a.attachment-download")
    expect(link).to_contain_text("refund-confirmation.pdf")
    with customer.expect_download() as downloading:
        link.click()
    download = downloading.value
    assert download.suggested_filename == "refund-confirmation.pdf"
    with open(download.path(), "rb") as fh:
        assert fh.read() == images.pdf()

    attachment = Attachment.objects.get()
    agent_url = f"{base}/files/{attachment.public_id}/"
    assert alice.context.request.get(agent_url).status == 200
    # Carol (tech support, never had this conversation) can't open it.
    carol = login(new_context(), base, "carol")
    assert carol.context.request.get(agent_url).status == 404
    # Nor can anyone without a session, and a signed link stops working when it expires.
    assert httpx.get(agent_url).status_code == 404
    fresh = f"{base}/files/s/{links.sign(str(attachment.public_id))}/"
    assert httpx.get(fresh).status_code == 200
    with time_machine.travel(-(settings.ATTACHMENT_LINK_MAX_AGE + 60)):
        old = f"{base}/files/s/{links.sign(str(attachment.public_id))}/"
    assert httpx.get(old).status_code == 403


@pytest.mark.parametrize("side", ["customer", "agent"])
def test_a_20000_character_paste_keeps_the_text_and_shows_the_counter(
    side, new_context, teams, make_agent, escalate, live_server_url
):
    base = live_server_url
    make_agent("alice", teams=[teams["billing-specialist"]])
    _, alice, customer = open_chat(new_context, escalate, base)
    page = customer if side == "customer" else alice
    text = ("Order 1182 log line with details. " * 700)[:20_000]
    box = page.locator("#message-body")
    box.fill("")
    box.focus()
    page.evaluate(
        """(text) => {
            const transfer = new DataTransfer();
            transfer.setData("text/plain", text);
            const box = document.querySelector("#message-body");
            const event = new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true,
                                                        cancelable: true });
            if (box.dispatchEvent(event)) {  // not handled: the browser's own paste
                box.setRangeText(text, box.selectionStart, box.selectionEnd, "end");
                box.dispatchEvent(new Event("input", { bubbles: true }));
            }
        }""",
        text,
    )
    expect(box).to_have_value(text)
    counter = page.locator("#char-count")
    expect(counter).to_be_visible()
    expect(counter).to_contain_text("20,000 / 10,000 (10,000 over the limit)")
    box.press("Enter")
    expect(page.locator("#composer-error")).to_contain_text("10,000 characters over the limit")
    expect(box).to_have_value(text)  # nothing thrown away
    expect(page.locator("#flash .flash-error")).to_have_count(0)
    before = Message.objects.count()
    # Still there after a reload (the draft), and it sends once shortened.
    page.reload()
    expect(page.locator("#message-body")).to_have_value(text)
    page.locator("#message-body").fill(text[:9_000])
    expect(page.locator("#char-count")).to_contain_text("9,000 / 10,000")
    page.locator("#message-body").press("Enter")
    sender = "msg-customer" if side == "customer" else "msg-agent"
    expect(page.locator(f"#messages > .{sender} .msg-body").last).to_have_text(text[:9_000].strip())
    assert Message.objects.count() == before + 1
    page.reload()
    expect(page.locator("#message-body")).to_have_value("")  # the draft went with the send


def test_the_conversation_opens_at_its_end_even_when_the_last_message_is_an_image(
    new_context, teams, make_agent, escalate, live_server_url
):
    """The thumbnail loads after the list was scrolled to its end; the list stays at
    the end (the walkthrough opened such a conversation on the message before)."""
    base = live_server_url
    make_agent("alice", teams=[teams["billing-specialist"]])
    _, alice, customer = open_chat(new_context, escalate, base)
    for n in range(8):
        customer.fill("#message-body", f"Line {n} of a long story about the charge.")
        customer.keyboard.press("Enter")
    expect(alice.locator("#messages > .msg-customer")).to_have_count(8)
    paste_file(customer, "#message-body", images.png((900, 700)), "tall.png", "image/png")
    expect(alice.locator("#messages img.attachment-thumb")).to_have_count(1)
    # The thumbnail arrives late, as it does over a real network (not from the cache).
    alice.route("**/files/**", lambda route: (time.sleep(0.8), route.continue_()))
    alice.reload()
    alice.wait_for_function(
        "() => { const i = document.querySelector('#messages img.attachment-thumb');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    at_end = "el => el.scrollHeight - el.scrollTop - el.clientHeight < 40"
    alice.wait_for_timeout(300)
    messages = alice.locator("#messages")
    assert messages.evaluate("el => el.scrollHeight > el.clientHeight")
    assert messages.evaluate(at_end)
    expect(alice.locator("#new-messages")).to_be_hidden()
