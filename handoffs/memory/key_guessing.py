"""Throttle API-key guessing: failed key attempts counted per client address.

A fixed window in the Django cache (shared by every process when ``REDIS_URL`` is set):
the first failure opens a window of ``BOT_AUTH_FAILURE_WINDOW`` seconds; once
``BOT_AUTH_FAILURE_LIMIT`` failures fall in it, every key attempt from that address is
answered 429 until the window ends. A correct key does not reset the count, so a
guesser that also holds one valid key gains nothing.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

PREFIX = "botkey:fail:"


def _address(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


def failed(request: HttpRequest) -> None:
    """Count one wrong key from this request's address."""
    key = PREFIX + _address(request)
    window = settings.BOT_AUTH_FAILURE_WINDOW
    if cache.add(key, {"count": 1, "until": time.time() + window}, window):
        return
    state = cache.get(key)
    if state is None:
        cache.add(key, {"count": 1, "until": time.time() + window}, window)
        return
    state["count"] += 1
    cache.set(key, state, max(1, int(state["until"] - time.time()) + 1))


def locked_for(request: HttpRequest) -> int:
    """Seconds this address must wait before trying a key again (0: not locked)."""
    state = cache.get(PREFIX + _address(request))
    if state is None or state["count"] < settings.BOT_AUTH_FAILURE_LIMIT:
        return 0
    return max(1, int(state["until"] - time.time()) + 1)
