"""Looking back in Chromium (issue 14): a resolved conversation is found from the
navigation's search box by a word of one of its messages and opens read-only; the
history lists and filters it; a returning customer's card shows their past; another
team finds nothing. The search, history, transcript and card pages pass axe-core with
0 critical and 0 serious violations."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from handoffs.models import Handoff

from .axe import violations as serious
from .conftest import login, wait_live

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def accept(page: Page, base: str, handoff: Handoff) -> None:
    wait_live(page)
    page.locator(f"#handoff-{handoff.pk}").get_by_role("button", name="Accept").click()
    expect(page).to_have_url(f"{base}/conversations/{handoff.pk}/")
    wait_live(page)


def resolve(page: Page) -> None:
    endings = page.get_by_role("region", name="Close this conversation")
    endings.get_by_label("Action").select_option("resolve")
    endings.locator("button[type=submit]").first.click()
    page.locator("#resolve-confirm").get_by_role("button", name="Yes, resolve").click()
    expect(page.locator("#flash")).to_contain_text("Conversation resolved.")


def search_from_nav(page: Page, query: str) -> None:
    box = page.get_by_role("search").get_by_label("Search customers, conversations and messages")
    box.fill(query)
    box.press("Enter")
    expect(page).to_have_url(re.compile(r"/search/\?q="))


def test_a_resolved_conversation_is_found_by_a_word_and_opens_read_only(
    new_context, teams, make_agent, escalate, live_server_url, artifacts
):
    base = live_server_url
    make_agent("alice", teams=[teams["billing-specialist"]])
    make_agent("tina", teams=[teams["tech-support"]])
    handoff = escalate.post(
        customer="cust-nora", customer_name="Nora Finder", summary="Replacement part question."
    )
    alice = login(new_context(), base, "alice")
    accept(alice, base, handoff)
    alice.fill("#message-body", "Your periwinkle blender ships on Monday.")
    alice.locator("#composer").get_by_role("button", name="Send").click()
    expect(alice.locator("#messages")).to_contain_text("periwinkle blender")
    resolve(alice)

    # Found from the search box every console page has, the words marked.
    search_from_nav(alice, "periwinkle blenders")
    messages = alice.get_by_role("region", name="Messages")
    hit = messages.get_by_role("listitem").filter(has_text="Nora Finder")
    expect(hit).to_have_count(1)
    expect(hit.locator("mark")).to_have_text(["periwinkle", "blender"])
    expect(hit).to_contain_text("read-only")
    assert serious(alice) == []
    alice.screenshot(path=artifacts / "search-results.png", full_page=True)

    # It opens read-only: the transcript, its chain and card, no composer, no endings.
    hit.get_by_role("link", name="Nora Finder").click()
    expect(alice).to_have_url(re.compile(rf"/history/{handoff.pk}/#msg-\d+$"))
    expect(alice.get_by_role("status").filter(has_text="Read-only transcript")).to_be_visible()
    expect(alice.locator("#messages")).to_contain_text("Your periwinkle blender ships")
    expect(alice.locator(".hop-cards")).to_contain_text("Replacement part question.")
    expect(alice.locator("#message-body")).to_have_count(0)
    expect(alice.get_by_role("region", name="Close this conversation")).to_have_count(0)
    assert serious(alice) == []
    alice.screenshot(path=artifacts / "transcript.png", full_page=True)

    # The history, reached from the navigation, lists it and filters.
    alice.get_by_role("navigation").get_by_role("link", name="History").click()
    expect(alice).to_have_url(f"{base}/history/")
    expect(alice.locator(f"#history-{handoff.pk}")).to_contain_text("Nora Finder")
    assert serious(alice) == []
    alice.screenshot(path=artifacts / "history.png", full_page=True)
    alice.get_by_label("Outcome").select_option("transferred")
    alice.get_by_role("button", name="Filter").click()
    expect(alice.locator(f"#history-{handoff.pk}")).to_have_count(0)
    expect(alice.locator("#history-results")).to_contain_text("No closed conversations match")
    alice.get_by_label("Outcome").select_option("resolved")
    alice.get_by_role("button", name="Filter").click()
    expect(alice.locator(f"#history-{handoff.pk}")).to_be_visible()
    expect(alice).to_have_url(re.compile(r"outcome=resolved"))

    # The customer comes back: the new card says so and links the earlier transcript.
    again = escalate.post(customer="cust-nora", customer_name="Nora Finder", summary="Again.")
    alice.goto(f"{base}/handoffs/{again.pk}/")
    past = alice.get_by_role("region", name="The customer's past")
    expect(past).to_contain_text("Returning customer: 1 earlier conversation")
    expect(past.get_by_role("link")).to_have_attribute("href", f"/history/{handoff.pk}/")
    assert serious(alice) == []
    alice.screenshot(path=artifacts / "card-customer-past.png", full_page=True)

    # Another team's agent finds nothing of it.
    tina = login(new_context(), base, "tina")
    search_from_nav(tina, "periwinkle blender")
    nothing = tina.get_by_role("status").filter(has_text="Nothing you may see matches")
    expect(nothing).to_be_visible()
    expect(tina.locator(".hit")).to_have_count(0)
    tina.goto(f"{base}/history/{handoff.pk}/")
    expect(tina.locator("body")).not_to_contain_text("periwinkle")
