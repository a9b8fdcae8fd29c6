"""The page during a Redis outage: its socket is refused with 4013 and the live indicator
says "Reconnecting…" (never an error or "Access ended"), and it comes back by itself.

A real Chromium (Debian's, through Playwright) on a Daphne with its own redis-server,
which the test stops and starts again. Function-scoped Playwright: this module's other
neighbours are asyncio tests (see tests/browser/conftest.py on why it must stop).
"""

from __future__ import annotations

import os
import shutil
import time

import pytest
from playwright.sync_api import sync_playwright

from tests.browser.conftest import CHROMIUM_ARGS, PASSWORD

from .conftest import require_postgresql_and_redis

pytestmark = [
    pytest.mark.pg,
    pytest.mark.scaleout,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

# The close codes of the page's own socket: the live indicator follows it alone, not the
# side sockets (the desk socket on every agent page, the badge-only inbox socket), which
# can be refused first while the page's socket is still open (console.js, sideSocket).
RECORD_CLOSES = """
window.__closes = [];
document.addEventListener("htmx:wsClose", (e) => {
  const el = e.target;
  if (el && (el.id === "inbox-socket" || (el.closest && el.closest("#desk")))) return;
  window.__closes.push(e.detail.event.code);
});
"""


def test_the_page_shows_reconnecting_while_redis_is_down_and_comes_back(
    consoles, private_redis, make_agent, teams
):
    require_postgresql_and_redis()
    executable = shutil.which("chromium")
    assert executable, "chromium is not installed (make chromium)"
    (server,) = consoles.start(1, redis_url=private_redis.url)
    make_agent("rita", teams=[teams["billing-specialist"]])
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.set_default_timeout(20_000)
            page.add_init_script(RECORD_CLOSES)
            page.goto(f"{server.url}/accounts/login/")
            page.fill("#id_username", "rita")
            page.fill("#id_password", PASSWORD)
            with page.expect_navigation():
                page.click("button[type=submit]")
            live = page.locator("#live")
            live.filter(has_text="Live").wait_for()

            private_redis.stop()
            # The page's socket drops; each reconnect is refused with 4013 meanwhile.
            deadline = time.monotonic() + 30
            while 4013 not in page.evaluate("() => window.__closes"):
                assert time.monotonic() < deadline, page.evaluate("() => window.__closes")
                page.wait_for_timeout(100)
            # Between attempts (offline) or during one (connecting), it says the same.
            assert live.inner_text() == "Reconnecting…"
            state = (live.get_attribute("class") or "").split()
            assert "offline" in state or "connecting" in state, state
            assert page.locator("text=Access ended").count() == 0

            private_redis.start()
            started = time.monotonic()
            live.filter(has_text="Live").wait_for(timeout=20_000)
            # Back within the back-off's cap (10 s) plus a connect.
            assert time.monotonic() - started < 15
            assert page.locator("#queue-rows").count() == 1
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
