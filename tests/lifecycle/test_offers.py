"""Offer routing: who is offered a waiting hop, and what accept, decline, timeouts,
presence and closing a conversation do to it (``handoffs.lifecycle.offers``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from handoffs.lifecycle import accept, endings, offers
from handoffs.lifecycle.errors import HandoffConflict, HandoffError, HandoffNotFound
from handoffs.lifecycle.intake import handoff_intake_from_memory
from handoffs.models import Event, Offer, OfferStatus, Presence, Status
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(teams):
    team = teams["billing-specialist"]
    team.routing_mode = "offer"
    team.offer_timeout_secs = 30
    team.save()
    return team


@pytest.fixture
def online(make_agent, team):
    """make_agent, online in the offer team."""

    def make(name: str, **kw):
        agent = make_agent(name, teams=[team], **kw)
        agent.presence = Presence.ONLINE
        agent.save(update_fields=["presence"])
        return agent

    return make


@pytest.fixture
def routed(django_capture_on_commit_callbacks):
    """Escalate with the on-commit routing run, as it runs after a real commit."""

    def escalate(**fields):
        with django_capture_on_commit_callbacks(execute=True):
            return factories.escalate("billing-specialist", **fields)

    return escalate


def live(hop):
    hop.refresh_from_db()
    return hop.offered_to


def test_a_new_hop_is_offered_to_the_least_busy_then_longest_idle_agent(
    online, routed, django_capture_on_commit_callbacks
):
    busy = online("bea")
    idle = online("ida")
    recent = online("rex")
    now = timezone.now()
    type(idle).objects.filter(pk=recent.pk).update(last_routed_at=now)
    type(idle).objects.filter(pk=idle.pk).update(last_routed_at=now - timedelta(hours=1))
    first = routed()
    assert live(first) == busy  # never offered before: the longest idle of all
    with django_capture_on_commit_callbacks(execute=True):
        accept.handoff_accept(handoff_id=first.pk, agent=busy)

    second = routed()

    assert live(second) == idle  # bea has one open; ida idled longer than rex
    offer = Offer.objects.get(handoff=second)
    assert offer.status == OfferStatus.LIVE and offer.agent == idle
    assert offer.expires_at == second.offer_expires_at
    made = Event.objects.get(handoff=second, kind="offer.made")
    assert made.data["agent"] == "ida" and made.data["policy"] == "least_busy"


def test_round_robin_ignores_load(online, routed, team, django_capture_on_commit_callbacks):
    team.routing_policy = "round_robin"
    team.save()
    a, b = online("amy"), online("ben")
    first = routed()
    assert live(first) == a
    with django_capture_on_commit_callbacks(execute=True):
        accept.handoff_accept(handoff_id=first.pk, agent=a)
    assert live(routed()) == b
    assert live(routed()) == a  # amy has one open, but it is her turn again


def test_only_the_offered_agent_may_accept_and_accepting_closes_the_offer(online, routed):
    alice, bob = online("alice"), online("bob")
    hop = routed()
    assert live(hop) == alice

    with pytest.raises(HandoffConflict, match="not offered to you"):
        accept.handoff_accept(handoff_id=hop.pk, agent=bob)
    accept.handoff_accept(handoff_id=hop.pk, agent=alice)

    hop.refresh_from_db()
    assert hop.status == Status.ACCEPTED and hop.accepted_by == alice
    assert hop.offered_to is None
    assert Offer.objects.get(handoff=hop).status == OfferStatus.ACCEPTED
    assert Event.objects.filter(handoff=hop, kind="offer.accepted").count() == 1


def test_decline_needs_a_reason_and_moves_the_hop_to_the_next_agent(
    online, routed, django_capture_on_commit_callbacks
):
    alice, bob = online("alice"), online("bob")
    hop = routed()
    offer = Offer.objects.get(handoff=hop)

    with pytest.raises(HandoffError, match="reason must be one of"):
        offers.offer_decline(offer_id=offer.pk, agent=alice, reason="")
    with pytest.raises(HandoffError, match="Say why"):
        offers.offer_decline(offer_id=offer.pk, agent=alice, reason="other")
    assert live(hop) == alice  # nothing changed
    with pytest.raises(HandoffNotFound):
        offers.offer_decline(offer_id=offer.pk, agent=bob, reason="busy")
    with django_capture_on_commit_callbacks(execute=True):
        offers.offer_decline(offer_id=offer.pk, agent=alice, reason="skill", note="no German")

    assert live(hop) == bob
    offer.refresh_from_db()
    assert offer.status == OfferStatus.DECLINED
    assert offer.reason == "Not my skill or language: no German"
    event = Event.objects.get(handoff=hop, kind="offer.declined")
    assert event.data["reason"] == "skill"
    # Declining twice: it is no longer hers.
    with pytest.raises(HandoffNotFound):
        offers.offer_decline(offer_id=offer.pk, agent=alice, reason="busy")


def test_a_timed_out_offer_moves_on_and_the_agent_goes_away(online, routed):
    alice, bob = online("alice"), online("bob")
    hop = routed()
    assert live(hop) == alice

    assert offers.expire_due(timezone.now() + timedelta(seconds=10)).expired == []
    result = offers.run_due(timezone.now() + timedelta(seconds=31))

    assert result.expired == [hop.pk]
    assert result.away == [alice.pk]
    alice.refresh_from_db()
    assert alice.presence == Presence.AWAY
    assert Offer.objects.get(handoff=hop, agent=alice).status == OfferStatus.EXPIRED
    # The sweep offered it to the next agent; a second pass expires nothing again.
    assert live(hop) == bob
    assert offers.expire_due(timezone.now() + timedelta(seconds=31)).expired == []


def test_nobody_free_waits_until_someone_frees_up(
    online, routed, django_capture_on_commit_callbacks
):
    solo = online("solo", capacity=1)
    first = routed()
    second = routed()
    assert live(first) == solo
    assert live(second) is None  # solo's one slot is held by the first offer
    accept.handoff_accept(handoff_id=first.pk, agent=solo)
    assert live(second) is None

    with django_capture_on_commit_callbacks(execute=True):
        endings.conversation_resolve(handoff_id=first.pk, agent=solo, summary="done")

    assert live(second) == solo


def test_coming_online_gets_the_waiting_hop_and_going_away_hands_offers_on(
    make_agent, team, routed, django_capture_on_commit_callbacks
):
    late = make_agent("late", teams=[team])
    other = make_agent("other", teams=[team])
    hop = routed()
    assert live(hop) is None

    with django_capture_on_commit_callbacks(execute=True):
        offers.set_presence(agent=late, presence=Presence.ONLINE)
    assert live(hop) == late
    with django_capture_on_commit_callbacks(execute=True):
        offers.set_presence(agent=other, presence=Presence.ONLINE)
        offers.set_presence(agent=late, presence=Presence.AWAY)

    assert live(hop) == other
    assert Offer.objects.get(handoff=hop, agent=late).status == OfferStatus.WITHDRAWN


def test_skills_are_respected_with_a_fallback_after_the_teams_delay(online, routed, team, client):
    team.skill_fallback_secs = 60
    team.save()
    plain = online("plain")
    hop = routed(summary="Kunde wurde doppelt belastet", required_skills=["de"])
    assert hop.required_skills == ["de"]
    assert live(hop) is None  # nobody speaks German: it waits for the fallback

    offers.run_due(timezone.now() + timedelta(seconds=61))

    assert live(hop) == plain
    offer = Offer.objects.get(handoff=hop)
    assert offer.skill_fallback is True
    accept.handoff_accept(handoff_id=hop.pk, agent=plain)
    page = factories.logged_in(plain).get(f"/conversations/{hop.pk}/").content.decode()
    assert "de missing: offered to Plain without it" in page


def test_a_skilled_agent_is_preferred(online, routed):
    online("plain")
    german = online("greta")
    german.skills = "de, refunds"
    german.save()
    hop = routed(required_skills=["de"])
    assert live(hop) == german


def test_pull_mode_offers_nothing(make_agent, teams):
    agent = make_agent("pat", teams=[teams["tech-support"]])
    offers.set_presence(agent=agent, presence=Presence.ONLINE)
    hop = factories.escalate("tech-support")
    offers.dispatch()
    assert live(hop) is None
    accept.handoff_accept(handoff_id=hop.pk, agent=agent)


def test_offers_count_toward_capacity(online, routed):
    agent = online("cap", capacity=2)
    hops = [routed() for _ in range(3)]
    assert [live(h) for h in hops] == [agent, agent, None]


def test_memory_metadata_skills_and_language_become_required_skills(bot):
    result = handoff_intake_from_memory(
        memory={
            "id": "m1",
            "agent_id": "cust-de",
            "content": "Refund for a German customer",
            "metadata": {
                "type": "handoff",
                "to_agent": "billing-specialist",
                "skills": ["Refunds", "<script>"],
                "language": "DE",
            },
        },
        bot=bot,
    )
    assert result.handoff.required_skills == ["de", "refunds"]


def test_a_supervisor_reassign_withdraws_the_offer(
    online, routed, make_agent, django_capture_on_commit_callbacks
):
    alice, bob = online("alice"), online("bob")
    boss = make_agent("boss", role="supervisor")
    hop = routed()
    assert live(hop) == alice
    endings.handoff_reassign(handoff_id=hop.pk, to_agent=bob, by=boss.user)
    hop.refresh_from_db()
    assert hop.offered_to is None and hop.assigned_to == bob
    assert Offer.objects.get(handoff=hop).status == OfferStatus.WITHDRAWN
    accept.handoff_accept(handoff_id=hop.pk, agent=bob)


def test_agent_skills_are_normalised_and_checked(make_agent):
    from django.core.exceptions import ValidationError

    agent = make_agent("sk")
    agent.skills = "DE, Refunds  en,de"
    agent.clean()
    assert agent.skills == "de, en, refunds"
    agent.skills = "de, <b>"
    with pytest.raises(ValidationError):
        agent.clean()


def test_the_pull_queue_respects_skills_until_the_fallback(make_agent, teams):
    team = teams["tech-support"]
    team.skill_fallback_secs = 60
    team.save()
    plain = make_agent("plain", teams=[team])
    german = make_agent("greta", teams=[team])
    german.skills = "de"
    german.save()
    first = factories.escalate("tech-support", required_skills=["de"])
    second = factories.escalate("tech-support", required_skills=["de"])

    with pytest.raises(HandoffConflict) as refused:
        accept.handoff_accept(handoff_id=first.pk, agent=plain)
    assert refused.value.message == (
        "This customer needs de: colleagues with that skill get it first "
        "(anyone may take it 60 s after it arrived)."
    )
    page = factories.logged_in(plain).get(f"/handoffs/{first.pk}/").content.decode()
    assert 'class="primary accept"' not in page
    accept.handoff_accept(handoff_id=first.pk, agent=german)
    # After the fallback delay anyone in the team may take it.
    type(second).objects.filter(pk=second.pk).update(
        created_at=timezone.now() - timedelta(seconds=61)
    )
    accept.handoff_accept(handoff_id=second.pk, agent=plain)
