"""Team policies in Django admin: editable, and every change is in the audit trail with
who made it."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from handoffs.models import Event, Team

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client() -> Client:
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-1234567")
    client = Client()
    client.force_login(user)
    return client


def form(team: Team, **changes) -> dict:
    data = {
        "slug": team.slug,
        "name": team.name,
        "is_default": "on" if team.is_default else "",
        "warn_after_secs": team.warn_after_secs,
        "breach_after_secs": team.breach_after_secs,
        "unanswered_after_secs": team.unanswered_after_secs,
        "requeue_unanswered": "on" if team.requeue_unanswered else "",
        "default_capacity": team.default_capacity,
        "time_zone": team.time_zone,
        "away_message": team.away_message,
        "routing_mode": team.routing_mode,
        "routing_policy": team.routing_policy,
        "offer_timeout_secs": team.offer_timeout_secs,
        "away_after_missed_offer": "on" if team.away_after_missed_offer else "",
        "skill_fallback_secs": team.skill_fallback_secs,
        "handover_after_offline_secs": team.handover_after_offline_secs,
        "shift_reminder_mins": team.shift_reminder_mins,
    }
    # The opening hours and holidays inlines (none).
    for prefix in ("opening_hours", "holidays"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    data.update(changes)
    return {k: v for k, v in data.items() if v != ""}


def test_policy_changes_are_audited_with_who(admin_client, teams):
    team = teams["billing-specialist"]
    page = admin_client.get(f"/admin/handoffs/team/{team.pk}/change/")
    assert page.status_code == 200
    for field in ("unanswered_after_secs", "requeue_unanswered", "default_capacity"):
        assert f'name="{field}"' in page.content.decode()

    response = admin_client.post(
        f"/admin/handoffs/team/{team.pk}/change/",
        form(team, breach_after_secs=600, requeue_unanswered="on"),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    team.refresh_from_db()
    assert team.breach_after_secs == 600 and team.requeue_unanswered
    event = Event.objects.get(kind="team.policy_changed")
    assert event.actor == "human:root"
    assert event.data == {
        "team": "billing-specialist",
        "by": "root",
        "via": "admin",
        "changes": {"breach_after_secs": [300, 600], "requeue_unanswered": [False, True]},
        "created": False,
    }
    # Saving without a change writes nothing.
    admin_client.post(f"/admin/handoffs/team/{team.pk}/change/", form(team))
    assert Event.objects.filter(kind="team.policy_changed").count() == 1


def test_a_new_team_is_audited(admin_client, db):
    response = admin_client.post(
        "/admin/handoffs/team/add/",
        form(Team(slug="retention", name="Retention"), warn_after_secs=60),
    )
    assert response.status_code == 302
    event = Event.objects.get(kind="team.policy_changed")
    assert event.data["created"] is True and event.data["team"] == "retention"
    assert event.data["changes"]["warn_after_secs"] == [None, 60]


def test_apply_default_capacity_is_audited(admin_client, teams, make_agent):
    team = teams["tech-support"]
    team.default_capacity = 5
    team.save()
    bob = make_agent("bob", teams=[team], capacity=2)
    response = admin_client.post(
        "/admin/handoffs/team/",
        {"action": "apply_default_capacity", "_selected_action": [team.pk]},
    )
    assert response.status_code == 302
    bob.refresh_from_db()
    assert bob.capacity == 5
    event = Event.objects.get(kind="team.capacity_applied")
    assert event.actor == "human:root"
    assert event.data["agents"] == {"bob": [2, 5]}


def test_admin_turns_on_offer_routing_and_it_is_audited(admin_client, teams):
    team = teams["billing-specialist"]
    response = admin_client.post(
        f"/admin/handoffs/team/{team.pk}/change/",
        form(team, routing_mode="offer", routing_policy="round_robin", offer_timeout_secs=45),
    )
    assert response.status_code == 302
    team.refresh_from_db()
    assert (team.routing_mode, team.routing_policy, team.offer_timeout_secs) == (
        "offer",
        "round_robin",
        45,
    )
    event = Event.objects.filter(kind="team.policy_changed").latest("pk")
    assert event.data["changes"]["routing_mode"] == ["pull", "offer"]
