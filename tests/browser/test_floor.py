"""The supervisor's floor in Chromium, and a screenshot of the transfer report.

The floor updates with no reload when a handoff arrives (POSTed over HTTP to the live
Daphne, the way a bot sends it) and when an agent goes away (her own status menu, in
her own browser). The report is then seeded with a realistic history of chains and
captured in ``tests/browser/artifacts/report.png`` for people to look at.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from handoffs.api.keys import bot_create
from handoffs.lifecycle.accept import handoff_accept
from handoffs.lifecycle.endings import conversation_resolve, handoff_hand_back, handoff_transfer
from handoffs.models import Agent, Handoff, Role

from .conftest import Escalator, login, wait_live

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def tile(page: Page, name: str):
    return page.locator(f"#tile-{name} .tile-value")


def test_the_floor_updates_live(
    new_context, teams, make_agent, escalate, live_server_url, dialogs, artifacts
):
    base = live_server_url
    make_agent("sue", role=Role.SUPERVISOR)
    alice = make_agent("alice", teams=[teams["billing-specialist"]])

    floor = dialogs.watch(login(new_context(), base, "sue"))
    floor.goto(f"{base}/floor/")
    wait_live(floor)
    expect(floor).to_have_title("Floor · Handoff console")
    expect(tile(floor, "waiting")).to_have_text("0")
    expect(floor.locator("#floor-waiting-empty")).to_be_visible()

    # Alice signs in: her queue socket puts her online, and the floor shows it.
    agent_page = dialogs.watch(login(new_context(), base, "alice"))
    wait_live(agent_page)
    alice_row = floor.locator(f"#floor-agent-{alice.pk}")
    expect(alice_row.locator(".presence")).to_have_text("Online")
    expect(alice_row).to_contain_text("0 / 3")

    # A bot escalates over HTTP: the floor counts it, lists it, and the team row agrees.
    handoff = escalate.post(
        customer="cust-4521",
        customer_name="Dana Whitfield",
        summary="Charged $299 but the plan is $199/mo; customer wants a refund today.",
    )
    expect(tile(floor, "waiting")).to_have_text("1")
    row = floor.locator(f"#floor-handoff-{handoff.pk}")
    expect(row).to_contain_text("Dana Whitfield")
    expect(row).to_contain_text("tier1-bot → billing-specialist")
    expect(floor.locator("#floor-team-billing-specialist .waiting")).to_have_text("1")
    expect(floor.locator("#tile-oldest")).to_contain_text("Dana Whitfield")

    # Alice steps away (her status menu): the floor says so without a reload.
    agent_page.select_option("#presence-select", "away")
    expect(alice_row.locator(".presence")).to_have_text("Away")
    expect(floor.locator("#tile-agents")).to_contain_text("1 away")

    # She accepts after all: the waiting row goes, her load shows the conversation.
    agent_page.locator(f"#handoff-{handoff.pk}").get_by_role("button", name="Accept").click()
    expect(agent_page).to_have_url(f"{base}/conversations/{handoff.pk}/")
    expect(floor.locator(f"#floor-handoff-{handoff.pk}")).to_have_count(0)
    expect(tile(floor, "waiting")).to_have_text("0")
    expect(alice_row).to_contain_text("1 / 3")
    # Away with an open conversation: listed as stuck, with a way to move it. (Changing
    # page can reset her status, as sockets count presence: she says it again.)
    wait_live(agent_page)
    agent_page.select_option("#presence-select", "online")
    agent_page.select_option("#presence-select", "away")
    expect(alice_row.locator(".presence")).to_have_text("Away")
    stuck = floor.locator(f"#floor-stuck-{handoff.pk}")
    expect(stuck).to_contain_text("alice is away")
    expect(stuck.get_by_role("link", name="Reassign")).to_be_visible()
    floor.screenshot(path=artifacts / "floor.png", full_page=True)
    assert dialogs.fired == []


# ---------------------------------------------------------------- the report screenshot
def seed_history(bots: dict[str, Escalator], agents: dict[str, Agent]) -> None:
    """Issues with the shapes a supervisor looks for: bounces, loops, bot hops. Bots
    escalate over HTTP with their own keys; people act through the services."""
    a = agents

    def _hop(customer: str, name: str, *, bot: str = "tier1-bot", **fields) -> Handoff:
        fields.setdefault("from_agent", bot)
        return bots[bot].post(customer=customer, customer_name=name, **fields)

    def accept(hop: Handoff, who: str) -> Handoff:
        return handoff_accept(handoff_id=hop.pk, agent=a[who])

    def transfer(hop: Handoff, who: str, to: str, rating: str = "accurate") -> Handoff:
        return handoff_transfer(
            handoff_id=hop.pk, agent=a[who], to=to, note=f"Over to {to}.", rating=rating
        )

    def resolve(hop: Handoff, who: str, rating: str = "accurate") -> None:
        conversation_resolve(handoff_id=hop.pk, agent=a[who], rating=rating)

    # A long bounce: billing ↔ tech twice, then resolved.
    h = _hop("cust-1001", "Dana Whitfield", summary="Refund for a double charge.")
    accept(h, "maria")
    h = transfer(h, "maria", "tech-support", "missing_info")
    accept(h, "tom")
    h = transfer(h, "tom", "human:maria", "unnecessary")
    accept(h, "maria")
    h = transfer(h, "maria", "human:tom")
    accept(h, "tom")
    resolve(h, "tom")
    # Bot → human → bot → human (handed back, then escalated again).
    h = _hop("cust-1002", "Lee Park", summary="Card declined at checkout.")
    accept(h, "maria")
    handoff_hand_back(handoff_id=h.pk, agent=a["maria"], note="Card fixed.", rating="accurate")
    h = _hop("cust-1002", "Lee Park", summary="Now the app won't load.", to_agent="tech-support")
    accept(h, "tom")
    resolve(h, "tom")
    # Bot-to-bot: the web assistant passes to the billing bot, which escalates.
    h = _hop(
        "cust-1003",
        "Ana Souza",
        bot="web-assistant",
        to_agent="billing-bot",
        summary="Question about annual billing.",
        sentiment="neutral",
    )
    h = _hop(
        "cust-1003",
        "Ana Souza",
        bot="billing-bot",
        summary="Wants the annual discount applied retroactively.",
        sentiment="neutral",
    )
    accept(h, "maria")
    resolve(h, "maria", "missing_info")
    # A transfer to another team, and a handful of one-hop issues.
    h = _hop("cust-1004", "Sam Lee", summary="App crashes on login.", to_agent="tech-support")
    accept(h, "tom")
    h = transfer(h, "tom", "billing-specialist")
    accept(h, "ana")
    resolve(h, "ana")
    for i, (name, team, who) in enumerate(
        [
            ("Kim Ito", "billing-specialist", "maria"),
            ("Raj Patel", "tech-support", "tom"),
            ("Eva Novak", "billing-specialist", "ana"),
            ("Omar Haddad", "tech-support", "tom"),
            ("Lucia Gomez", "billing-specialist", "maria"),
        ]
    ):
        h = _hop(
            f"cust-20{i}",
            name,
            to_agent=team,
            summary=f"Issue {i}: needs a human.",
            sentiment=["angry", "frustrated", "neutral", "positive", "frustrated"][i],
        )
        accept(h, who)
        resolve(h, who, ["accurate", "accurate", "missing_info", "accurate", "unnecessary"][i])
    _hop("cust-3001", "Noor Aziz", summary="Waiting for a callback.")

    # Spread the accept times (the live run took milliseconds): 20 s to 9 min.
    now = timezone.now()
    for i, hop in enumerate(Handoff.objects.filter(accepted_at__isnull=False).order_by("pk")):
        created = now - dt.timedelta(hours=3, minutes=-7 * i)
        Handoff.objects.filter(pk=hop.pk).update(
            created_at=created, accepted_at=created + dt.timedelta(seconds=20 + (i * 97) % 540)
        )


def test_report_screenshot(new_context, teams, make_agent, escalate, live_server_url, artifacts):
    base = live_server_url
    bots = {"tier1-bot": escalate}
    for name in ("web-assistant", "billing-bot"):
        bots[name] = Escalator(base_url=base, key=bot_create(name=name)[1])
    make_agent("sue", role=Role.SUPERVISOR)
    billing, tech = teams["billing-specialist"], teams["tech-support"]
    agents = {
        "maria": make_agent("maria", teams=[billing]),
        "ana": make_agent("ana", teams=[billing]),
        "tom": make_agent("tom", teams=[tech]),
    }
    for who in agents.values():
        who.capacity = 20
        who.save()
    seed_history(bots, agents)

    page = login(new_context(viewport={"width": 1280, "height": 900}), base, "sue")
    page.goto(f"{base}/reports/transfers/")
    expect(page).to_have_title("Transfer report · Handoff console")
    expect(page.locator("#n-issues")).to_have_text("10")
    # Ping-pong: maria ↔ tom, and tier1-bot → maria → tier1-bot (a hand back).
    expect(page.locator("#n-ping-pong")).to_have_text("2")
    first = page.locator("#longest tbody tr").first
    expect(first.locator(".hop-count")).to_have_text("4")
    expect(first).to_contain_text("ping-pong")
    expect(first.locator(".node").first).to_have_text("tier1-bot")
    expect(page.locator("#lengths-chart svg rect.bar")).to_have_count(4)
    expect(page.locator("#accept-chart svg rect.bar")).to_have_count(4)
    expect(page.locator("#matrix")).to_contain_text("web-assistant")
    expect(page.locator("#ratings")).to_contain_text("tier1-bot")
    page.screenshot(path=artifacts / "report.png", full_page=True)
    page.locator(".report-grid").first.screenshot(path=artifacts / "report-charts.png")

    # The filter works in place (htmx) and keeps the address shareable.
    page.select_option("select[name=team]", "tech-support")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"team=tech-support"))
    expect(page.locator("#n-issues")).to_have_text("5")
    assert (artifacts / "report.png").stat().st_size > 30_000
