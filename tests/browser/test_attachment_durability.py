"""Attachments survive a Daphne kill mid-upload as messages do: each file is stored
once or not at all, and the page retries it with the same client id until it is.

Two uploads from the customer's page: the first reaches the server and is stored, then
Daphne dies (SIGKILL) before the answer gets out; the second is cut off before it
reaches the server. After the restart both arrive, each exactly once, on both screens.
Modelled on test_durability.py (its own Daphne on a fixed port).
"""

from __future__ import annotations

import base64

import pytest
from playwright.sync_api import Route, expect

from handoffs.models import Attachment, Message
from tests.files import images

from .conftest import Escalator, accept_and_chat, wait_live
from .test_durability import RECONNECT_MS, daphne  # noqa: F401 - the fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def attach(page, data: bytes, name: str, mime: str) -> None:
    page.evaluate(
        """([b64, name, mime]) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: mime }));
            const input = document.querySelector("#attach-input");
            input.files = transfer.files;
            input.dispatchEvent(new Event("change", { bubbles: true }));
        }""",
        [base64.b64encode(data).decode(), name, mime],
    )


def stored_files() -> set[str]:
    from django.core.files.storage import storages

    storage = storages["attachments"]
    names = set()
    for folder in ("files", "thumbs"):
        try:
            names |= {f"{folder}/{n}" for n in storage.listdir(folder)[1]}
        except FileNotFoundError:
            continue
    return names


def test_uploads_cut_off_by_a_daphne_kill_are_stored_once(
    daphne,  # noqa: F811
    new_context,
    billing_agents,
    bot_key,
):
    base = daphne.url
    handoff = Escalator(base_url=base, key=bot_key).post(
        customer="cust-9911", customer_name="Dana Whitfield", summary="Refund request."
    )
    alice, customer = accept_and_chat(new_context, base, handoff)
    files_before = stored_files()

    # 1. Stored, then the server dies before answering.
    def store_then_die(route: Route) -> None:
        route.fetch()
        daphne.kill()
        route.abort("connectionreset")

    answers: list[tuple[int, dict]] = []
    customer.on(
        "response",
        lambda r: answers.append((r.status, r.json())) if r.url.endswith("/attachments") else None,
    )
    customer.route("**/attachments", store_then_die, times=1)
    attach(customer, images.png(color=(10, 200, 10)), "receipt.png", "image/png")
    expect(customer.locator("#live")).to_have_text("Reconnecting…")
    assert Message.objects.filter(attachment__name="receipt.png").count() == 1
    # Shown once: as stored (if its broadcast beat the kill) or as pending, never both.
    shown = customer.locator("#messages figure.attachment", has_text="receipt.png")
    pending = customer.locator("#pending .upload-pending", has_text="receipt.png")
    expect(shown.or_(pending)).to_have_count(1)

    # 2. While the server is down, another file: it can't get anywhere yet.
    attach(customer, images.pdf(), "statement.pdf", "application/pdf")
    expect(customer.locator("#pending .upload-pending", has_text="statement.pdf")).to_have_count(1)
    assert not Message.objects.filter(attachment__name="statement.pdf").exists()

    daphne.start()
    for page in (customer, alice):
        expect(page.locator("#live")).to_have_text("Live", timeout=RECONNECT_MS)
    expect(customer.locator("#pending .upload-pending")).to_have_count(0, timeout=RECONNECT_MS)
    for page in (customer, alice):
        expect(page.locator("#messages > .msg-customer figure.attachment")).to_have_count(2)
    expect(customer.locator("#messages figure.attachment-image")).to_have_count(1)
    expect(alice.locator("#messages a.attachment-download")).to_contain_text("statement.pdf")

    # Exactly once each, in the order sent, and one stored file per file (plus the
    # image's thumbnail): the retry of the stored one wrote nothing.
    rows = list(
        Attachment.objects.filter(message__conversation=handoff.conversation)
        .order_by("message__seq")
        .values_list("name", flat=True)
    )
    assert rows == ["receipt.png", "statement.pdf"]
    # The page never got the first answer, so it sent the same upload again: the server
    # answered with the message it had (200, created false) and stored nothing new. The
    # pages above may have shown both files from the socket before the second answer's
    # response event reached this process, so wait for it (up to 5 s).
    for _ in range(50):
        if len(answers) >= 2:
            break
        customer.wait_for_timeout(100)
    assert [(status, body["created"]) for status, body in answers] == [(200, False), (201, True)]
    assert len(stored_files() - files_before) == 3


def test_an_upload_waiting_for_the_network_survives_a_reload(
    new_context, billing_agents, escalate, live_server_url
):
    """The file is kept in the browser (IndexedDB) until the server has it: a reload
    while it can't get through doesn't lose it, and it is stored once when it does."""
    base = live_server_url
    handoff = escalate.post(customer="cust-9912", summary="Refund request.")
    alice, customer = accept_and_chat(new_context, base, handoff)

    def offline(route: Route) -> None:
        route.abort("internetdisconnected")

    customer.route("**/attachments", offline)
    attach(customer, images.pdf(), "contract.pdf", "application/pdf")
    pending = customer.locator("#pending .upload-pending", has_text="contract.pdf")
    expect(pending).to_contain_text("retrying")
    customer.reload()
    wait_live(customer)
    expect(pending).to_have_count(1)  # back from the browser's store, still waiting
    assert not Attachment.objects.exists()

    customer.unroute("**/attachments", offline)
    expect(pending).to_have_count(0, timeout=RECONNECT_MS)
    expect(customer.locator("#messages a.attachment-download")).to_contain_text("contract.pdf")
    expect(alice.locator("#messages a.attachment-download")).to_contain_text("contract.pdf")
    assert Attachment.objects.filter(name="contract.pdf").count() == 1
    customer.reload()
    wait_live(customer)
    expect(customer.locator("#messages a.attachment-download")).to_have_count(1)
    expect(customer.locator("#pending .upload-pending")).to_have_count(0)
