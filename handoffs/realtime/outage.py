"""One log line per channel-layer outage, not a traceback per broadcast or socket.

While Redis is down every broadcast and every socket connect fails the same way; the
first failure logs a warning (what failed and why), later ones are counted silently,
and the first success afterwards logs how long it lasted and how many calls failed.
``/metrics`` exposes the count (``console_realtime_failures_total``).
"""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger("handoffs.realtime")

_lock = threading.Lock()
_down_since: float | None = None
_failed_during = 0
failures_total = 0


def failed(what: str, exc: BaseException) -> None:
    """Record a failed channel-layer (or registry) call; logs only the outage's first."""
    global _down_since, _failed_during, failures_total
    with _lock:
        failures_total += 1
        _failed_during += 1
        first = _down_since is None
        if first:
            _down_since = time.monotonic()
    if first:
        logger.warning(
            "channel layer unavailable (%s: %s: %s); live updates pause, clients reconnect "
            "and re-sync once it is back (logged once per outage)",
            what,
            exc.__class__.__name__,
            exc,
        )


def succeeded() -> None:
    """A call worked: ends the outage (logging its length) if there was one."""
    global _down_since, _failed_during
    if _down_since is None:
        return
    with _lock:
        if _down_since is None:
            return
        lasted, count = time.monotonic() - _down_since, _failed_during
        _down_since, _failed_during = None, 0
    logger.warning("channel layer back after %.1f s (%d calls failed meanwhile)", lasted, count)


def is_down() -> bool:
    return _down_since is not None
