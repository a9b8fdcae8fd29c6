"""The console's pages: the queue, the handoff card and presence."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from handoffs.api.keys import bot_create
from handoffs.lifecycle.accept import handoff_accept
from handoffs.lifecycle.intake import handoff_intake
from handoffs.memory.embedded import EmbeddedStore
from handoffs.memory.services import memory_store
from handoffs.models import Agent, Event, Handoff, Presence
from tests import factories

pytestmark = pytest.mark.django_db

IMG = "<img src=x onerror=alert(1)>"
IMG_ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"
SCRIPT = "</script><script>alert(1)</script>"
SCRIPT_ESCAPED = "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"


def escalate(
    team_slug: str,
    *,
    summary: str = "Customer was charged twice for one order",
    urgency: str | None = "normal",
    importance: float = 1.0,
    customer_name: str = "",
    age: timedelta | None = None,
) -> Handoff:
    handoff = factories.escalate(
        team_slug,
        summary=summary,
        importance=importance,
        sentiment="neutral",
        urgency=urgency,
        customer_name=customer_name,
    )
    if age is not None:
        Handoff.objects.filter(pk=handoff.pk).update(created_at=timezone.now() - age)
        handoff.refresh_from_db()
    return handoff


def row_order(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<article class="qrow[^"]*" id="handoff-(\d+)"', html)]


def title_of(html: str) -> str:
    match = re.search(r"<title>(.*?)</title>", html, re.DOTALL)
    assert match is not None
    return match.group(1)


@pytest.fixture
def alice(make_agent, teams) -> Agent:
    return make_agent("alice", teams=[teams["billing-specialist"]])


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice.user)
    return client


def test_pages_require_login(client, teams):
    handoff = escalate("billing-specialist")

    for url in ["/", f"/handoffs/{handoff.pk}/"]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/login/?next={url}"


def test_queue_shows_own_teams_waiting_handoffs_most_urgent_first(
    alice_client, alice, make_agent, teams
):
    low_old = escalate("billing-specialist", urgency="low", age=timedelta(minutes=30))
    critical_less_important = escalate("billing-specialist", urgency="critical", importance=0.5)
    critical_important = escalate("billing-specialist", urgency="critical", importance=0.9)
    normal_longer_wait = escalate("billing-specialist", age=timedelta(minutes=10))
    normal_shorter_wait = escalate("billing-specialist", age=timedelta(minutes=1))
    other_team = escalate("tech-support", urgency="critical")
    accepted = escalate("billing-specialist", urgency="critical")
    bob = make_agent("bob", teams=[teams["billing-specialist"]])
    handoff_accept(handoff_id=accepted.pk, agent=bob)
    expected = [
        critical_important.pk,
        critical_less_important.pk,
        normal_longer_wait.pk,
        normal_shorter_wait.pk,
        low_old.pk,
    ]

    page = alice_client.get("/")

    assert page.status_code == 200
    assert "<html" in page.text
    assert row_order(page.text) == expected
    assert f'id="handoff-{other_team.pk}"' not in page.text
    assert f'id="handoff-{accepted.pk}"' not in page.text
    assert title_of(page.text) == "(5) Queue · Handoff console"

    fragment = alice_client.get("/", headers={"HX-Request": "true"})

    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert 'id="queue-rows"' in fragment.text
    assert row_order(fragment.text) == expected


def test_customer_text_is_escaped_in_queue_card_and_title(alice_client):
    img_name = escalate("billing-specialist", customer_name=IMG, summary=SCRIPT)
    script_name = escalate("billing-specialist", customer_name=SCRIPT, summary=IMG)

    queue = alice_client.get("/").text
    assert IMG not in queue
    assert SCRIPT not in queue
    assert IMG_ESCAPED in queue
    assert SCRIPT_ESCAPED in queue

    for handoff, name_escaped in [(img_name, IMG_ESCAPED), (script_name, SCRIPT_ESCAPED)]:
        card = alice_client.get(f"/handoffs/{handoff.pk}/")
        assert card.status_code == 200
        assert IMG not in card.text
        assert SCRIPT not in card.text
        assert IMG_ESCAPED in card.text
        assert SCRIPT_ESCAPED in card.text
        assert title_of(card.text) == f"{name_escaped} · Handoff console"


@pytest.fixture
def carded_handoff(teams) -> Handoff:
    """A second hop (billing-bot → billing-specialist) with a bot session and facts."""
    bot_create(name="billing-bot")
    first = handoff_intake(
        customer="cust-7",
        source_session_id="sess-tier1",
        from_agent="tier1-bot",
        to_agent="billing-bot",
        summary="Billing question about invoice 1001, passed to the billing bot",
    ).handoff
    store = EmbeddedStore()
    session_id = store.start_session(agent_id="cust-7")["session"]["id"]
    for line in TRANSCRIPT:
        store.store(agent_id="cust-7", content=line, session_id=session_id)
    store.store(
        agent_id="cust-7",
        content="Account: Business plan since 2019, invoice 1001 paid by card",
        metadata={"type": "account"},
        importance=0.8,
    )
    memory_store(
        bot=None,
        agent_id="cust-7",
        content=SUMMARY,
        session_id=session_id,
        importance=1.0,
        metadata={
            "type": "handoff",
            "from_agent": "billing-bot",
            "to_agent": "billing-specialist",
            "sentiment": "frustrated",
            "customer_name": "Dana Reyes",
        },
    )
    handoff = Handoff.objects.get(customer="cust-7", from_agent="billing-bot")
    assert handoff.previous_id == first.pk
    return handoff


SUMMARY = "HANDOFF SUMMARY: invoice 1001 was charged twice; customer wants the duplicate refunded"
TRANSCRIPT = [
    "Customer asked why invoice 1001 shows two card charges",
    "Bot found two captures of the same payment for invoice 1001",
    "Bot offered store credit; customer refused and asked for a human about invoice 1001",
]


def test_card_shows_summary_first_then_chain_facts_and_transcript_in_order(
    alice_client, carded_handoff
):
    response = alice_client.get(f"/handoffs/{carded_handoff.pk}/")

    assert response.status_code == 200
    html = response.text
    assert title_of(html) == "Dana Reyes · Handoff console"
    positions = [
        html.index(SUMMARY),
        html.index("Chain of this issue (2 hops)"),
        html.index("Account facts"),
        html.index("Account: Business plan since 2019"),
        *[html.index(line) for line in TRANSCRIPT],
    ]
    assert positions == sorted(positions)
    assert html.count(SUMMARY) == 1  # the handoff memory isn't repeated as context
    assert "Sentiment from bot · urgency estimated" in html
    assert "Frustrated" in html
    assert '<span class="from">tier1-bot</span> → <span class="to">billing-bot</span>' in html
    assert "Billing question about invoice 1001, passed to the billing bot" in html
    assert ">Accept</button>" in html


def test_card_of_another_team_is_404(alice_client):
    other_team = escalate("tech-support")

    response = alice_client.get(f"/handoffs/{other_team.pk}/")

    assert response.status_code == 404
    assert other_team.summary not in response.text


def test_presence_post_sets_away_and_online(alice_client, alice):
    response = alice_client.post("/presence", {"presence": "away"})

    assert response.status_code == 302
    assert response["Location"] == "/"
    alice.refresh_from_db()
    assert alice.presence == Presence.AWAY

    response = alice_client.post(
        "/presence", {"presence": "online"}, headers={"HX-Request": "true"}
    )

    assert response.status_code == 204
    alice.refresh_from_db()
    assert alice.presence == Presence.ONLINE
    assert [
        (e.data["presence"], e.actor)
        for e in Event.objects.filter(kind="agent.presence", data__agent="alice")
    ] == [("away", "human:alice"), ("online", "human:alice")]


def test_presence_post_rejects_other_values(alice_client, alice):
    response = alice_client.post("/presence", {"presence": "offline"})

    assert response.status_code == 400
    assert "Choose online or away." in response.text
    alice.refresh_from_db()
    assert alice.presence == Presence.OFFLINE
    assert not Event.objects.filter(kind="agent.presence").exists()
