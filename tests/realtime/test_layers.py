"""The embedded channel layer keeps the stock layer's contract with a throttled sweep."""

from __future__ import annotations

import asyncio

import pytest
from channels.exceptions import ChannelFull
from django.conf import settings

from handoffs.realtime.layers import EmbeddedChannelLayer


def test_settings_use_it_without_redis():
    assert (
        settings.CHANNEL_LAYERS["default"]["BACKEND"]
        == "handoffs.realtime.layers.EmbeddedChannelLayer"
    )


@pytest.mark.asyncio
async def test_group_send_reaches_every_member_in_order():
    layer = EmbeddedChannelLayer()
    channels = [await layer.new_channel() for _ in range(3)]
    for channel in channels:
        await layer.group_add("queue.team", channel)
    await layer.group_send("queue.team", {"type": "row", "n": 1})
    await layer.group_send("queue.team", {"type": "row", "n": 2})
    for channel in channels:
        assert (await layer.receive(channel))["n"] == 1
        assert (await layer.receive(channel))["n"] == 2
    assert layer.channels == {}  # drained queues are dropped, as in the stock layer


@pytest.mark.asyncio
async def test_members_get_copies():
    layer = EmbeddedChannelLayer()
    a, b = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("g", a)
    await layer.group_add("g", b)
    await layer.group_send("g", {"type": "x", "items": [1]})
    first = await layer.receive(a)
    first["items"].append(2)
    assert (await layer.receive(b))["items"] == [1]


@pytest.mark.asyncio
async def test_full_channel_is_skipped_by_group_send_and_refused_by_send():
    layer = EmbeddedChannelLayer(capacity=2)
    full, free = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("g", full)
    await layer.send(full, {"type": "a"})
    await layer.send(full, {"type": "b"})
    await layer.group_add("g", free)
    await layer.group_send("g", {"type": "c"})  # no error for the full member
    assert (await layer.receive(free))["type"] == "c"
    with pytest.raises(ChannelFull):
        await layer.send(full, {"type": "d"})
    assert [(await layer.receive(full))["type"] for _ in range(2)] == ["a", "b"]


@pytest.mark.asyncio
async def test_expired_messages_are_swept_at_most_once_per_interval():
    layer = EmbeddedChannelLayer(expiry=0, sweep_interval=3600)
    stale, other = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("g", stale)
    await layer.send(stale, {"type": "old"})
    await asyncio.sleep(0.01)
    layer._next_sweep = 0.0  # the first sweep is due
    layer._clean_expired()
    assert stale not in layer.channels
    assert stale not in layer.groups.get("g", {})  # expiry also drops the membership

    await layer.group_add("g", other)
    await layer.send(other, {"type": "old"})
    await asyncio.sleep(0.01)
    layer._clean_expired()  # within the interval: nothing is walked
    assert other in layer.channels
    layer._next_sweep = 0.0
    layer._clean_expired()
    assert other not in layer.channels


@pytest.mark.asyncio
async def test_receive_waits_for_a_later_send():
    layer = EmbeddedChannelLayer()
    channel = await layer.new_channel()
    waiter = asyncio.create_task(layer.receive(channel))
    await asyncio.sleep(0)
    await layer.send(channel, {"type": "late"})
    assert (await asyncio.wait_for(waiter, 1))["type"] == "late"
