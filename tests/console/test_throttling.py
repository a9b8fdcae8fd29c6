"""Guessing is throttled: passwords (django-axes) and bot API keys (429)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from handoffs.api.keys import bot_create
from tests.memory.test_bad_input import store_body

pytestmark = pytest.mark.pg
PASSWORD = "a-long-test-password-42"


@pytest.fixture
def alice(db, make_agent):
    return make_agent("alice", password=PASSWORD)


def sign_in(client: Client, path: str, password: str, address: str):
    return client.post(path, {"username": "alice", "password": password}, REMOTE_ADDR=address)


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_wrong_passwords_lock_the_user_on_that_address_until_the_cooloff(alice, settings, path):
    settings.AXES_FAILURE_LIMIT = 5
    settings.AXES_COOLOFF_TIME = timedelta(seconds=2)
    if path == "/admin/login/":
        alice.user.is_staff = True
        alice.user.save()
    client = Client()
    for _ in range(4):
        assert sign_in(client, path, "wrong", "10.0.0.1").status_code == 200
    locked = sign_in(client, path, "wrong", "10.0.0.1")
    assert locked.status_code == 429
    assert "Too many sign-in attempts" in locked.content.decode()
    # Locked: even the right password is refused from there, for that user...
    assert sign_in(client, path, PASSWORD, "10.0.0.1").status_code == 429
    # ...but not the same user from another address.
    assert sign_in(Client(), path, PASSWORD, "10.0.0.2").status_code == 302
    time.sleep(2.2)
    assert sign_in(client, path, PASSWORD, "10.0.0.1").status_code == 302


def test_an_admin_unlocks_with_the_command(alice, settings):
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    for _ in range(3):
        sign_in(client, "/accounts/login/", "wrong", "10.0.0.3")
    assert sign_in(client, "/accounts/login/", PASSWORD, "10.0.0.3").status_code == 429
    call_command("axes_reset_username", "alice")
    assert sign_in(client, "/accounts/login/", PASSWORD, "10.0.0.3").status_code == 302


def test_locked_attempts_are_listed_in_admin(alice, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        sign_in(Client(), "/accounts/login/", "wrong", "10.0.0.4")
    admin = Client()
    admin.force_login(get_user_model().objects.create_superuser("root", "r@x.io", PASSWORD))
    page = admin.get("/admin/axes/accessattempt/")
    assert page.status_code == 200
    assert "alice" in page.content.decode()


def store_with(key: str, address: str):
    """``POST /v1/memory/store`` with this bot key from this client address."""
    return Client().post(
        "/v1/memory/store",
        store_body(),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
        REMOTE_ADDR=address,
    )


def test_wrong_bot_keys_from_one_address_get_429_until_the_window_ends(db, teams, settings):
    settings.BOT_AUTH_FAILURE_LIMIT = 5
    settings.BOT_AUTH_FAILURE_WINDOW = 2
    _, key = bot_create(name="tier1-bot")

    def store(with_key: str, address: str = "10.1.0.1"):
        return store_with(with_key, address)

    wrong = key[:15] + "y" * (len(key) - 15)
    for _ in range(5):
        assert store(wrong).status_code == 401
    limited = store(wrong)
    assert limited.status_code == 429
    assert limited.json()["code"] == "RATE_LIMIT_EXCEEDED"
    assert 1 <= int(limited["Retry-After"]) <= 3
    # Locked out: the right key from that address too (no oracle for a guesser).
    assert store(key).status_code == 429
    assert store(key, address="10.1.0.2").status_code == 200
    time.sleep(int(limited["Retry-After"]) + 0.2)
    assert store(key).status_code == 200


def test_key_guessing_stays_throttled_while_the_cache_is_down(db, teams, settings):
    """A Redis cache nobody listens on (a real client, a refused connection): each process
    counts wrong keys itself, so the outage doesn't open the door to guessing."""
    from django.core.cache import caches

    from handoffs.memory import key_guessing

    settings.BOT_AUTH_FAILURE_LIMIT = 5
    settings.BOT_AUTH_FAILURE_WINDOW = 30
    _, key = bot_create(name="tier1-bot")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "OPTIONS": {"socket_connect_timeout": 0.2},
        }
    }
    with pytest.raises(Exception):  # noqa: B017, PT011 - whichever error redis-py raises
        caches["default"].get("x")
    wrong = key[:15] + "z" * (len(key) - 15)
    store = store_with
    try:
        for _ in range(5):
            assert store(wrong, "10.9.0.1").status_code == 401
        assert store(wrong, "10.9.0.1").status_code == 429
        assert store(key, "10.9.0.1").status_code == 429
        assert store(key, "10.9.0.2").status_code == 200  # nobody else is locked out
    finally:
        key_guessing._local.clear()
