"""Throttle API-key guessing: failed key attempts counted per client address.

A fixed window in the Django cache (shared by every process when ``REDIS_URL`` is set):
the first failure opens a window of ``BOT_AUTH_FAILURE_WINDOW`` seconds; once
``BOT_AUTH_FAILURE_LIMIT`` failures fall in it, every key attempt from that address is
answered 429 until the window ends. A correct key does not reset the count, so a
guesser that also holds one valid key gains nothing.

While the cache (Redis in scale-out mode) is unreachable, each process counts in its own
memory instead (the same window and limit, at most ``LOCAL_MAX`` addresses): guessing
stays throttled through an outage, per process rather than across them.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

PREFIX = "botkey:fail:"
logger = logging.getLogger(__name__)
_warned_at = float("-inf")


LOCAL_MAX = 10_000
_local_lock = threading.Lock()
_local: dict[str, dict[str, float]] = {}  # address -> {"count", "until"}; cache outages only


def _cache_down(exc: Exception) -> None:
    global _warned_at
    if time.monotonic() - _warned_at >= 60:
        _warned_at = time.monotonic()
        logger.warning(
            "key-guessing throttle counts per process while the cache is unavailable: %s", exc
        )


def _local_state(address: str, now: float) -> dict[str, float] | None:
    state = _local.get(address)
    if state is not None and state["until"] <= now:
        del _local[address]
        return None
    return state


def _count_locally(address: str) -> None:
    now = time.time()
    with _local_lock:
        state = _local_state(address, now)
        if state is not None:
            state["count"] += 1
            return
        if len(_local) >= LOCAL_MAX:
            for stale in [a for a, s in _local.items() if s["until"] <= now]:
                del _local[stale]
            while len(_local) >= LOCAL_MAX:  # still full: forget the oldest window
                del _local[next(iter(_local))]
        _local[address] = {"count": 1, "until": now + settings.BOT_AUTH_FAILURE_WINDOW}


def _address(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


def failed(request: HttpRequest) -> None:
    """Count one wrong key from this request's address (skipped while the cache is down)."""
    try:
        _count(request)
    except Exception as exc:  # noqa: BLE001 - a cache outage must not fail the request
        _cache_down(exc)
        _count_locally(_address(request))


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

    While the cache (Redis in scale-out mode) is unreachable this process's own count
    decides (see the module's docstring); the API keeps answering everyone else.
    """
    try:
        state = cache.get(PREFIX + _address(request))
    except Exception as exc:  # noqa: BLE001 - the cache is down: count here instead
        _cache_down(exc)
        with _local_lock:
            state = _local_state(_address(request), time.time())
            state = dict(state) if state else None
    if state is None or state["count"] < settings.BOT_AUTH_FAILURE_LIMIT:
        return 0
    return max(1, int(state["until"] - time.time()) + 1)
