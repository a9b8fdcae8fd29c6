"""Throttle API-key guessing: failed key attempts counted per client address.

A fixed window in the Django cache (shared by every process when ``REDIS_URL`` is set):
the first failure opens a window of ``BOT_AUTH_FAILURE_WINDOW`` seconds; once
``BOT_AUTH_FAILURE_LIMIT`` failures fall in it, every key attempt from that address is
answered 429 until the window ends. A correct key does not reset the count, so a
guesser that also holds one valid key gains nothing.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

PREFIX = "botkey:fail:"
logger = logging.getLogger(__name__)
_warned_at = float("-inf")


def _cache_down(exc: Exception) -> None:
    global _warned_at
    if time.monotonic() - _warned_at >= 60:
        _warned_at = time.monotonic()
        logger.warning("key-guessing throttle off while the cache is unavailable: %s", exc)


def _address(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


def failed(request: HttpRequest) -> None:
    """Count one wrong key from this request's address (skipped while the cache is down)."""
    try:
        _count(request)
    except Exception as exc:  # noqa: BLE001 - a cache outage must not fail the request
        _cache_down(exc)


def _count(request: HttpRequest) -> None:
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
    """Seconds this address must wait before trying a key again (0: not locked).

    While the cache (Redis in scale-out mode) is unreachable nobody is locked: the
    API keeps answering, as intake must while the channel layer is down.
    """
    try:
        state = cache.get(PREFIX + _address(request))
    except Exception as exc:  # noqa: BLE001 - fail open, see above
        _cache_down(exc)
        return 0
    if state is None or state["count"] < settings.BOT_AUTH_FAILURE_LIMIT:
        return 0
    return max(1, int(state["until"] - time.time()) + 1)
