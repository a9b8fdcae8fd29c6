"""Which sockets are open, per serving process, so presence and group membership survive
a process that dies without running its disconnect handlers (SIGKILL, OOM, SIGTERM under
Daphne, a consumer killed by a channel-layer error).

Scale-out (Redis) keeps, for each process ``P`` (``PROCESS_ID``):

- ``sockets:alive:P``: set with a TTL of ``PRESENCE_TTL_SECS``, renewed every
  ``PRESENCE_HEARTBEAT_SECS`` by a thread of that process (``heartbeat``);
- ``sockets:proc:P``: a hash channel name -> ``"<agent id> <group> <group> ..."``;
- ``sockets:agent:<agent id>``: a hash ``P`` -> that agent's open sockets on ``P``;
- ``sockets:procs``: the set of processes that registered a socket;
- ``sockets:orphans``: channel -> groups whose ``group_discard`` failed at disconnect.

An agent has a socket iff a *live* process counts one for them. ``reap`` (run by the
presence sweep, in the worker or the serving process) removes dead processes' entries
and discards their channels (and orphans) from every group they had joined; the sweep
then marks agents with no live socket offline. Embedded mode (one process) keeps the
same figures in memory.

Every function here is synchronous (called from the consumers' database threads and from
the worker); Redis round trips are pipelined: one per batch of connects
(``opened_many``), three per batch of disconnects (``closed_many``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections import Counter
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings

logger = logging.getLogger(__name__)

PROCESS_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

PROCS = "sockets:procs"
ORPHANS = "sockets:orphans"


def _alive_key(process: str) -> str:
    return f"sockets:alive:{process}"


def _proc_key(process: str) -> str:
    return f"sockets:proc:{process}"


def _agent_key(agent_id: int) -> str:
    return f"sockets:agent:{agent_id}"


_client_lock = threading.Lock()


def redis_client() -> Any:
    """The process's sync Redis client on the cache's shared, bounded pool."""
    from .redis_cache import shared_client

    return shared_client()


def scale_out() -> bool:
    return bool(settings.REDIS_URL)


# ---------------------------------------------------------------- embedded (one process)
class _Local:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.channels: dict[str, tuple[int, list[str]]] = {}
        self.per_agent: Counter[int] = Counter()


_local = _Local()


# ---------------------------------------------------------------- this process
_beating = threading.Event()


EPOCH = "sockets:epoch"
BEAT_SECS = 1.0
# This process's sockets (scale-out too): resynced when Redis comes back without its data.
_here: dict[str, tuple[int, list[str]]] = {}
_here_lock = threading.Lock()
_loop: Any = None
_known_epoch: str | None = None


def attach_loop(loop: Any) -> None:
    """The serving event loop (from a consumer), where resync messages are sent from."""
    global _loop
    _loop = loop


def heartbeat_once() -> bool:
    """Renew this process's key; returns True when Redis lost its data since the last
    beat (a restart without persistence): then every socket of this process has lost its
    groups and registry entries, and is told to resync (``socket.resync``)."""
    global _known_epoch
    from . import queue_log

    client = redis_client()
    pipe = client.pipeline(transaction=False)
    pipe.set(_alive_key(PROCESS_ID), "1", ex=max(int(settings.PRESENCE_TTL_SECS), 1))
    pipe.set(EPOCH, uuid.uuid4().hex, nx=True)
    pipe.get(EPOCH)
    epoch = _text(pipe.execute()[-1])
    queue_log.flush_pending()
    lost = _known_epoch is not None and epoch != _known_epoch
    _known_epoch = epoch
    if lost:
        resync_all()
    return lost


def resync_all() -> int:
    """Tell every socket of this process to rejoin its groups, re-register and re-send
    its snapshot (the consumers' ``socket_resync``); returns how many were told."""
    from channels.layers import get_channel_layer

    with _here_lock:
        channels = list(_here)
    layer, loop = get_channel_layer(), _loop
    if not channels or layer is None or loop is None:
        return 0

    async def tell() -> None:
        for channel in channels:
            with contextlib.suppress(Exception):  # a socket closing meanwhile
                await layer.send(channel, {"type": "socket.resync"})

    import asyncio

    asyncio.run_coroutine_threadsafe(tell(), loop)
    logger.warning(
        "Redis lost its data (restarted): %d sockets of this process rejoin their groups "
        "and re-send their snapshots",
        len(channels),
    )
    return len(channels)


def _beat_forever() -> None:
    failing = False
    while True:
        try:
            heartbeat_once()
            if failing:
                logger.warning("presence heartbeat: Redis answers again")
            failing = False
        except Exception as exc:  # noqa: BLE001 - logged once per outage, retried
            if not failing:
                logger.warning("presence heartbeat: Redis unavailable (%s); retrying", exc)
            failing = True
        # Every second: a restart of Redis is noticed within a second of it answering
        # again, and a change this process could not log meanwhile is flushed (queue_log).
        time.sleep(BEAT_SECS)


def ensure_heartbeat() -> None:
    """Start this process's heartbeat thread (once; scale-out only)."""
    if not scale_out() or _beating.is_set():
        return
    with _client_lock:
        if _beating.is_set():
            return
        _beating.set()
    threading.Thread(target=_beat_forever, name="presence-heartbeat", daemon=True).start()


def opened(channel: str, agent_id: int, groups: list[str]) -> int:
    """Register one socket; returns the agent's open sockets in this process."""
    return opened_many([(channel, agent_id, groups)])[0]


def opened_many(sockets: list[tuple[str, int, list[str]]]) -> list[int]:
    """Register sockets ``(channel, agent id, groups)`` (one Redis round trip); returns
    each one's agent's open sockets in this process, counting those before it."""
    if not sockets:
        return []
    if not scale_out():
        counts = []
        with _local.lock:
            for channel, agent_id, groups in sockets:
                _local.channels[channel] = (agent_id, list(groups))
                _local.per_agent[agent_id] += 1
                counts.append(_local.per_agent[agent_id])
        return counts
    ensure_heartbeat()
    with _here_lock:
        for channel, agent_id, groups in sockets:
            _here[channel] = (agent_id, list(groups))
    pipe = redis_client().pipeline(transaction=False)
    pipe.set(_alive_key(PROCESS_ID), "1", ex=max(int(settings.PRESENCE_TTL_SECS), 1))
    pipe.sadd(PROCS, PROCESS_ID)
    pipe.hset(
        _proc_key(PROCESS_ID),
        mapping={
            channel: " ".join([str(agent_id), *groups]) for channel, agent_id, groups in sockets
        },
    )
    for _channel, agent_id, _groups in sockets:
        pipe.hincrby(_agent_key(agent_id), PROCESS_ID, 1)
    return [int(n) for n in pipe.execute()[3:]]


def regrouped(channel: str, agent_id: int, groups: list[str]) -> None:
    """A socket moved to other groups (its rights changed)."""
    if not scale_out():
        with _local.lock:
            if channel in _local.channels:
                _local.channels[channel] = (agent_id, list(groups))
        return
    with _here_lock:
        if channel in _here:
            _here[channel] = (agent_id, list(groups))
    redis_client().hset(_proc_key(PROCESS_ID), channel, " ".join([str(agent_id), *groups]))


def closed(channel: str, agent_id: int, *, orphan_groups: list[str] = ()) -> int:
    """Unregister one socket; returns the agent's open sockets left in *live* processes.

    ``orphan_groups``: groups this channel could not be discarded from (the channel
    layer failed); the sweep discards it from them later."""
    if not scale_out():
        with _local.lock:
            if _local.channels.pop(channel, None) is not None:
                _local.per_agent[agent_id] -= 1
            left = _local.per_agent[agent_id]
            if left <= 0:
                _local.per_agent.pop(agent_id, None)
            return max(left, 0)
    with _here_lock:
        _here.pop(channel, None)
    client = redis_client()
    pipe = client.pipeline(transaction=False)
    pipe.hdel(_proc_key(PROCESS_ID), channel)
    pipe.hincrby(_agent_key(agent_id), PROCESS_ID, -1)
    if orphan_groups:
        pipe.hset(ORPHANS, channel, " ".join(orphan_groups))
    removed, left_here = pipe.execute()[:2]
    if not removed:  # already reaped (this process was taken for dead): count nothing
        client.hincrby(_agent_key(agent_id), PROCESS_ID, 1)
    if int(left_here) <= 0:
        client.hdel(_agent_key(agent_id), PROCESS_ID)
    return live_counts([agent_id]).get(agent_id, 0)


def closed_many(sockets: list[tuple[str, int, list[str]]]) -> dict[int, int]:
    """``closed`` for several sockets ``(channel, agent id, orphan groups)`` in three
    Redis round trips; returns the open sockets left, in live processes, per agent."""
    if not sockets:
        return {}
    if not scale_out():
        return {
            agent_id: closed(channel, agent_id, orphan_groups=orphans)
            for channel, agent_id, orphans in sockets
        }
    with _here_lock:
        for channel, _agent_id, _orphans in sockets:
            _here.pop(channel, None)
    client = redis_client()
    pipe = client.pipeline(transaction=False)
    for channel, agent_id, orphans in sockets:
        pipe.hdel(_proc_key(PROCESS_ID), channel)
        pipe.hincrby(_agent_key(agent_id), PROCESS_ID, -1)
        if orphans:
            pipe.hset(ORPHANS, channel, " ".join(orphans))
    results = iter(pipe.execute())
    fix = client.pipeline(transaction=False)
    for _channel, agent_id, orphans in sockets:
        removed, left_here = next(results), next(results)
        if orphans:
            next(results)
        if not removed:  # already reaped (this process was taken for dead): count nothing
            fix.hincrby(_agent_key(agent_id), PROCESS_ID, 1)
            left_here = int(left_here) + 1
        if int(left_here) <= 0:
            fix.hdel(_agent_key(agent_id), PROCESS_ID)
    if len(fix):
        fix.execute()
    return live_counts(sorted({agent_id for _c, agent_id, _o in sockets}))


def live_counts(agent_ids: list[int]) -> dict[int, int]:
    """Open sockets per agent, over every live process."""
    if not agent_ids:
        return {}
    if not scale_out():
        with _local.lock:
            return {pk: _local.per_agent.get(pk, 0) for pk in agent_ids}
    client = redis_client()
    pipe = client.pipeline(transaction=False)
    for pk in agent_ids:
        pipe.hgetall(_agent_key(pk))
    per_agent = pipe.execute()
    processes = sorted({p for counts in per_agent for p in counts})
    alive = dict(
        zip(processes, client.mget([_alive_key(_text(p)) for p in processes]) or [], strict=False)
    )
    result = {}
    for pk, counts in zip(agent_ids, per_agent, strict=False):
        result[pk] = sum(max(int(n), 0) for p, n in counts.items() if alive.get(p) is not None)
    return result


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def open_sockets_per_process() -> dict[str, int]:
    """Registered sockets per live process (``/metrics``)."""
    if not scale_out():
        with _local.lock:
            return {PROCESS_ID: len(_local.channels)}
    client = redis_client()
    processes = [_text(p) for p in client.smembers(PROCS)]
    if not processes:
        return {}
    alive = client.mget([_alive_key(p) for p in processes])
    pipe = client.pipeline(transaction=False)
    live = [p for p, a in zip(processes, alive, strict=False) if a is not None]
    for process in live:
        pipe.hlen(_proc_key(process))
    return dict(zip(live, (int(n) for n in pipe.execute()), strict=False))


# ---------------------------------------------------------------- the sweep's part
def _discard(pairs: list[tuple[str, list[str]]]) -> int:
    """Discard each channel from its groups, through the channel layer."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None or not pairs:
        return 0

    async def run() -> int:
        done = 0
        for channel, groups in pairs:
            for group in groups:
                await layer.group_discard(group, channel)
                done += 1
        return done

    return async_to_sync(run)()


def reap() -> dict[str, int]:
    """Remove dead processes' sockets (groups and counts) and retry orphans' discards.

    Safe in several processes at once: a dead process is reaped by whoever takes its
    lock. Returns what was done (for logs and tests)."""
    if not scale_out():
        return {"processes": 0, "channels": 0}
    client = redis_client()
    reaped_processes = reaped_channels = 0
    processes = [_text(p) for p in client.smembers(PROCS)]
    alive = client.mget([_alive_key(p) for p in processes]) if processes else []
    for process, beat in zip(processes, alive, strict=False):
        if beat is not None:
            continue
        if not client.set(f"sockets:reaping:{process}", PROCESS_ID, nx=True, ex=60):
            continue
        entries = client.hgetall(_proc_key(process))
        pairs: list[tuple[str, list[str]]] = []
        agents: set[str] = set()
        for channel, value in entries.items():
            agent_id, *groups = _text(value).split()
            pairs.append((_text(channel), groups))
            agents.add(agent_id)
        _discard(pairs)
        pipe = client.pipeline(transaction=False)
        for agent_id in agents:
            pipe.hdel(_agent_key(int(agent_id)), process)
        pipe.delete(_proc_key(process))
        pipe.srem(PROCS, process)
        pipe.execute()
        reaped_processes += 1
        reaped_channels += len(pairs)
        logger.warning(
            "process %s stopped heartbeating: %d sockets removed from presence and groups",
            process,
            len(pairs),
        )
    orphans = client.hgetall(ORPHANS)
    if orphans:
        pairs = [(_text(c), _text(g).split()) for c, g in orphans.items()]
        _discard(pairs)
        client.hdel(ORPHANS, *orphans.keys())
        reaped_channels += len(pairs)
    return {"processes": reaped_processes, "channels": reaped_channels}


def local_snapshot() -> dict[int, int]:
    """Embedded mode: open sockets per agent in this process."""
    with _local.lock:
        return dict(_local.per_agent)


def reset_local() -> None:
    """Tests: forget this process's embedded registry, its sockets and the Redis epoch it
    knew (a test that clears the cache, Redis included, is not a Redis restart)."""
    global _known_epoch
    with _local.lock:
        _local.channels.clear()
        _local.per_agent.clear()
    with _here_lock:
        _here.clear()
    _known_epoch = None


__all__ = [
    "PROCESS_ID",
    "closed",
    "closed_many",
    "ensure_heartbeat",
    "live_counts",
    "open_sockets_per_process",
    "opened",
    "opened_many",
    "reap",
    "regrouped",
]
