"""Admin for people (issue 13): superusers' first visit, one "Add agent" form, webhook
secrets shown once and rotatable, presence read-only, the audit list."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.test import Client

from handoffs.lifecycle.presence import agent_set_presence
from handoffs.models import Agent, Bot, Event, Presence, Role, Team

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(teams) -> Client:
    user = get_user_model().objects.create_superuser("root", "root@example.test", "pw-root-1")
    client = Client()
    client.force_login(user)
    return client


def test_a_superuser_gets_a_console_profile_on_first_visit(root, teams):
    assert not Agent.objects.filter(user__username="root").exists()
    response = root.get("/")
    assert response.status_code == 200
    assert "No console profile" not in response.text
    agent = Agent.objects.get(user__username="root")
    assert agent.role == Role.ADMIN and agent.is_supervisor
    assert set(agent.teams.values_list("slug", flat=True)) == set(
        Team.objects.values_list("slug", flat=True)
    )
    assert root.get("/floor/").status_code == 200
    assert Agent.objects.filter(user__username="root").count() == 1


def test_a_staff_user_without_a_profile_still_gets_none(teams):
    user = get_user_model().objects.create_user("staffer", password="pw", is_staff=True)
    client = Client()
    client.force_login(user)
    assert client.get("/").status_code == 403
    assert not Agent.objects.filter(user=user).exists()


def test_one_add_agent_form_makes_the_account_and_the_profile(root, teams):
    billing = teams["billing-specialist"]
    response = root.post(
        "/admin/handoffs/agent/add/",
        {
            "username": "nina",
            "first_name": "Nina",
            "last_name": "Nowak",
            "email": "nina@example.test",
            "password": "a-long-pass-phrase-1",
            "teams": [billing.pk],
            "role": Role.AGENT,
            "capacity": 4,
        },
    )
    assert response.status_code == 302, response.content
    agent = Agent.objects.get(user__username="nina")
    assert agent.user.first_name == "Nina" and agent.user.check_password("a-long-pass-phrase-1")
    assert list(agent.teams.all()) == [billing] and agent.capacity == 4
    assert Event.objects.filter(kind="agent.created", data__agent="nina").exists()

    # Without a password: no usable password, and a one-time link to set one.
    response = root.post(
        "/admin/handoffs/agent/add/",
        {
            "username": "quinn",
            "first_name": "Quinn",
            "teams": [billing.pk],
            "role": "agent",
            "capacity": 3,
        },
        follow=True,
    )
    quinn = get_user_model().objects.get(username="quinn")
    assert not quinn.has_usable_password()
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("/accounts/reset/" in t and "Quinn" in t for t in texts), texts

    # A username taken, a first name missing: errors, nothing half-written.
    response = root.post(
        "/admin/handoffs/agent/add/",
        {"username": "nina", "first_name": "", "role": "agent", "capacity": 3},
    )
    assert response.status_code == 200
    assert "exists already" in response.text
    assert get_user_model().objects.filter(username="nina").count() == 1


def test_presence_is_read_only_in_admin(root, make_agent, teams):
    alice = make_agent("alice", teams=[teams["billing-specialist"]])
    agent_set_presence(agent=alice, presence=Presence.AWAY)
    page = root.get(f"/admin/handoffs/agent/{alice.pk}/change/").text
    assert 'name="presence"' not in page and 'name="presence_changed_at"' not in page
    root.post(
        f"/admin/handoffs/agent/{alice.pk}/change/",
        {"teams": [], "role": "agent", "capacity": 3, "presence": "online"},
    )
    alice.refresh_from_db()
    assert alice.presence == Presence.AWAY


def test_a_new_bots_webhook_secret_is_shown_once_and_can_be_rotated(root):
    response = root.post(
        "/admin/handoffs/bot/add/", {"name": "web-assistant", "scope": "write"}, follow=True
    )
    bot = Bot.objects.get(name="web-assistant")
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any(bot.webhook_secret in t for t in texts)
    assert bot.webhook_secret not in root.get(f"/admin/handoffs/bot/{bot.pk}/change/").text
    old = bot.webhook_secret
    response = root.post(
        "/admin/handoffs/bot/",
        {"action": "rotate_webhook_secrets", "_selected_action": [bot.pk]},
        follow=True,
    )
    bot.refresh_from_db()
    assert bot.webhook_secret != old
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any(bot.webhook_secret in t for t in texts)


def test_the_audit_list_is_newest_first_without_presence_noise(root, make_agent, teams):
    alice = make_agent("alice", teams=[teams["billing-specialist"]])
    for presence in (Presence.ONLINE, Presence.AWAY, Presence.ONLINE):
        agent_set_presence(agent=alice, presence=presence)
    Event.objects.create(kind="team.policy_changed", actor="human:root")
    Event.objects.create(kind="handoff.created", actor="bot:tier1-bot")
    page = root.get("/admin/handoffs/event/").text
    assert "agent.presence</td>" not in page
    assert page.index("handoff.created</td>") < page.index("team.policy_changed</td>")
    everything = root.get("/admin/handoffs/event/?kind=__all__").text
    assert everything.count("agent.presence</td>") == 3
    only = root.get("/admin/handoffs/event/?kind=team.policy_changed").text
    assert "team.policy_changed</td>" in only and "handoff.created</td>" not in only


def test_a_teams_opener_template_is_checked(root, teams):
    team = teams["billing-specialist"]
    data = {
        "slug": team.slug,
        "name": team.name,
        "warn_after_secs": 120,
        "breach_after_secs": 300,
        "unanswered_after_secs": 300,
        "default_capacity": 3,
        "topic": "your invoice",
        "opener_template": "Hi {customer_name}, {agent_name.__class__} here {summary}",
        "time_zone": "UTC",
        "routing_mode": "pull",
        "routing_policy": "least_busy",
        "offer_timeout_secs": 30,
        "skill_fallback_secs": 120,
        "handover_after_offline_secs": 900,
        "shift_reminder_mins": 15,
        # The opening hours and holidays inlines (none).
        **{
            f"{p}-{n}": "0"
            for p in ("opening_hours", "holidays")
            for n in ("TOTAL_FORMS", "INITIAL_FORMS")
        },
    }
    response = root.post(f"/admin/handoffs/team/{team.pk}/change/", data)
    assert response.status_code == 200
    assert "Unknown variable {summary}" in response.text
    data["opener_template"] = "Hello {customer_name}! {agent_name} ({team_name}) on {topic}."
    assert root.post(f"/admin/handoffs/team/{team.pk}/change/", data).status_code == 302
