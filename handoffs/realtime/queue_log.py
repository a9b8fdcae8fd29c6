"""The queue's change log: a global sequence number bumped for every queue push, and the
ids of the hops each number changed, kept for the last ``KEEP`` changes.

A queue socket's frames carry the number they were sent at; a reconnecting socket says
the last one it saw (``/ws/queue/?after=N``) and gets only the rows changed since
(``desk.snapshots``), or a full snapshot when the change it saw has left the log. The
number also versions the shared queue snapshots: a snapshot rendered at the current
number is reused by every socket that connects before the next change.

Scale-out keeps it in Redis (one pipelined round trip per change); embedded mode in
this process.
"""

from __future__ import annotations

import secrets
import threading
from collections import deque

from django.conf import settings

SEQ_KEY = "queue:seq"
LOG_KEY = "queue:log"
KEEP = 1000

_lock = threading.Lock()
_local_seq = 0
_local_log: deque[tuple[int, int]] = deque(maxlen=KEEP)


def _client():
    from .redis_cache import shared_client

    return shared_client()


_pending_reset = False


def record(handoff_id: int) -> int | None:
    """A hop's queue row changed: the new sequence number (None while Redis is down).

    A change that could not be logged makes the next logged entry a reset (hop id 0):
    every socket reconnecting from before it then gets a full snapshot."""
    global _pending_reset
    try:
        seq = _record(0 if _pending_reset else None)
        if seq is not None:
            _pending_reset = False
        return _record(handoff_id)
    except Exception:  # noqa: BLE001 - Redis down: the broadcast fails too (outage)
        _pending_reset = True
        return None


def flush_pending() -> None:
    """Write a pending reset entry (the heartbeat calls this while Redis is back)."""
    global _pending_reset
    if _pending_reset:
        _record(0)
        _pending_reset = False


def _record(handoff_id: int | None) -> int | None:
    global _local_seq
    if handoff_id is None:
        return None
    if not settings.REDIS_URL:
        with _lock:
            _local_seq += 1
            _local_log.append((_local_seq, handoff_id))
            return _local_seq
    client = _client()
    _start_epoch(client)
    seq = int(client.incr(SEQ_KEY))
    pipe = client.pipeline(transaction=False)
    pipe.zadd(LOG_KEY, {f"{seq}:{handoff_id}": seq})
    pipe.zremrangebyrank(LOG_KEY, 0, -KEEP - 1)
    pipe.execute()
    return seq


def _start_epoch(client) -> None:
    """A Redis that lost the log (restarted empty) starts numbering at a random offset,
    so a number a page kept from before never matches one of the new epoch: it is
    either ahead of the new numbers or behind the new log, and gets a full snapshot."""
    client.set(SEQ_KEY, secrets.randbelow(2**40) + 2**20, nx=True)


def current() -> int:
    if not settings.REDIS_URL:
        return _local_seq
    client = _client()
    value = client.get(SEQ_KEY)
    if value is None:
        _start_epoch(client)
        value = client.get(SEQ_KEY)
    return int(value or 0)


def changed_since(after: int) -> tuple[int, list[int] | None]:
    """(current number, ids of hops changed after ``after``), or None for the ids when
    the log no longer reaches back to ``after`` (or ``after`` is from another epoch,
    such as a Redis that restarted empty)."""
    if not settings.REDIS_URL:
        with _lock:
            now = _local_seq
            entries = list(_local_log)
    else:
        client = _client()
        pipe = client.pipeline(transaction=False)
        pipe.get(SEQ_KEY)
        pipe.zrangebyscore(LOG_KEY, after + 1, "+inf", withscores=True)
        pipe.zrange(LOG_KEY, 0, 0, withscores=True)
        raw_now, raw_entries, oldest = pipe.execute()
        now = int(raw_now or 0)
        entries = [(int(score), int(_text(m).split(":")[1])) for m, score in raw_entries]
        if after < now and (not oldest or int(oldest[0][1]) > after + 1):
            return now, None
    if after > now:
        return now, None
    if not settings.REDIS_URL and after < now:
        first = entries[0][0] if entries else now + 1
        if first > after + 1:
            return now, None
    ids: list[int] = []
    for seq, handoff_id in entries:
        if seq > after and handoff_id not in ids:
            if handoff_id == 0:  # a change went unlogged: the screen must start over
                return now, None
            ids.append(handoff_id)
    return now, ids


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def reset_local() -> None:
    """Tests: an empty log."""
    global _local_seq
    with _lock:
        _local_seq = 0
        _local_log.clear()
