"""Delivery you can trust: Daphne is killed (SIGKILL) mid-chat and restarted on the same
port; everything both people typed meanwhile arrives exactly once, in order, on both
screens after the pages reconnect.

This test runs its own Daphne on a fixed port (not the session's ``live_console``):
the pages must reconnect to the same address after the restart.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, Route, expect

from handoffs.models import Message
from tests.conftest import LiveServer, free_port, start_daphne

from .conftest import Escalator, login, wait_live

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SUMMARY = "Charged $299 but the plan is $199/mo; customer wants a refund today."
RECONNECT_MS = 20_000


class Restartable:
    """A Daphne on a fixed port that can be killed and started again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: LiveServer = start_daphne(port=self.port)
        self.url = self.server.url

    def kill(self) -> None:
        self.server.process.kill()  # SIGKILL: no shutdown, no goodbye to the sockets
        self.server.process.wait(timeout=10)

    def start(self) -> None:
        self.server = start_daphne(port=self.port)
        assert self.server.url == self.url

    def stop(self) -> None:
        # Not ``LiveServer.stop`` (SIGTERM, then waits 10 s): a Daphne told to stop while
        # a socket's disconnect handler runs does not exit by itself. The handler
        # (desk.consumers.socket_closed → lifecycle.presence.agent_set_presence → on commit,
        # broadcast.send) calls async_to_sync on the event loop that has just stopped
        # and waits forever; interpreter exit then waits for that thread.
        process = self.server.process
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def daphne(transactional_db) -> Iterator[Restartable]:
    server = Restartable()
    yield server
    server.stop()


def send(page: Page, text: str) -> None:
    page.fill("#message-body", text)
    page.locator("#composer").get_by_role("button", name="Send").click()


def shown(page: Page) -> list[tuple[int, str]]:
    """(seq, text) of every message on screen, top to bottom."""
    rows = page.locator("#messages > .msg").evaluate_all(
        "els => els.map(e => [Number(e.dataset.seq),"
        " (e.querySelector('.msg-body, .msg-system') || e).textContent.trim()])"
    )
    return [(seq, text) for seq, text in rows]


def test_messages_typed_while_daphne_is_down_arrive_once_in_order(
    daphne, new_context, billing_agents, bot_key, dialogs
):
    base = daphne.url
    handoff = Escalator(base_url=base, key=bot_key).post(
        customer="cust-4521", customer_name="Dana Whitfield", summary=SUMMARY
    )
    alice = dialogs.watch(login(new_context(), base, "alice"))
    alice.goto(f"{base}/handoffs/{handoff.pk}/")
    alice.locator("#handoff-status").get_by_role("button", name="Accept").click()
    expect(alice).to_have_url(f"{base}/conversations/{handoff.pk}/")
    wait_live(alice)
    customer = dialogs.watch(new_context().new_page())
    customer.goto(alice.locator("a[href*='/c/']").get_attribute("href"))
    wait_live(customer)

    send(alice, "Hi Dana, I'm on it.")
    expect(customer.locator("#messages > .msg-agent")).to_have_count(1)
    send(customer, "Thanks!")
    expect(alice.locator("#messages > .msg-customer")).to_have_count(1)

    # Daphne dies the moment it has stored a message, before the answer gets out: the
    # message is in the database but the customer's page never got its acknowledgement.
    def store_then_die(route: Route) -> None:
        route.fetch()
        daphne.kill()
        route.abort("connectionreset")

    customer.route("**/messages", store_then_die, times=1)
    send(customer, "in-flight when the server died")
    expect(alice.locator("#live")).to_have_text("Reconnecting…")
    expect(customer.locator("#live")).to_have_text("Reconnecting…")
    assert Message.objects.filter(body="in-flight when the server died").count() == 1
    # Shown once: as stored (if its broadcast beat the kill) or as pending, never both.
    in_flight = customer.locator(".msg-body", has_text="in-flight when the server died")
    expect(in_flight).to_have_count(1)

    # Both keep typing while the server is gone; the outbox keeps and shows them.
    typed = [
        (customer, "in-flight when the server died"),
        (customer, "down-c1 Are you still there?"),
        (alice, "down-a1 Yes, one moment."),
        (customer, "down-c2 The page says reconnecting"),
        (alice, "down-a2 Checking the invoice now."),
        (customer, "down-c3 OK, waiting."),
        (alice, "down-a3 Found it: $100 back to your card."),
    ]
    for page, text in typed[1:]:
        send(page, text)
    expect(customer.locator("#pending > .msg-pending")).to_have_count(
        3 + customer.locator("#pending .msg-body", has_text="in-flight").count()
    )
    expect(alice.locator("#pending > .msg-pending")).to_have_count(3)
    expect(customer.locator("#pending")).to_contain_text("down-c3 OK, waiting.")

    daphne.start()
    for page in (alice, customer):
        expect(page.locator("#live")).to_have_text("Live", timeout=RECONNECT_MS)
        expect(page.locator("#pending > .msg")).to_have_count(0, timeout=RECONNECT_MS)
    expected_count = 1 + 2 + len(typed)  # joined, two live messages, the seven
    for page in (alice, customer):
        expect(page.locator("#messages > .msg")).to_have_count(expected_count)

    # Exactly once, in the server's order, the same on both screens.
    stored = list(
        Message.objects.filter(conversation=handoff.conversation)
        .order_by("seq")
        .values_list("seq", "body")
    )
    assert [seq for seq, _ in stored] == list(range(1, expected_count + 1))
    for _page, text in typed:
        assert [body for _, body in stored].count(text) == 1, text
    assert shown(alice) == shown(customer) == stored
    # Each person's own messages keep the order they typed them in.
    for page in (alice, customer):
        mine = [text for p, text in typed if p is page]
        bodies = [body for _, body in stored]
        assert sorted(mine, key=bodies.index) == mine

    # And the chat is live again both ways.
    send(customer, "after-restart from Dana")
    expect(alice.locator("#messages > .msg-customer .msg-body").last).to_have_text(
        "after-restart from Dana"
    )
    send(alice, "after-restart from Alice")
    expect(customer.locator("#messages > .msg-agent .msg-body").last).to_have_text(
        "after-restart from Alice"
    )
    assert dialogs.fired == []
