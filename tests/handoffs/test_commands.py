"""Management commands other tools rely on: ``create_bot_key`` and ``createsuperuser``."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from handoffs.models import Bot
from tests import conftest


def create_bot_key(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("create_bot_key", *args, stdout=out)
    return out.getvalue().splitlines()


def test_create_bot_key_prints_the_key_alone_on_its_last_line(db, client):
    lines = create_bot_key("support-bot")
    key = lines[-1]
    assert key == key.strip()
    assert key.startswith("dk-")
    assert " " not in key
    assert len(key) > 40
    assert all(key not in line for line in lines[:-1])

    bot = Bot.objects.get(name="support-bot")
    assert bot.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert bot.revoked_at is None

    response = client.post(
        "/v1/sessions/start",
        {"agent_id": "user-dave"},
        "application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert response.status_code == 200
    assert response.json()["session"]["agent_id"] == "user-dave"
    assert client.get("/v1/sessions", HTTP_X_API_KEY=key).status_code == 200


def test_create_bot_key_sets_the_callback_url(db):
    create_bot_key("hook-bot", "--callback-url", "https://bots.example.com/hook")
    assert Bot.objects.get(name="hook-bot").callback_url == "https://bots.example.com/hook"


def test_create_bot_key_refuses_an_existing_name_without_rotate(db):
    first = create_bot_key("support-bot")[-1]
    with pytest.raises(CommandError):
        create_bot_key("support-bot")
    assert Bot.objects.get(name="support-bot").check_key(first)


def test_rotating_a_key_replaces_the_old_one(db, client):
    old = create_bot_key("support-bot")[-1]
    Bot.objects.filter(name="support-bot").update(revoked_at="2025-01-01T00:00:00Z")
    new = create_bot_key("support-bot", "--rotate")[-1]
    assert new != old
    assert Bot.objects.count() == 1
    assert client.get("/v1/sessions", HTTP_AUTHORIZATION=f"Bearer {new}").status_code == 200
    denied = client.get("/v1/sessions", HTTP_AUTHORIZATION=f"Bearer {old}")
    assert denied.status_code == 401
    assert denied.json()["error"] == "authentication_error"


def test_createsuperuser_noinput_reads_the_environment(db, client, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "root-admin")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "root@example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-test-password-42")
    call_command("createsuperuser", "--noinput", stdout=io.StringIO())

    user = get_user_model().objects.get(username="root-admin")
    assert user.is_superuser
    assert user.is_staff
    assert user.email == "root@example.com"
    assert user.check_password("a-long-test-password-42")
    # Signed in through the admin's own login form (django-axes needs the request).
    signed_in = client.post(
        "/admin/login/?next=/admin/handoffs/handoff/",
        {"username": "root-admin", "password": "a-long-test-password-42"},
        follow=True,
    )
    assert signed_in.redirect_chain[-1][0] == "/admin/handoffs/handoff/"
    assert client.get("/admin/handoffs/handoff/").status_code == 200


def test_create_bot_key_from_the_shell(transactional_db, client):
    """As scripts use it: ``python manage.py create_bot_key NAME | tail -n 1``."""
    env = {**os.environ, **conftest.test_database_env(), "DJANGO_DEBUG": "1"}
    done = subprocess.run(
        [sys.executable, "manage.py", "create_bot_key", "shell-bot"],
        cwd=conftest.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.endswith("\n")
    key = done.stdout.splitlines()[-1]
    assert key.startswith("dk-")
    assert key == key.strip()
    assert client.get("/v1/sessions", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200


def test_create_bot_key_scope_and_namespaces(db, client):
    lines = create_bot_key("reader", "--scope", "read", "--namespaces", "user-*, acme-?")
    bot = Bot.objects.get(name="reader")
    assert (bot.scope, bot.namespace_patterns) == ("read", ["user-*", "acme-?"])
    key = lines[-1]
    search = {"agent_id": "user-dave", "query": "refund"}
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    assert (
        client.post("/v1/memory/search", search, "application/json", **headers).status_code == 200
    )
    search["agent_id"] = "vip-erin"
    denied = client.post("/v1/memory/search", search, "application/json", **headers)
    assert (denied.status_code, denied.json()["code"]) == (403, "NAMESPACE_ACCESS_DENIED")


def test_create_bot_key_refuses_a_bad_scope_or_pattern(db):
    with pytest.raises(CommandError):
        create_bot_key("x", "--scope", "root")
    with pytest.raises(CommandError, match="namespace pattern"):
        create_bot_key("x", "--namespaces", "user/*")
    assert not Bot.objects.filter(name="x").exists()


def test_rotating_keeps_the_reach_unless_told(db):
    create_bot_key("narrow", "--scope", "read", "--namespaces", "user-*")
    create_bot_key("narrow", "--rotate")
    bot = Bot.objects.get(name="narrow")
    assert (bot.scope, bot.namespaces) == ("read", "user-*")
    create_bot_key("narrow", "--rotate", "--scope", "write", "--namespaces", "")
    bot.refresh_from_db()
    assert (bot.scope, bot.namespaces) == ("write", "")


def test_create_console_user_makes_a_first_admin_who_can_use_the_console(db, client, monkeypatch):
    """The deployment doc's first step: an admin with a console profile (no "No console
    profile" page), who also reaches Django admin."""
    from handoffs.models import Agent, Role, Team

    Team.objects.create(slug="billing", name="Billing")
    monkeypatch.setenv("CONSOLE_USER_PASSWORD", "a-long-enough-password-42")
    out = io.StringIO()
    call_command("create_console_user", "boss", "--role", "admin", "--no-input", stdout=out)
    assert "Created boss (admin; teams: billing, general)." in out.getvalue()  # every team
    agent = Agent.objects.select_related("user").get(user__username="boss")
    assert agent.role == Role.ADMIN and agent.user.is_superuser and agent.user.is_staff
    assert agent.user.check_password("a-long-enough-password-42")
    client.force_login(agent.user)
    page = client.get("/")
    assert page.status_code == 200 and "No console profile" not in page.content.decode()
    assert client.get("/admin/").status_code == 200


def test_create_console_user_with_teams_and_a_weak_password(db, monkeypatch):
    from handoffs.models import Agent, Role

    monkeypatch.setenv("CONSOLE_USER_PASSWORD", "123")
    with pytest.raises(CommandError, match="too short"):
        call_command("create_console_user", "ann", "--no-input")
    monkeypatch.setenv("CONSOLE_USER_PASSWORD", "a-long-enough-password-42")
    call_command("create_console_user", "ann", "--teams", "tech-support,billing", "--no-input")
    agent = Agent.objects.get(user__username="ann")
    assert agent.role == Role.AGENT and not agent.user.is_staff
    assert sorted(agent.teams.values_list("slug", flat=True)) == ["billing", "tech-support"]
    with pytest.raises(CommandError, match="exists"):
        call_command("create_console_user", "ann", "--no-input")


def test_demo_refuses_a_port_something_already_listens_on(db):
    """Daphne that can't listen keeps running, so the demo would seed whatever else answers
    on the port (another ``make run``): it stops first, naming the port and PORT=."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CommandError, match=rf"127.0.0.1:{port} is already in use.*PORT="):
            call_command("demo", "--port", str(port))
    assert not Bot.objects.exists()  # nothing seeded


def test_stopping_the_demo_stops_children_that_ignore_sigint():
    """``make run &`` then ``kill``: a shell starts background jobs with SIGINT ignored and
    the demo's console, bot and worker inherit that, so they are stopped with SIGTERM."""
    import signal
    import time

    from handoffs.management.commands.demo import stop_children

    child = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE) for _ in range(3)
    ]
    for process in processes:
        assert process.stdout.readline() == b"ready\n"
    started = time.monotonic()
    stop_children(processes, timeout=5)
    assert all(p.returncode == -signal.SIGTERM for p in processes)
    assert time.monotonic() - started < 4  # none of them needed the SIGKILL
