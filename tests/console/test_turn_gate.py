"""``TurnGate`` (console/api_handler.py): bot calls take turns on the kept threads, and a
call that runs past ``API_SPILL_MS`` lets the next one start beside it."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from django.core.handlers.asgi import ASGIHandler

from console.api_handler import ApiASGIHandler, SplitHttp, TurnGate

pytestmark = pytest.mark.asyncio


async def _started(gate: TurnGate, log: list, name: str) -> int:
    index = await gate.enter()
    log.append((name, index))
    return index


async def test_with_a_spill_time_calls_run_one_at_a_time_in_arrival_order():
    gate = TurnGate(2, spill_after=10.0)
    log: list = []
    first = await _started(gate, log, "a")
    waiters = [asyncio.create_task(_started(gate, log, name)) for name in "bcd"]
    await asyncio.sleep(0.05)
    assert log == [("a", 0)]  # the second thread stays idle while "a" runs

    gate.leave(first)
    await asyncio.sleep(0.01)
    assert log == [("a", 0), ("b", 0)]
    gate.leave(await waiters[0])
    await asyncio.sleep(0.01)
    gate.leave(await waiters[1])
    gate.leave(await waiters[2])
    assert [name for name, _ in log] == ["a", "b", "c", "d"]
    assert gate.free == [0, 1] and not gate.started and not gate.waiting


async def test_a_call_that_runs_past_the_spill_time_lets_the_next_start_beside_it():
    gate = TurnGate(2, spill_after=0.1)
    log: list = []
    slow = await _started(gate, log, "slow")
    began = time.monotonic()
    second = asyncio.create_task(_started(gate, log, "next"))
    third = asyncio.create_task(_started(gate, log, "third"))
    index = await asyncio.wait_for(second, timeout=2)
    waited = time.monotonic() - began
    assert (slow, index) == (0, 1)
    assert 0.09 <= waited < 1.0
    # Both threads busy: the third waits for one of them, however long they run.
    await asyncio.sleep(0.25)
    assert not third.done()
    gate.leave(index)
    assert await asyncio.wait_for(third, timeout=2) == 1
    gate.leave(1)
    gate.leave(slow)
    assert gate.free == [0, 1]


async def test_without_a_spill_time_every_free_thread_starts_at_once():
    gate = TurnGate(3, spill_after=None)
    indexes = [await asyncio.wait_for(gate.enter(), timeout=1) for _ in range(3)]
    assert indexes == [0, 1, 2]
    fourth = asyncio.create_task(gate.enter())
    await asyncio.sleep(0.02)
    assert not fourth.done()
    gate.leave(1)
    assert await asyncio.wait_for(fourth, timeout=1) == 1


async def test_a_caller_cancelled_while_waiting_gives_up_its_turn_and_no_thread_is_lost():
    gate = TurnGate(1, spill_after=10.0)
    held = await gate.enter()
    gone = asyncio.create_task(gate.enter())
    after = asyncio.create_task(gate.enter())
    await asyncio.sleep(0.01)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    gate.leave(held)
    assert await asyncio.wait_for(after, timeout=1) == 0

    # Cancelled just as its turn came: the thread goes back.
    late = asyncio.create_task(gate.enter())
    await asyncio.sleep(0.01)
    gate.leave(0)
    late.cancel()
    with pytest.raises(asyncio.CancelledError):
        await late
    await asyncio.sleep(0.01)
    assert gate.free == [0] and not gate.started and not gate.waiting
    assert await asyncio.wait_for(gate.enter(), timeout=1) == 0


def _slow_when_asked(api: ApiASGIHandler, seconds: float) -> None:
    """The API's synchronous part sleeps first for ``/health/live?slow=1``."""
    respond = api._respond

    def slow(scope, body_file):
        if b"slow=1" in scope.get("query_string", b""):
            time.sleep(seconds)
        return respond(scope, body_file)

    api._respond = slow


async def _race(api: ApiASGIHandler) -> list[str]:
    done: list[str] = []
    app = SplitHttp(ASGIHandler(), api)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:

        async def get(name: str, query: str) -> None:
            response = await http.get(f"/health/live{query}")
            assert response.status_code == 200
            done.append(name)

        slow = asyncio.create_task(get("slow", "?slow=1"))
        await asyncio.sleep(0.05)  # the slow call has its turn
        await asyncio.gather(get("quick", ""), slow)
    return done


@pytest.mark.django_db(transaction=True)
async def test_through_the_handler_a_slow_call_holds_the_others_up_for_the_spill_time_only():
    spilling = ApiASGIHandler(threads=2, spill_ms=100)
    _slow_when_asked(spilling, 1.0)
    assert await _race(spilling) == ["quick", "slow"]

    # The same race with one thread: the quick call waits for the slow one.
    alone = ApiASGIHandler(threads=1, spill_ms=100)
    _slow_when_asked(alone, 0.5)
    assert await _race(alone) == ["slow", "quick"]
