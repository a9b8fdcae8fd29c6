"""Group joins of sockets connecting together go to Redis as one script call
(``PooledRedisChannelLayer.group_add_many``), and each socket still ends up in exactly
its own groups, or sees the failure."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis
from django.conf import settings

from handoffs.realtime.layers import PooledRedisChannelLayer
from tests.conftest import free_port

from .conftest import require_postgresql_and_redis

pytestmark = [pytest.mark.pg, pytest.mark.scaleout]


def _layer(address: str) -> tuple[PooledRedisChannelLayer, list[int]]:
    """A layer of its own (a prefix no other test uses) that counts its script calls."""
    layer = PooledRedisChannelLayer(
        hosts=[{"address": address, "socket_connect_timeout": 2}],
        prefix=f"joins-{uuid.uuid4().hex[:8]}",
    )
    calls: list[int] = []
    connection = layer.connection

    def counting(index):
        client = connection(index)
        if getattr(client, "counted", False):
            return client
        client.counted, original = True, client.eval

        async def eval_(*args, **kwargs):
            calls.append(args[1])  # the number of keys
            return await original(*args, **kwargs)

        client.eval = eval_
        return client

    layer.connection = counting
    return layer, calls


@pytest.mark.asyncio
async def test_joins_of_one_turn_go_in_one_call_and_each_socket_is_in_its_own_groups():
    require_postgresql_and_redis()
    layer, calls = _layer(settings.REDIS_URL)
    wanted = {
        "specific.a!1": ["team.billing", "user.1"],
        "specific.a!2": ["team.billing", "user.2", "supervisors"],
        "specific.a!3": ["user.3"],
    }
    await asyncio.gather(*(layer.group_add_many(g, ch) for ch, g in wanted.items()))
    assert calls == [5]  # one call, every distinct group once

    check = redis.Redis.from_url(settings.REDIS_URL)
    try:
        for group in ("team.billing", "user.1", "user.2", "user.3", "supervisors"):
            key = layer._group_key(group)
            members = {m.decode() for m in check.zrange(key, 0, -1)}
            assert members == {ch for ch, groups in wanted.items() if group in groups}
            assert 0 < check.ttl(key) <= layer.group_expiry
        # A later turn is a call of its own.
        await layer.group_add_many(["user.4"], "specific.a!4")
        assert calls == [5, 1]
        assert check.zrange(layer._group_key("user.4"), 0, -1) == [b"specific.a!4"]
    finally:
        check.delete(*check.keys(f"{layer.prefix}:*"))
        check.close()
        await layer.close_pools()


@pytest.mark.asyncio
async def test_a_failed_call_fails_every_socket_of_it_and_a_cancelled_one_alone():
    require_postgresql_and_redis()
    port = free_port()  # nothing listens there: Redis is "down"
    layer, _calls = _layer(f"redis://127.0.0.1:{port}/0")
    results = await asyncio.gather(
        *(layer.group_add_many(["team.x", f"user.{n}"], f"specific.b!{n}") for n in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(r, redis.exceptions.ConnectionError) for r in results), results

    up, _calls = _layer(settings.REDIS_URL)
    try:
        first = asyncio.ensure_future(up.group_add_many(["team.y"], "specific.c!1"))
        second = asyncio.ensure_future(up.group_add_many(["team.y"], "specific.c!2"))
        await asyncio.sleep(0)  # both asked in the same turn
        first.cancel()
        await second
        assert first.cancelled()
    finally:
        check = redis.Redis.from_url(settings.REDIS_URL)
        check.delete(*check.keys(f"{up.prefix}:*"))
        check.close()
        await up.close_pools()
