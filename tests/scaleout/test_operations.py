"""Operating scale-out: a killed Daphne's agents go offline by themselves, the readiness
check follows the channel layer, and a socket opened while Redis is down is refused
with a close code the page understands (4013), logged once per outage.

Real Daphne processes on the PostgreSQL test database, each test with its own
``redis-server`` (stopped and restarted by the test), as in ``test_multiprocess``.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis.asyncio
from asgiref.sync import sync_to_async
from django.db import connections
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from handoffs.models import Agent, Presence
from tests.conftest import ROOT

from .conftest import (
    QueueScreen,
    require_postgresql_and_redis,
    session_cookie,
    ws_url,
)

pytestmark = [
    pytest.mark.pg,
    pytest.mark.scaleout,
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
]

# Short presence timings so the test runs in seconds (the defaults are 5 s / 15 s).
FAST_PRESENCE = {"PRESENCE_HEARTBEAT_SECS": "1", "PRESENCE_TTL_SECS": "3"}


@pytest.fixture(autouse=True, scope="module")
def postgresql_and_redis_only():
    require_postgresql_and_redis()


@pytest.fixture(autouse=True)
def close_sync_thread_connections():
    yield
    asyncio.run(sync_to_async(connections.close_all)())


async def presence_of(agent: Agent) -> str:
    return await sync_to_async(
        lambda: Agent.objects.values_list("presence", flat=True).get(pk=agent.pk)
    )()


async def group_channels(redis_url: str) -> set[bytes]:
    """Every channel in any channel-layer group."""
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        members: set[bytes] = set()
        async for key in client.scan_iter(match="asgi:group:*"):
            members |= set(await client.zrange(key, 0, -1))
        return members
    finally:
        await client.aclose()


def start_worker(server_env: dict[str, str], log: Path) -> subprocess.Popen:
    """``manage.py run_worker`` on the same database and Redis as the Daphnes."""
    handle = open(log, "w")  # noqa: SIM115 - closed with the process by the OS
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_worker", "--poll", "0.2"],
        cwd=ROOT,
        env=server_env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )


async def test_a_killed_daphnes_agents_go_offline_and_leave_their_groups(
    consoles, private_redis, make_agent, teams
):
    """SIGKILL runs no disconnect handler: presence and group membership of that
    process's sockets must expire with its heartbeat (registry + sweep). Seen failing
    before the registry existed: the agent stayed online (the counter was never
    decremented) and the channel stayed in its three groups."""
    env = {**FAST_PRESENCE, "SERVING_TIMERS": "0"}
    (a, b) = consoles.start(2, redis_url=private_redis.url, extra_env=env)
    alice = await sync_to_async(make_agent)("alice", teams=[teams["billing-specialist"]])
    bob = await sync_to_async(make_agent)("bob", teams=[teams["billing-specialist"]])
    on_a = QueueScreen("alice@A", await sync_to_async(session_cookie)(alice), [a]).start()
    on_b = QueueScreen("bob@B", await sync_to_async(session_cookie)(bob), [b]).start()
    worker = start_worker(
        {**a.env, "REDIS_URL": private_redis.url, **env}, ROOT / ".pytest_cache/worker-ops.log"
    )
    try:
        await on_a.wait_for(lambda s: s.snapshots == 1, "the first snapshot")
        await on_b.wait_for(lambda s: s.snapshots == 1, "the first snapshot")
        assert await presence_of(alice) == Presence.ONLINE
        before = await group_channels(private_redis.url)
        assert len(before) == 2  # alice's channel on A, bob's on B

        on_a.servers = [a]  # she closed the laptop: it only retries the dead process
        a.process.send_signal(signal.SIGKILL)
        a.process.wait()
        killed_at = time.monotonic()
        while await presence_of(alice) != Presence.OFFLINE:
            assert time.monotonic() - killed_at < 15, "alice is still shown online"
            await asyncio.sleep(0.1)
        # TTL 3 s + one sweep (1 s) + a pass: well inside 15 s; the default is 15 + 5 s.
        assert time.monotonic() - killed_at < 10
        deadline = time.monotonic() + 5
        while len(after := await group_channels(private_redis.url)) != 1:
            assert time.monotonic() < deadline, f"dead channels still in groups: {after}"
            await asyncio.sleep(0.1)
        assert after < before  # bob's channel stays, alice's is gone
        assert await presence_of(bob) == Presence.ONLINE  # a live process keeps its agents
    finally:
        await on_a.close()
        await on_b.close()
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=15)


async def test_readiness_follows_the_channel_layer(consoles, private_redis):
    (server,) = consoles.start(1, redis_url=private_redis.url)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        ready = await http.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"]["channel_layer"] == "ok"

        private_redis.stop()
        down = await http.get("/health/ready")
        assert down.status_code == 503
        assert down.headers["Retry-After"] == "5"
        body = down.json()
        assert body["status"] == "not_ready"
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["channel_layer"].startswith("error: ")

        private_redis.start()
        deadline = time.monotonic() + 10
        while (await http.get("/health/ready")).status_code != 200:
            assert time.monotonic() < deadline, "not ready again after Redis came back"
            await asyncio.sleep(0.2)


async def open_and_get_close_code(server, cookie: str, path: str = "/ws/queue/") -> int:
    async with connect(
        ws_url(server, path),
        additional_headers={"Cookie": f"sessionid={cookie}", "Origin": server.url},
        open_timeout=10,
        ping_interval=None,
    ) as ws:
        try:
            async for _message in ws:
                pass
        except ConnectionClosed:
            pass
        return ws.close_code


async def test_a_socket_opened_while_redis_is_down_is_refused_with_4013_logged_once(
    consoles, private_redis, make_agent, teams, bot_key
):
    """Was an HTTP 500 on the handshake (the page's extension treats it as a network
    error) and a traceback per failure."""
    (server,) = consoles.start(1, redis_url=private_redis.url)
    log = ROOT / f".pytest_cache/daphne-{server.port}.log"
    agent = await sync_to_async(make_agent)("carol", teams=[teams["billing-specialist"]])
    cookie = await sync_to_async(session_cookie)(agent)

    private_redis.stop()
    codes = [await open_and_get_close_code(server, cookie) for _ in range(3)]
    assert codes == [4013, 4013, 4013]
    # Broadcasts during the outage (an escalation's queue row) fail quietly too.
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await http.post(
            "/v1/memory/store",
            headers={"Authorization": f"Bearer {bot_key}"},
            json={
                "agent_id": "cust-outage",
                "content": "charged twice, wants a refund",
                "importance": 1.0,
                "metadata": {"type": "handoff", "from_agent": "bot", "to_agent": "billing"},
            },
        )
    assert response.status_code == 200  # intake works through the outage
    text = log.read_text()
    assert text.count("channel layer unavailable") == 1, text[-3000:]
    assert "Traceback" not in text, text[-3000:]

    private_redis.start()
    # Back: the same socket opens and gets its snapshot.
    async with connect(
        ws_url(server, "/ws/queue/"),
        additional_headers={"Cookie": f"sessionid={cookie}", "Origin": server.url},
        open_timeout=10,
        ping_interval=None,
    ) as ws:
        first = await asyncio.wait_for(ws.recv(), 10)
        assert 'id="queue-rows"' in first
    assert "channel layer back after" in log.read_text()


async def test_the_floor_connects_as_the_agents_sockets_do(
    consoles, private_redis, make_agent, teams
):
    """The floor socket shares the agents' connect: registered with its groups (so it is
    reaped with a dead process and rejoins them after Redis restarts empty), and refused
    with 4013 while Redis is down (was an HTTP 500)."""
    (server,) = consoles.start(1, redis_url=private_redis.url)
    sue = await sync_to_async(make_agent)("sue", role="supervisor")
    cookie = await sync_to_async(session_cookie)(sue)
    async with connect(
        ws_url(server, "/ws/floor/"),
        additional_headers={"Cookie": f"sessionid={cookie}", "Origin": server.url},
        open_timeout=10,
        ping_interval=None,
    ) as ws:
        first = await asyncio.wait_for(ws.recv(), 10)
        assert 'id="nav-unread"' in first
        client = redis.asyncio.Redis.from_url(private_redis.url)
        try:
            registered = [
                value.decode().split()
                for key in await client.keys("sockets:proc:*")
                for value in (await client.hgetall(key)).values()
            ]
        finally:
            await client.aclose()
        assert registered == [[str(sue.pk), f"user.{sue.user_id}", "floor"]], registered
        assert await presence_of_agent(sue) == Presence.ONLINE

    private_redis.stop()
    assert await open_and_get_close_code(server, cookie, "/ws/floor/") == 4013


async def presence_of_agent(agent: Agent) -> str:
    return await sync_to_async(lambda: Agent.objects.get(pk=agent.pk).presence)()
