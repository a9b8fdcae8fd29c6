"""Shared fixtures: bots with keys, teams and agents, and a live Daphne serving the
console on the test database (SQLite file or PostgreSQL, whichever the run uses)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from console import ports
from handoffs.api.keys import bot_create
from handoffs.models import Agent, Bot, Role, Team

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A free port on loopback: any, or one of ``TEST_PORTS=LOW-HIGH`` when set."""
    return ports.free_port("TEST_PORTS")


def test_database_env() -> dict[str, str]:
    """Environment that points a child process at this run's test database."""
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        user = settings.get("USER") or ""
        auth = f"{user}@" if user else ""
        port = settings.get("PORT") or 5432
        host = settings.get("HOST") or "127.0.0.1"
        return {"DATABASE_URL": f"postgres://{auth}{host}:{port}/{settings['NAME']}"}
    return {"SQLITE_PATH": str(settings["NAME"]), "DATABASE_URL": ""}


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen
    port: int
    env: dict[str, str]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_daphne(
    port: int | None = None,
    extra_env: dict[str, str] | None = None,
    ready: str = "/health/ready",
) -> LiveServer:
    """Start ``daphne console.asgi:application`` on the test database and wait until
    ``ready`` answers 200 (``/health/live`` for a server whose database is away)."""
    port = port or free_port()
    env = {
        **os.environ,
        **test_database_env(),
        "DJANGO_DEBUG": "1",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        **(extra_env or {}),
    }
    (ROOT / ".pytest_cache").mkdir(exist_ok=True)
    log = open(ROOT / f".pytest_cache/daphne-{port}.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "console.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited with {process.returncode}; see {log.name}")
        try:
            if httpx.get(f"{url}{ready}", timeout=1).status_code == 200:
                return LiveServer(url=url, process=process, port=port, env=env)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"daphne did not become ready on {url}; see {log.name}")


LIVE_SERVER_FIXTURES = {"live_console", "live_server_url"}


@pytest.fixture(autouse=True)
def fast_test_settings(request, settings):
    """Test users never need a strong hash (PBKDF2 would dominate the run time), and
    WhiteNoise need not scan every static file each time a test client starts. Memory
    writes are kicked inline (see ``outbox.Kicker``).

    Not for tests whose people sign in to a live Daphne through the login form: that
    process checks passwords with the production hashers.
    """
    settings.WHITENOISE_AUTOREFRESH = True
    # The kicker thread can't see a test's uncommitted rows; live Daphnes use the thread.
    settings.OUTBOX_KICK = "inline"
    live = LIVE_SERVER_FIXTURES & set(request.fixturenames)
    if not live and request.node.get_closest_marker("browser") is None:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def live_console(django_db_setup, django_db_blocker) -> Iterator[LiveServer]:
    """One Daphne for the session, serving the test database. Use with ``transactional_db``."""
    (ROOT / ".pytest_cache").mkdir(exist_ok=True)
    with django_db_blocker.unblock():
        server = start_daphne()
    yield server
    server.stop()


@pytest.fixture
def live_server_url(live_console: LiveServer, transactional_db) -> str:
    return live_console.url


@pytest.fixture
def bot_and_key(db) -> tuple[Bot, str]:
    return bot_create(name="tier1-bot")


@pytest.fixture
def bot_key(bot_and_key) -> str:
    return bot_and_key[1]


@pytest.fixture
def bot(bot_and_key) -> Bot:
    return bot_and_key[0]


@pytest.fixture
def teams(db) -> dict[str, Team]:
    return {
        slug: Team.objects.get_or_create(slug=slug, defaults={"name": name})[0]
        for slug, name in [
            ("billing-specialist", "Billing specialists"),
            ("tech-support", "Technical support"),
        ]
    }


@pytest.fixture
def make_agent(db):
    """Factory: ``make_agent("alice", teams=[...], role=Role.AGENT, capacity=3)``."""

    def make(
        username: str,
        *,
        teams: list[Team] | None = None,
        role: str = Role.AGENT,
        capacity: int = 3,
        password: str = "pw-for-tests-1",
    ) -> Agent:
        user = get_user_model().objects.create_user(
            username=username, password=password, first_name=username.title()
        )
        agent = Agent.objects.create(user=user, role=role, capacity=capacity)
        if teams:
            agent.teams.set(teams)
        return agent

    return make


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, dict]]:
    """Every group_send (the one patched entry point of the broadcast module), with a
    supervisor watching the floor so floor updates are rendered too."""
    from handoffs.realtime import broadcast

    calls: list[tuple[str, dict]] = []
    monkeypatch.setattr(broadcast, "send", lambda group, event: calls.append((group, event)))
    monkeypatch.setattr(broadcast, "floor_watched", lambda delta=0: 1)
    return calls


@pytest.fixture
def fresh_socket_counts():
    """Presence counts sockets (the cache, the embedded socket registry): start (and end) a
    test with zero sockets and an empty queue change log."""
    from django.core.cache import cache

    from handoffs.realtime import queue_log, registry

    cache.clear()
    registry.reset_local()
    queue_log.reset_local()
    yield
    cache.clear()
    registry.reset_local()
