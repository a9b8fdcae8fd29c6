"""History, the read-only transcript, the search page and the customer's past (issue 14)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from handoffs.lifecycle.accept import handoff_accept
from handoffs.lifecycle.endings import conversation_resolve, handoff_hand_back, handoff_transfer
from handoffs.lifecycle.messages import message_post
from handoffs.models import Agent, Conversation, Handoff, Role, Sender
from tests import factories

pytestmark = pytest.mark.pg


@pytest.fixture
def people(make_agent, teams) -> dict[str, Agent]:
    billing, tech = teams["billing-specialist"], teams["tech-support"]
    return {
        "alice": make_agent("alice", teams=[billing]),
        "dan": make_agent("dan", teams=[billing]),
        "tina": make_agent("tina", teams=[tech]),
        "sam": make_agent("sam", role=Role.SUPERVISOR),
    }


def say(hop: Handoff, body: str, sender: str = Sender.CUSTOMER, agent: Agent | None = None):
    return message_post(
        conversation=Conversation.objects.get(pk=hop.conversation_id),
        sender=sender,
        body=body,
        client_id=uuid.uuid4().hex,
        agent=agent,
    ).message


def closed(team: str, agent: Agent, how: str = "resolve", **fields) -> Handoff:
    hop = factories.escalate(team, **fields)
    handoff_accept(handoff_id=hop.pk, agent=agent)
    say(hop, f"message for {hop.customer}")
    if how == "resolve":
        conversation_resolve(handoff_id=hop.pk, agent=agent)
    elif how == "transfer":
        handoff_transfer(handoff_id=hop.pk, agent=agent, to="tech-support", note="over to tech")
    else:
        handoff_hand_back(handoff_id=hop.pk, agent=agent, note="back to the bot")
    hop.refresh_from_db()
    return hop


def rows(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'id="history-(\d+)"', response.content.decode())]


@pytest.fixture
def history(people):
    """Billing: alice resolved one, transferred one, handed one back; dan resolved one
    (closed three days ago). Tech: tina resolved one."""
    hops = {
        "a_resolved": closed("billing-specialist", people["alice"], customer_name="Ann"),
        "a_transferred": closed("billing-specialist", people["alice"], "transfer"),
        "a_back": closed("billing-specialist", people["alice"], "handback"),
        "d_resolved": closed("billing-specialist", people["dan"], customer_name="Dora"),
        "t_resolved": closed("tech-support", people["tina"], customer_name="Ted"),
    }
    Handoff.objects.filter(pk=hops["d_resolved"].pk).update(
        closed_at=timezone.now() - timedelta(days=3)
    )
    return hops


def test_history_shows_the_teams_closed_conversations_only(people, history):
    alice = factories.logged_in(people["alice"])
    response = alice.get("/history/")
    assert response.status_code == 200
    billing = {history[k].pk for k in ("a_resolved", "a_transferred", "a_back", "d_resolved")}
    assert set(rows(response)) == billing
    # Newest closed first: dan's (three days old) comes last.
    assert rows(response)[-1] == history["d_resolved"].pk
    tina = factories.logged_in(people["tina"]).get("/history/")
    assert set(rows(tina)) == {history["t_resolved"].pk}
    sam = factories.logged_in(people["sam"]).get("/history/")
    assert set(rows(sam)) == billing | {history["t_resolved"].pk}


def test_history_filters_work(people, history, teams):
    sam = factories.logged_in(people["sam"])
    by_team = sam.get("/history/", {"team": teams["tech-support"].pk})
    assert rows(by_team) == [history["t_resolved"].pk]
    by_agent = sam.get("/history/", {"agent": people["dan"].pk})
    assert rows(by_agent) == [history["d_resolved"].pk]
    transferred = sam.get("/history/", {"outcome": "transferred"})
    assert rows(transferred) == [history["a_transferred"].pk]
    handed_back = sam.get("/history/", {"outcome": "handed_back", "agent": people["alice"].pk})
    assert rows(handed_back) == [history["a_back"].pk]
    today = timezone.localdate()
    recent = sam.get("/history/", {"since": today.isoformat()})
    assert history["d_resolved"].pk not in rows(recent)
    assert len(rows(recent)) == 4
    old = sam.get(
        "/history/",
        {
            "since": (today - timedelta(days=4)).isoformat(),
            "until": (today - timedelta(days=2)).isoformat(),
        },
    )
    assert rows(old) == [history["d_resolved"].pk]
    # htmx asks for the results only.
    fragment = sam.get("/history/", {"outcome": "resolved"}, HTTP_HX_REQUEST="true")
    assert b"<html" not in fragment.content
    assert len(rows(fragment)) == 3


def test_history_refuses_another_teams_filter_and_bad_input(people, history, teams):
    alice = factories.logged_in(people["alice"])
    for params in (
        {"team": teams["tech-support"].pk},
        {"agent": people["tina"].pk},
        {"outcome": "accepted"},
        {"since": "yesterday"},
        {"since": "2026-05-02", "until": "2026-05-01"},
        {"team": "'; DROP TABLE x"},
    ):
        response = alice.get("/history/", params)
        assert response.status_code == 400, params
        assert 'role="alert"' in response.content.decode()
        assert rows(response) == []
    assert alice.get("/history/", {"page": "9999"}).status_code == 200
    assert alice.get("/history/", {"page": "x"}).status_code == 200


def test_history_is_paginated(people):
    for _ in range(27):
        closed("billing-specialist", people["alice"])
    alice = factories.logged_in(people["alice"])
    first = alice.get("/history/", {"outcome": "resolved"})
    assert len(rows(first)) == 25
    assert "outcome=resolved&amp;page=2" in first.content.decode()
    second = alice.get("/history/", {"outcome": "resolved", "page": 2})
    assert len(rows(second)) == 2
    assert not set(rows(first)) & set(rows(second))


def test_the_transcript_is_read_only_with_its_chain_and_cards(people):
    hop = factories.escalate("billing-specialist", summary="Bot summary: double charge")
    handoff_accept(handoff_id=hop.pk, agent=people["alice"])
    say(hop, "I was charged twice")
    nxt = handoff_transfer(
        handoff_id=hop.pk, agent=people["alice"], to="tech-support", note="Tech: app bug"
    )
    handoff_accept(handoff_id=nxt.pk, agent=people["tina"])
    say(nxt, "later secret words")
    conversation_resolve(handoff_id=nxt.pk, agent=people["tina"], summary="Fixed the app")

    dan = factories.logged_in(people["dan"])  # billing: reads alice's hop up to her handover
    page = dan.get(f"/history/{hop.pk}/").content.decode()
    assert "I was charged twice" in page
    assert "later secret words" not in page
    assert "Bot summary: double charge" in page
    assert "Tech: app bug" not in page  # the next hop's card is tech's
    assert "<textarea" not in page and "/close" not in page and "Read-only" in page
    assert dan.get(f"/history/{nxt.pk}/").status_code == 404

    tina = factories.logged_in(people["tina"]).get(f"/history/{nxt.pk}/").content.decode()
    assert "later secret words" in tina and "Tech: app bug" in tina
    assert "Bot summary: double charge" in tina  # the chain's earlier card
    assert "Fixed the app" in tina
    sam = factories.logged_in(people["sam"]).get(f"/history/{hop.pk}/").content.decode()
    assert "later secret words" in sam  # supervisors read the whole conversation


def test_an_open_conversation_is_not_a_transcript(people):
    hop = factories.escalate("billing-specialist")
    alice = factories.logged_in(people["alice"])
    assert alice.get(f"/history/{hop.pk}/").url == f"/handoffs/{hop.pk}/"
    handoff_accept(handoff_id=hop.pk, agent=people["alice"])
    assert alice.get(f"/history/{hop.pk}/").url == f"/conversations/{hop.pk}/"
    assert factories.logged_in(people["tina"]).get(f"/history/{hop.pk}/").status_code == 404
    assert factories.logged_in(people["dan"]).get(f"/history/{hop.pk}/").status_code == 404


def test_the_search_page(people):
    hop = closed("billing-specialist", people["alice"], customer_name="Ivy <i>Ivy</i>")
    alice = factories.logged_in(people["alice"])
    response = alice.get("/search/", {"q": hop.customer})
    body = response.content.decode()
    assert response.status_code == 200
    assert f'href="/history/{hop.pk}/' in body
    assert "<i>Ivy" not in body and "&lt;i&gt;" in body
    assert 'value="' + hop.customer + '"' in body  # the nav's box keeps the query
    tina = factories.logged_in(people["tina"]).get("/search/", {"q": hop.customer})
    assert tina.status_code == 200
    assert f"/history/{hop.pk}/" not in tina.content.decode()
    assert "Nothing you may see matches" in tina.content.decode()
    bad = alice.get("/search/", {"q": "x" * 500})
    assert bad.status_code == 400 and 'role="alert"' in bad.content.decode()
    assert alice.get("/search/", {"q": "the"}).status_code == 400
    assert alice.get("/search/").status_code == 200


def test_search_shows_more_messages_a_page_at_a_time(people):
    hop = factories.escalate("billing-specialist")
    handoff_accept(handoff_id=hop.pk, agent=people["alice"])
    for i in range(70):
        say(hop, f"invoice number {i} is wrong")
    alice = factories.logged_in(people["alice"])

    def message_hits(**params):
        body = alice.get("/search/", {"q": "invoice wrong", **params}).content.decode()
        return len(re.findall(r'id="message-hit-\d+"', body)), body

    shown, body = message_hits()
    assert shown == 30
    assert 'href="?q=invoice+wrong&amp;messages=60#message-hit-31">Show more messages' in body
    shown, body = message_hits(messages="60")
    assert shown == 60 and "messages=90#message-hit-61" in body
    shown, body = message_hits(messages="90")
    assert shown == 70 and "Show more messages" not in body  # all of them
    # Junk or huge values are a page (or the cap), never an error.
    for junk, expected in (("x", 30), ("-5", 30), ("10**9", 30), ("100000", 70), ("45", 30)):
        assert message_hits(messages=junk)[0] == expected, junk


def test_every_console_page_has_history_and_the_search_box(people):
    alice = factories.logged_in(people["alice"])
    for url in ("/", "/conversations/", "/history/", "/search/"):
        body = alice.get(url).content.decode()
        assert 'role="search"' in body and 'action="/search/"' in body, url
        assert 'href="/history/"' in body, url
    sam = factories.logged_in(people["sam"])
    for url in ("/floor/", "/reports/transfers/"):
        body = sam.get(url).content.decode()
        assert 'role="search"' in body and 'href="/history/"' in body, url


def test_the_card_and_the_conversation_show_the_customers_past(people):
    first = closed("billing-specialist", people["alice"], customer="cust-returning")
    other_team = closed("tech-support", people["tina"], customer="cust-returning")
    again = factories.escalate("billing-specialist", customer="cust-returning")
    dan = factories.logged_in(people["dan"])
    card = dan.get(f"/handoffs/{again.pk}/").content.decode()
    assert "Returning customer" in card
    assert "1 earlier conversation" in card
    assert f'href="/history/{first.pk}/"' in card
    assert f"/history/{other_team.pk}/" not in card  # tech's past is not billing's
    sam_card = factories.logged_in(people["sam"]).get(f"/handoffs/{again.pk}/").content.decode()
    assert "2 earlier conversations" in sam_card
    handoff_accept(handoff_id=again.pk, agent=people["dan"])
    page = dan.get(f"/conversations/{again.pk}/").content.decode()
    assert "Returning customer" in page and f'href="/history/{first.pk}/"' in page
    # The first conversation's transcript lists the later one as later, not "earlier".
    transcript = dan.get(f"/history/{first.pk}/").content.decode()
    assert "Came back later:</strong> 1 later conversation" in transcript
    assert "Returning customer" not in transcript and "earlier conversation" not in transcript
    # A new customer is not "returning".
    fresh = factories.escalate("billing-specialist")
    assert "No earlier conversations" in dan.get(f"/handoffs/{fresh.pk}/").content.decode()
