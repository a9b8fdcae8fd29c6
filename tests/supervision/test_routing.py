"""Supervising offers and shift handovers: the floor's live offers and declines, and
the routing report (``handoffs.supervision.routing``)."""

from __future__ import annotations

import pytest

from handoffs.lifecycle import accept, offers, shifts
from handoffs.models import Offer, Presence
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def floor(teams, make_agent):
    team = teams["billing-specialist"]
    team.routing_mode = "offer"
    team.save()
    alice = make_agent("alice", teams=[team])
    bob = make_agent("bob", teams=[team])
    boss = make_agent("boss", role="supervisor")
    for agent in (alice, bob):
        offers.set_presence(agent=agent, presence=Presence.ONLINE)
    return alice, bob, boss


def test_the_floor_shows_live_offers_and_declines_with_reasons(floor):
    alice, bob, boss = floor
    hop = factories.escalate("billing-specialist", customer_name="Dora")
    offers.dispatch()
    offer = Offer.objects.get(handoff=hop)
    assert offer.agent == alice
    offers.offer_decline(offer_id=offer.pk, agent=alice, reason="break")
    offers.dispatch()

    page = factories.logged_in(boss).get("/floor/").content.decode()

    live = page[page.index('id="floor-offers"') :]
    assert "Dora" in live and "Bob" in live
    declines = page[page.index('id="floor-declines"') :]
    assert "Declined</strong> by Alice: Dora (Going on a break)" in declines
    # Both times are `when` elements: the pushed floor (rendered without the viewer's
    # zone) is rewritten in the supervisor's zone by localtime.js, like the alerts.
    assert declines.index('data-fmt="time"') < declines.index("Declined</strong>")
    assert 'data-fmt="time"' in live[: live.index("</table>")]


def test_the_routing_report_counts_offers_and_shift_pickups(floor):
    alice, bob, boss = floor
    first = factories.escalate("billing-specialist")
    offers.dispatch()  # both idle: alice (first by id)
    second = factories.escalate("billing-specialist")
    offers.dispatch()  # least busy: bob
    assert Offer.objects.get(handoff=first).agent == alice
    declined = Offer.objects.get(handoff=second)
    assert declined.agent == bob
    accept.handoff_accept(handoff_id=first.pk, agent=alice)
    offers.offer_decline(offer_id=declined.pk, agent=bob, reason="busy")
    offers.dispatch()  # bob declined it: alice
    accept.handoff_accept(handoff_id=second.pk, agent=alice)
    result = shifts.shift_end(
        agent=alice,
        items=[
            shifts.HandoverItem(handoff_id=hop.pk, next_step="Refund", text="t")
            for hop in (first, second)
        ],
    )
    offers.dispatch()  # alice is off shift: both go to bob
    for new in result.handed_over:
        assert Offer.objects.get(handoff=new).agent == bob
        accept.handoff_accept(handoff_id=new.pk, agent=bob)

    page = factories.logged_in(boss).get("/reports/routing/?days=7").content.decode()

    assert 'id="n-offered">5<' in page
    assert 'id="n-accepted">4<' in page
    assert 'id="n-declined">1<' in page
    assert "Busy with another customer" in page
    shifts_table = page[page.index('id="shift-handovers"') :]
    assert "Alice" in shifts_table and "End shift" in shifts_table
    assert '<td class="num">2</td><td class="num">2</td><td class="num">0</td>' in shifts_table


def test_the_routing_report_is_for_supervisors_only(floor):
    alice, _, _ = floor
    assert factories.logged_in(alice).get("/reports/routing/").status_code == 403
