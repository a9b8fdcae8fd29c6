"""The embedded channel layer: Channels' in-memory layer without its per-message sweep.

``channels.layers.InMemoryChannelLayer`` runs ``_clean_expired`` (a walk over every
channel's queue and every group membership) on *each* ``receive`` and ``group_send``.
One escalation fanned out to N queue sockets is N receives, so each event costs
O(N²): with 200 agents connected the sweep was a quarter of the console's CPU per
event (py-spy on ``bench.intake_fanout``). Expiry is housekeeping (a message nobody
read for ``expiry`` seconds, a group membership older than ``group_expiry``), so here
it runs at most once per ``sweep_interval`` seconds instead; expired messages can live
up to that much longer. ``group_send`` also enqueues directly instead of creating one
task per member (``send`` never awaits), a queue is built only for a new channel, and
a flat message (strings and numbers only) is copied with ``dict()`` not ``deepcopy``.

Behaviour is otherwise the stock layer's: same capacity (a full channel is skipped by
``group_send`` and raises ``ChannelFull`` from ``send``), same expiry, same groups.
``settings.CHANNEL_LAYERS`` uses it when ``REDIS_URL`` is unset.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from copy import deepcopy
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer
from redis import asyncio as aioredis

_IMMUTABLE = (str, int, float, bool, type(None))


def _copier(message: dict) -> Callable[[dict], dict]:
    """How to give each receiver its own message, as the stock layer's ``deepcopy`` does:
    a flat message of strings and numbers (every event the console broadcasts) needs only
    a new dict, a tenth of ``deepcopy``'s cost. Decided once per message, not per member."""
    if all(isinstance(value, _IMMUTABLE) for value in message.values()):
        return dict
    return deepcopy


class EmbeddedChannelLayer(InMemoryChannelLayer):
    def __init__(self, *args: Any, sweep_interval: float = 1.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sweep_interval = sweep_interval
        self._next_sweep = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.sweep_interval
        super()._clean_expired()

    def _queue(self, channel: str) -> asyncio.Queue:
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        return queue

    def _put(self, channel: str, message: dict) -> None:
        self._queue(channel).put_nowait((time.time() + self.expiry, _copier(message)(message)))

    async def send(self, channel: str, message: dict) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        try:
            self._put(channel, message)
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    async def receive(self, channel: str) -> dict:
        self.require_valid_channel_name(channel)
        self._clean_expired()
        queue = self._queue(channel)
        try:
            _expires, message = await queue.get()
        finally:
            if queue.empty():
                self.channels.pop(channel, None)
        return message

    async def group_send(self, group: str, message: dict) -> None:
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        expires, copy = time.time() + self.expiry, _copier(message)
        for channel in list(self.groups.get(group, ())):
            queue = self._queue(channel)
            if not queue.full():  # as the stock layer: a full member misses this message
                queue.put_nowait((expires, copy(message)))


# ---------------------------------------------------------------- scale-out (Redis)
# Adds channels to groups: KEYS are the groups' keys; ARGV is the score (now), the
# groups' expiry, then for each key the number of its channels and the channels.
_JOIN_LUA = """
local now, expiry, at = ARGV[1], ARGV[2], 3
for i = 1, #KEYS do
    local count = tonumber(ARGV[at])
    for j = at + 1, at + count do
        redis.call('ZADD', KEYS[i], now, ARGV[j])
    end
    redis.call('EXPIRE', KEYS[i], expiry)
    at = at + count + 1
end
return #KEYS
"""


class _Joins:
    """The group joins asked for in one turn of the event loop, sent together."""

    def __init__(self) -> None:
        self.members: dict[str, list[str]] = {}
        self.futures: list[asyncio.Future] = []

    def add(self, groups: list[str], channel: str, future: asyncio.Future) -> None:
        for group in groups:
            self.members.setdefault(group, []).append(channel)
        self.futures.append(future)


class PooledRedisChannelLayer(RedisChannelLayer):
    """channels-redis on a *blocking*, bounded pool per event loop.

    The stock layer builds a plain ``redis.asyncio.ConnectionPool`` that raises
    ``MaxConnectionsError: Too many connections`` once ``max_connections`` are in use:
    2,000 sockets closing at once run 2,000 disconnect handlers, each with its
    ``group_discard`` calls, and hundreds failed (issue 19), leaving dead channels in
    groups and agents "online". Here the pool holds at most ``max_connections``
    (``REDIS_LAYER_POOL_SIZE``) and a caller waits up to ``timeout`` seconds
    (``REDIS_POOL_TIMEOUT``) for a free one, so a burst queues instead of failing, and
    the idle connections a Daphne keeps are bounded by the pool, not by its sockets.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._joins: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._sending: set[asyncio.Task] = set()  # strong references while they run

    async def group_add_many(self, groups: list[str], channel: str) -> None:
        """``group_add`` for several groups, joined with every other socket's joins of
        the same moment: the sockets a batch of connects lets go together (they resume in
        one turn of the event loop) are added to all their groups by one script call per
        shard, one reply to parse (the stock layer makes two round trips per group,
        ``ZADD`` then ``EXPIRE``). A failure (Redis down) is raised to every caller of
        that call."""
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        for group in groups:
            assert self.require_valid_group_name(group), "Group name not valid"
        loop = asyncio.get_running_loop()
        joins = self._joins.get(loop)
        if joins is None:
            # Sent once the callbacks already due in this turn of the loop have run.
            joins = self._joins[loop] = _Joins()
            task = loop.create_task(self._send_joins(loop, joins))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        future = loop.create_future()
        joins.add(groups, channel, future)
        await future

    async def _send_joins(self, loop: asyncio.AbstractEventLoop, joins: _Joins) -> None:
        if self._joins.get(loop) is joins:
            del self._joins[loop]
        by_shard: dict[int, dict[bytes, list[str]]] = {}
        for group, channels in joins.members.items():
            shard = by_shard.setdefault(self.consistent_hash(group), {})
            shard[self._group_key(group)] = channels
        try:
            for index, members in by_shard.items():
                args: list[Any] = [time.time(), self.group_expiry]
                for channels in members.values():
                    args += [len(channels), *channels]
                await self.connection(index).eval(_JOIN_LUA, len(members), *members, *args)
        except Exception as exc:  # noqa: BLE001 - raised to every socket of the call
            for future in joins.futures:
                if not future.done():
                    future.set_exception(exc)
            return
        except asyncio.CancelledError:
            for future in joins.futures:
                future.cancel()
            raise
        for future in joins.futures:
            if not future.done():
                future.set_result(None)

    async def group_discard_many(self, groups: list[str], channel: str) -> None:
        """``group_discard`` for several groups in one round trip per shard."""
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        by_shard: dict[int, list[str]] = {}
        for group in groups:
            assert self.require_valid_group_name(group), "Group name not valid"
            by_shard.setdefault(self.consistent_hash(group), []).append(group)
        for index, names in by_shard.items():
            pipe = self.connection(index).pipeline(transaction=False)
            for group in names:
                pipe.zrem(self._group_key(group), channel)
            await pipe.execute()

    def create_pool(self, index: int) -> Any:
        host = dict(self.hosts[index])
        address = host.pop("address")
        return aioredis.BlockingConnectionPool.from_url(address, **host)
