"""Browser fixtures: Debian's Chromium driven by Playwright against the live Daphne.

The escalations these tests need are posted over HTTP to the live Daphne (the memory
API), never created in process: the broadcast that makes rows appear lives in the
Daphne process's in-memory channel layer, which an in-process service call can't reach.

Playwright's own browser download does not work here; ``chromium`` on PATH is used.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, Page, expect, sync_playwright

from handoffs.models import Agent, Conversation, Handoff

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PASSWORD = "pw-for-tests-1"  # make_agent's default
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 10_000
ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One Chromium for every browser test, stopped when the last of them is done.

    Package scope, not session: the sync Playwright API leaves its event loop marked as
    running in this thread until Playwright stops, so while it lives pytest-asyncio tests
    can't start their loop and Django refuses ORM calls ("async context"). Stopping it
    after this package keeps the rest of the run clean. Meanwhile the ORM calls these
    tests make between browser steps (fixtures, reading the handoff a POST created) are
    allowed with DJANGO_ALLOW_ASYNC_UNSAFE; nothing here runs async code.
    """
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("chromium is not installed (make chromium)")
    previous = os.environ.get(ASYNC_UNSAFE)
    os.environ[ASYNC_UNSAFE] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop(ASYNC_UNSAFE, None)
        else:
            os.environ[ASYNC_UNSAFE] = previous


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """Factory for isolated browser contexts (one per signed-in agent), closed after.

    Every page is watched for Content-Security-Policy violations: any one fails the
    test, so the policy (console/settings.py) holds on every screen a test visits.
    """
    contexts: list[BrowserContext] = []
    violations: list[str] = []

    def on_console(message) -> None:
        # A refusal to be framed (frame-ancestors) is the chat's own policy working, as
        # the widget test checks; anything else is a page breaking the policy.
        if "Content Security Policy" in message.text and "frame-ancestors" not in message.text:
            violations.append(f"{message.text} ({message.location.get('url', '')})")

    def make(**kwargs: Any) -> BrowserContext:
        kwargs.setdefault("viewport", {"width": 1280, "height": 900})
        context = browser.new_context(**kwargs)
        context.set_default_timeout(TIMEOUT_MS)
        context.on("console", on_console)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()
    assert not violations, "CSP violations:\n" + "\n".join(violations)


@dataclass
class DialogWatch:
    """Every JavaScript dialog (alert/confirm/prompt) any watched page opened."""

    fired: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> Page:
        def on_dialog(dialog: Dialog) -> None:
            self.fired.append(f"{dialog.type}: {dialog.message} on {page.url}")
            dialog.dismiss()

        page.on("dialog", on_dialog)
        return page


@pytest.fixture
def dialogs() -> DialogWatch:
    return DialogWatch()


def login(context: BrowserContext, base_url: str, username: str, password: str = PASSWORD) -> Page:
    """Sign in through the real login form; returns the page, left on the queue."""
    page = context.new_page()
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url == f"{base_url}/", f"login as {username} failed: {page.url}"
    return page


def wait_live(page: Page) -> None:
    """Until the queue socket is open (the indicator says "Live")."""
    page.locator("#live").filter(has_text="Live").wait_for()


def accept_and_chat(
    new_context: Callable[..., BrowserContext], base: str, handoff: Handoff
) -> tuple[Page, Page]:
    """Alice accepts ``handoff`` on its card and the customer opens the chat link from her
    page; returns (alice, customer), both live."""
    alice = login(new_context(), base, "alice")
    alice.goto(f"{base}/handoffs/{handoff.pk}/")
    alice.locator("#handoff-status").get_by_role("button", name="Accept").click()
    expect(alice).to_have_url(f"{base}/conversations/{handoff.pk}/")
    wait_live(alice)
    customer = new_context().new_page()
    customer.goto(alice.locator("a[href*='/c/']").first.get_attribute("href"))
    wait_live(customer)
    return alice, customer


@dataclass
class Escalator:
    """Posts handoff memories to the live Daphne the way a bot does (memory API)."""

    base_url: str
    key: str
    count: int = 0

    def post(
        self,
        *,
        summary: str,
        customer: str = "cust-1001",
        customer_name: str = "",
        sentiment: str | None = "frustrated",
        urgency: str | None = "high",
        to_agent: str = "billing-specialist",
        from_agent: str = "tier1-bot",
        session_id: str | None = None,
        importance: float = 1.0,
        reason: str = "",
    ) -> Handoff:
        self.count += 1
        metadata: dict[str, Any] = {
            "type": "handoff",
            "from_agent": from_agent,
            "to_agent": to_agent,
        }
        if reason:
            metadata["reason"] = reason
        if sentiment is not None:
            metadata["sentiment"] = sentiment
        if urgency is not None:
            metadata["urgency"] = urgency
        if customer_name:
            metadata["customer_name"] = customer_name
        body: dict[str, Any] = {
            "agent_id": customer,
            "content": summary,
            "importance": importance,
            "metadata": metadata,
        }
        if session_id:
            body["session_id"] = session_id
        response = self.request("POST", "/v1/memory/store", body)
        memory_id = response["memory"]["id"]
        return Handoff.objects.get(memory_id=memory_id)

    def memory(self, customer: str, content: str, **fields: Any) -> dict[str, Any]:
        """Store a plain memory (a turn of the bot's session, an account fact ...)."""
        body = {"agent_id": customer, "content": content, **fields}
        return self.request("POST", "/v1/memory/store", body)["memory"]

    def session(self, customer: str, agent: str = "tier1-bot") -> str:
        body = {"agent_id": customer, "metadata": {"agent": agent}}
        return self.request("POST", "/v1/sessions/start", body)["session"]["id"]

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.request(
            method,
            f"{self.base_url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def escalate(live_server_url: str, bot_key: str) -> Escalator:
    return Escalator(base_url=live_server_url, key=bot_key)


@pytest.fixture
def billing_agents(teams, make_agent) -> tuple[Agent, Agent]:
    billing = teams["billing-specialist"]
    return make_agent("alice", teams=[billing]), make_agent("bob", teams=[billing])


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def web_escalation(escalate, *, customer: str, name: str, summary: str, **meta: Any) -> Handoff:
    """A handoff memory with ``metadata.channel = "web"`` (the customer uses the link);
    ``meta`` adds to or overrides the metadata (urgency, sentiment...)."""
    metadata = {
        "type": "handoff",
        "from_agent": "tier1-bot",
        "to_agent": "billing-specialist",
        "customer_name": name,
        "channel": "web",
        "urgency": "normal",
        **meta,
    }
    body = {"agent_id": customer, "content": summary, "importance": 1.0, "metadata": metadata}
    memory = escalate.request("POST", "/v1/memory/store", body)["memory"]
    return Handoff.objects.get(memory_id=memory["id"])


def customer_writes(base: str, handoff: Handoff, text: str) -> None:
    """The customer sends ``text`` through their link (the chat page's own form post)."""
    token = Conversation.objects.get(pk=handoff.conversation_id).token
    response = httpx.post(
        f"{base}/c/{token}/messages",
        data={"body": text, "client_id": uuid.uuid4().hex},
        timeout=10,
    )
    assert response.status_code in (200, 201), response.text
