"""Opening hours with a frozen clock (``time_machine``), on SQLite and PostgreSQL.

Billing works Monday to Friday, 09:00-17:00 in Europe/Berlin, and is closed on a holiday.
Outside those hours: a handoff is marked "arrived out of hours" (on the agent's queue
row), the customer is told when the team is back and may leave messages (marked for the
agent), and the SLA and unanswered timers pause.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from handoffs.customers import status
from handoffs.lifecycle import hours, timers
from handoffs.lifecycle.accept import handoff_accept
from handoffs.lifecycle.messages import message_post
from handoffs.models import Event, Holiday, Message, OpeningHours, Sender
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.pg]

BERLIN = ZoneInfo("Europe/Berlin")


def at(day: int, hour: int, minute: int = 0, month: int = 6) -> datetime:
    """A moment in Berlin, June 2026 (1 June 2026 is a Monday)."""
    return datetime(2026, month, day, hour, minute, tzinfo=BERLIN)


@pytest.fixture
def billing(teams):
    team = teams["billing-specialist"]
    team.time_zone = "Europe/Berlin"
    team.warn_after_secs, team.breach_after_secs = 120, 600
    team.unanswered_after_secs = 300
    team.save()
    for weekday in range(5):
        OpeningHours.objects.create(team=team, weekday=weekday, opens=time(9), closes=time(17))
    return team


def test_schedule_open_closed_and_back_at(billing):
    schedule = hours.schedule_for(billing)
    assert hours.is_open(schedule, at(1, 9))  # Monday 09:00
    assert not hours.is_open(schedule, at(1, 8, 59))
    assert not hours.is_open(schedule, at(1, 17))
    assert not hours.is_open(schedule, at(6, 12))  # Saturday
    assert hours.next_open(schedule, at(6, 12)) == at(8, 9)  # back Monday 09:00
    assert hours.next_open(schedule, at(2, 10)) == at(2, 10)  # open: now
    # Friday 16:00 to Monday 10:00: 1 h Friday + 1 h Monday.
    assert hours.open_seconds(schedule, at(5, 16), at(8, 10)) == 2 * 3600
    Holiday.objects.create(team=billing, date=date(2026, 6, 8), name="Whit Monday")
    schedule = hours.schedule_for(billing)
    assert hours.next_open(schedule, at(6, 12)) == at(9, 9)  # back Tuesday
    assert hours.open_seconds(schedule, at(5, 16), at(9, 10)) == 2 * 3600


def test_open_seconds_across_a_daylight_saving_change(teams):
    """Around the clock in Berlin; the night of 29 March 2026 has 23 hours."""
    team = teams["tech-support"]
    team.time_zone = "Europe/Berlin"
    team.save()
    for weekday in range(7):
        OpeningHours.objects.create(team=team, weekday=weekday, opens=time(0), closes=time(0))
    schedule = hours.schedule_for(team)
    start = datetime(2026, 3, 28, 12, tzinfo=BERLIN)
    end = datetime(2026, 3, 29, 12, tzinfo=BERLIN)
    assert hours.open_seconds(schedule, start, end) == 23 * 3600
    assert hours.is_open(schedule, datetime(2026, 3, 29, 2, 30, tzinfo=BERLIN))


def test_a_team_without_hours_is_always_open(teams):
    schedule = hours.schedule_for(teams["tech-support"])
    assert schedule.always_open
    assert hours.is_open(schedule, at(6, 3))
    assert hours.open_seconds(schedule, at(6, 3), at(6, 4)) == 3600


def test_out_of_hours_handoff_is_marked_and_the_customer_told_when_we_are_back(billing, client):
    with time_machine.travel(at(6, 11), tick=False):  # Saturday 11:00
        handoff = factories.escalate(customer_name="Sat Sam", reason="Double charge")
        assert handoff.arrived_out_of_hours
        event = Event.objects.get(handoff=handoff, kind="handoff.created")
        assert event.data["out_of_hours"] is True

        panel = status.customer_status(handoff.conversation)
        assert panel.state == "waiting" and not panel.team_open
        assert panel.back_at == at(8, 9)
        assert panel.position == 1
        page = client.get(f"/c/{handoff.conversation.token}/").content.decode()
        assert "Our team is away right now." in page
        assert "Monday, 8 June, 09:00 (Europe/Berlin)" in page
        assert "You can leave messages here" in page

        # The customer leaves a message: stored, marked for the agent.
        message_post(
            conversation=handoff.conversation,
            sender=Sender.CUSTOMER,
            body="Please call me back on Monday.",
            client_id="sat-1",
        )
        assert Message.objects.get(client_id="sat-1").out_of_hours

    with time_machine.travel(at(8, 9, 30), tick=False):  # Monday, open
        later = factories.escalate()
        assert not later.arrived_out_of_hours
        message_post(
            conversation=later.conversation,
            sender=Sender.CUSTOMER,
            body="Hello",
            client_id="mon-1",
        )
        assert not Message.objects.get(client_id="mon-1").out_of_hours
        panel = status.customer_status(handoff.conversation)
        assert panel.team_open and panel.position == 1


def test_out_of_hours_marks_show_on_the_agents_screens(billing, make_agent):
    alice = make_agent("alice", teams=[billing])
    with time_machine.travel(at(6, 11), tick=False):
        handoff = factories.escalate(customer_name="Sat Sam")
        message_post(
            conversation=handoff.conversation,
            sender=Sender.CUSTOMER,
            body="Anyone there?",
            client_id="sat-2",
        )
    with time_machine.travel(at(8, 9, 5), tick=False):
        queue = factories.logged_in(alice).get("/").content.decode()
        assert "arrived out of hours" in queue
        handoff_accept(handoff_id=handoff.pk, agent=alice)
        page = factories.logged_in(alice).get(f"/conversations/{handoff.pk}/").content.decode()
        assert page.count("arrived out of hours") == 1  # the message (the queue row is gone)


def test_sla_timers_pause_outside_hours(billing, sent):
    with time_machine.travel(at(5, 16, 59), tick=False):  # Friday 16:59
        handoff = factories.escalate()
    # Friday 17:00 until Monday 09:00 doesn't count: 60 open seconds on Friday.
    assert not timers.run_due(now=at(6, 12)).fired
    assert not timers.run_due(now=at(8, 9, 0)).fired
    assert not timers.run_due(now=at(8, 9, 0) + timedelta(seconds=59)).fired
    result = timers.run_due(now=at(8, 9, 1))  # 60 + 60 = 120 open seconds
    assert result.warned == [handoff.pk]
    warn = Event.objects.get(handoff=handoff, kind="sla.warn")
    assert warn.data["waited_secs"] == 120
    assert timers.run_due(now=at(8, 9, 9)).breached == [handoff.pk]  # 600 open seconds


def test_the_unanswered_timer_pauses_outside_hours(billing, make_agent, sent):
    alice = make_agent("alice", teams=[billing])
    with time_machine.travel(at(5, 16, 58), tick=False):
        handoff = factories.escalate()
        handoff_accept(handoff_id=handoff.pk, agent=alice)
    # 2 open minutes on Friday; the weekend doesn't count.
    assert timers.run_due(now=at(7, 20)).unanswered == []
    assert timers.run_due(now=at(8, 9, 2)).unanswered == []
    assert timers.run_due(now=at(8, 9, 3)).unanswered == [handoff.pk]
    event = Event.objects.get(handoff=handoff, kind="conversation.unanswered")
    assert event.data["unanswered_secs"] == 300
