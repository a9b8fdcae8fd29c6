"""Embedded mode's timers in the serving process (``SERVING_TIMERS``): the loop runs on
the server's event loop and its broadcasts reach that process's in-memory channel layer,
which a separate ``run_worker`` process can't (issue 19: breaches never appeared live)."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer

from handoffs.realtime import background, broadcast

pytestmark = pytest.mark.asyncio


async def test_a_task_of_the_serving_loop_reaches_this_process_sockets():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("floor", channel)
    calls = []

    def timer_task() -> None:  # what timers.run_due does when an alert fires
        calls.append(1)
        broadcast.send("floor", {"type": "floor.update", "html": "<p>breach</p>"})

    async def app(scope, receive, send):
        return None

    served = background.ServingTimers(app, [timer_task], interval=0.05)
    await served({"type": "http"}, None, None)  # the first request starts the loop
    try:
        message = await asyncio.wait_for(layer.receive(channel), 5)
        assert message == {"type": "floor.update", "html": "<p>breach</p>"}
        assert calls
    finally:
        served.task.cancel()
        await layer.group_discard("floor", channel)


async def test_a_failing_task_is_logged_once_and_the_others_still_run(caplog):
    ran = []

    def broken() -> None:
        raise RuntimeError("boom")

    def fine() -> None:
        ran.append(1)

    async def app(scope, receive, send):
        return None

    served = background.ServingTimers(app, [broken, fine], interval=0.02)
    await served({"type": "http"}, None, None)
    try:
        for _ in range(200):
            if len(ran) >= 3:
                break
            await asyncio.sleep(0.02)
    finally:
        served.task.cancel()
    assert len(ran) >= 3
    assert caplog.text.count("background task broken failed") == 1
