"""Screenshots of the queue, the handoff card and the conversation, for people to look at.

Realistic data through the memory API: a bot session with turns and account facts, a
chain of two hops, several urgencies and sentiments, and waits past the team's amber
and red thresholds. Files land in ``tests/browser/artifacts/`` (gitignored).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from handoffs.models import Handoff, Team

from .conftest import login, wait_live

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def seed(escalate) -> Handoff:
    """A handful of waiting escalations; returns the richest one (for the card)."""
    customer = "cust-acc-4521"
    session = escalate.session(customer)
    escalate.memory(
        customer,
        "Customer since 2024, Pro plan at $199/month, account ACC-4521, billing by card.",
        importance=0.8,
        metadata={"type": "account"},
        memory_type="semantic",
    )
    for turn in (
        "Customer: I was charged $299 this month but my plan is $199.",
        "Bot: I checked the invoice: it includes a $100 add-on the customer says they never "
        "ordered.",
        "Bot: Offered to remove the add-on from next month; customer wants a refund for this "
        "month too.",
        "Customer: This is the second time. I want this fixed today or I cancel.",
    ):
        escalate.memory(customer, turn, session_id=session, importance=0.6)
    # An earlier hop of the same issue: the web assistant passed the customer to the bot.
    escalate.post(
        customer=customer,
        from_agent="web-assistant",
        to_agent="tier1-bot",
        summary="Billing question about an unexpected $299 charge; routed to billing bot.",
        sentiment="neutral",
        urgency="normal",
    )
    main = escalate.post(
        customer=customer,
        customer_name="Dana Whitfield",
        session_id=session,
        summary=(
            "HANDOFF SUMMARY: Customer ACC-4521 (since 2024) was charged $299 instead of "
            "$199/mo because of a $100 add-on they say they never ordered. Second billing "
            "error this year. Refund of $100 for this month needed; the bot can't issue "
            "refunds. Customer threatens to cancel if not fixed today."
        ),
        sentiment="frustrated",
        urgency="high",
    )
    escalate.post(
        customer="cust-77310",
        customer_name="Lee Park",
        summary="Card charged twice after cancelling; customer says they'll file a chargeback.",
        sentiment="angry",
        urgency="critical",
    )
    low = escalate.post(
        customer="cust-10442",
        customer_name="Ana Souza",
        summary="Wants to switch from monthly to annual billing and asks whether the discount "
        "applies to the remaining months.",
        sentiment="positive",
        urgency="low",
        importance=0.6,
    )
    unknown = escalate.post(
        customer="cust-55120",
        summary="Invoice PDF shows the wrong company address; needs a corrected invoice.",
        sentiment=None,
        urgency=None,
        to_agent="invoicing",
        importance=0.7,
    )
    # Waits past the amber (2 min) and red (5 min) thresholds, so the timers show them.
    now = timezone.now()
    Handoff.objects.filter(pk=low.pk).update(created_at=now - dt.timedelta(minutes=3))
    Handoff.objects.filter(pk=unknown.pk).update(created_at=now - dt.timedelta(minutes=7))
    return main


def test_screenshots(new_context, teams, make_agent, escalate, live_server_url, artifacts):
    base = live_server_url
    general, _ = Team.objects.get_or_create(
        slug="general", defaults={"name": "General queue", "is_default": True}
    )
    make_agent("maria", teams=[teams["billing-specialist"], general])
    main = seed(escalate)

    page = login(new_context(), base, "maria")
    wait_live(page)
    expect(page.locator(".qrow")).to_have_count(4)
    expect(page.locator(".qrow.is-breach")).to_have_count(1)
    expect(page.locator(".qrow.is-warn")).to_have_count(1)
    page.screenshot(path=artifacts / "queue.png", full_page=True)

    narrow = login(new_context(viewport={"width": 390, "height": 844}), base, "maria")
    wait_live(narrow)
    narrow.screenshot(path=artifacts / "queue-narrow.png", full_page=True)

    card = page.context.new_page()
    card.goto(f"{base}/handoffs/{main.pk}/")
    wait_live(card)
    expect(card.locator("#handoff-card")).to_contain_text("What the bot did")
    expect(card.locator("#handoff-card")).to_contain_text("Account facts")
    expect(card.locator("#handoff-card")).to_contain_text("Chain of this issue (2 hops)")
    card.screenshot(path=artifacts / "card.png", full_page=True)

    card.get_by_role("button", name="Accept").click()
    expect(card).to_have_url(f"{base}/conversations/{main.pk}/")
    card.screenshot(path=artifacts / "conversation.png", full_page=True)
    for name in ("queue", "queue-narrow", "card", "conversation"):
        assert (artifacts / f"{name}.png").stat().st_size > 10_000
