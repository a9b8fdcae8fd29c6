"""Issue 13 in the lifecycle: hops carry the customer's state, bounces are flagged, the
default queue reaches people, release and move-to-team, a reassignment the customer sees."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from handoffs.desk import opener
from handoffs.desk.selectors import queue_for_agent, visible_handoff
from handoffs.lifecycle.accept import handoff_accept
from handoffs.lifecycle.endings import (
    handoff_move_to_team,
    handoff_reassign,
    handoff_release,
    handoff_transfer,
)
from handoffs.lifecycle.errors import HandoffError
from handoffs.models import Handoff, Role, Sender, Source, Status, Team
from tests.factories import escalate

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(teams, make_agent):
    return {
        "alice": make_agent("alice", teams=[teams["billing-specialist"]]),
        "bob": make_agent("bob", teams=[teams["billing-specialist"]]),
        "carol": make_agent("carol", teams=[teams["tech-support"]]),
        "sue": make_agent("sue", role=Role.SUPERVISOR),
    }


def hop_of(people, who, handoff):
    return handoff_accept(handoff_id=handoff.pk, agent=people[who])


def test_a_calm_note_never_lowers_the_customers_state(people):
    first = hop_of(people, "alice", escalate(sentiment="frustrated", urgency="high"))
    second = handoff_transfer(
        handoff_id=first.pk, agent=people["alice"], to="tech-support", note="All calm now, thanks!"
    )
    assert (second.sentiment, second.urgency) == ("frustrated", "high")
    assert second.sentiment_source == Source.BOT  # carried with where it came from
    assert second.waiting_since == first.created_at


def test_an_estimate_may_raise_it_and_the_agent_may_change_it(people):
    first = hop_of(people, "alice", escalate(sentiment="neutral", urgency="normal"))
    raised = handoff_transfer(
        handoff_id=first.pk,
        agent=people["alice"],
        to="tech-support",
        note="He threatens a chargeback and a lawyer, furious about the outage.",
    )
    assert raised.urgency == "critical" and raised.sentiment == "angry"
    taken = hop_of(people, "carol", raised)
    calmer = handoff_transfer(
        handoff_id=taken.pk,
        agent=people["carol"],
        to="billing-specialist",
        note="Outage fixed.",
        sentiment="neutral",
        urgency="normal",
    )
    assert (calmer.sentiment, calmer.urgency) == ("neutral", "normal")
    assert calmer.sentiment_source == Source.AGENT == calmer.urgency_source
    with pytest.raises(HandoffError):
        handoff_transfer(
            handoff_id=hop_of(people, "alice", calmer).pk,
            agent=people["alice"],
            to="tech-support",
            note="x",
            urgency="whenever",
        )


def test_a_ping_pong_and_a_loop_are_flagged_on_the_hop(people):
    first = hop_of(people, "alice", escalate())
    second = handoff_transfer(
        handoff_id=first.pk, agent=people["alice"], to="tech-support", note="a"
    )
    assert second.bounce == ""
    third = handoff_transfer(
        handoff_id=hop_of(people, "carol", second).pk,
        agent=people["carol"],
        to="billing-specialist",
        note="back",
    )
    assert third.bounce == "ping_pong"  # billing → tech → billing


def test_the_default_queue_reaches_every_agent_until_it_has_members(people):
    lost = escalate(team_slug="nowhere", to_agent="nowhere")
    assert lost.misrouted and lost.team.is_default
    for who in ("alice", "carol"):
        assert lost in queue_for_agent(agent=people[who])
        assert visible_handoff(agent=people[who], handoff_id=lost.pk) is not None
    # A supervisor or admin in the default team (a superuser's profile has every team)
    # doesn't make it a named fallback: they see every queue anyway.
    people["sue"].teams.add(lost.team)
    assert lost in queue_for_agent(agent=people["alice"])
    hop_of(people, "carol", lost)  # anyone can take it
    # An admin gives the default team members: a named fallback team, theirs only.
    fallback = escalate(team_slug="nowhere-else", to_agent="nowhere-else")
    people["bob"].teams.add(fallback.team)
    assert fallback in queue_for_agent(agent=people["bob"])
    assert fallback not in queue_for_agent(agent=people["alice"])


def test_release_puts_it_back_in_the_teams_queue_with_the_summary(people):
    first = hop_of(people, "alice", escalate(summary="Charged twice for order 7."))
    released = handoff_release(handoff_id=first.pk, agent=people["alice"], rating="accurate")
    assert released.team.slug == "billing-specialist" and released.status == Status.WAITING
    assert released.summary.endswith("Charged twice for order 7.")
    assert released.reason == "release"
    first.refresh_from_db()
    assert first.status == Status.TRANSFERRED and first.rating == "accurate"
    assert released in queue_for_agent(agent=people["bob"])


def test_a_supervisor_moves_a_waiting_hop_to_a_team(people, teams):
    waiting = escalate()
    user = get_user_model().objects.get(username="sue")
    moved = handoff_move_to_team(handoff_id=waiting.pk, team=teams["tech-support"], by=user)
    assert moved.team.slug == "tech-support" and moved.assigned_to is None
    assert moved in queue_for_agent(agent=people["carol"])
    with pytest.raises(HandoffError):
        handoff_move_to_team(handoff_id=waiting.pk, team=teams["tech-support"], by=user)


def test_a_reassigned_conversation_tells_the_customer_who_joined(people):
    hop = hop_of(people, "alice", escalate(customer_name="Dave Miller"))
    user = get_user_model().objects.get(username="sue")
    handoff_reassign(handoff_id=hop.pk, to_agent=people["bob"], by=user)
    joined = list(
        hop.conversation.messages.filter(sender=Sender.SYSTEM).values_list("body", flat=True)
    )
    assert joined == [
        "Alice from Billing specialists joined the conversation.",
        "Bob from Billing specialists joined the conversation.",
    ]


def test_the_opener_uses_only_safe_words(people, teams):
    team = teams["billing-specialist"]
    hop = hop_of(
        people,
        "alice",
        escalate(
            customer_name="Dave <b>Miller</b>",
            summary="The customer (VIP) is furious: 'you people are useless'.",
            reason="<script>x</script>your VAT invoice",
        ),
    )
    text = opener.render_opener(handoff=hop, agent=people["alice"])
    assert text.startswith("Hi Dave, I'm Alice from Billing specialists.")
    assert "about xyour VAT invoice" in text or "about your VAT invoice" in text
    for leak in ("VIP", "furious", "useless", "<", ">"):
        assert leak not in text
    Team.objects.filter(pk=team.pk).update(
        topic="billing", opener_template="Hello {customer_name}! {agent_name} here ({topic})."
    )
    no_reason = hop_of(people, "bob", escalate(customer_name="Erin", reason=""))
    assert opener.render_opener(handoff=no_reason, agent=people["bob"]) == (
        "Hello Erin! Bob here (billing)."
    )
    people["bob"].user.first_name = ""
    assert "Bob here" not in opener.render_opener(handoff=no_reason, agent=people["bob"])
    assert "bob" not in opener.render_opener(handoff=no_reason, agent=people["bob"])


def test_internal_reasons_are_never_a_topic(people):
    first = hop_of(people, "alice", escalate(reason=""))
    second = handoff_transfer(
        handoff_id=first.pk, agent=people["alice"], to="tech-support", note="n"
    )
    assert second.reason == "transfer"
    assert opener.stated_topic(Handoff.objects.get(pk=second.pk)) == ""
