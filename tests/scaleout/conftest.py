"""Scale-out fixtures: several Daphne processes on the PostgreSQL test database sharing a
Redis channel layer, a private Redis that a test may stop and restart, and an agent's
queue screen kept the way the htmx ws extension keeps it (one socket, reconnecting)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.test import Client
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, WebSocketException

from handoffs.models import Agent, Handoff
from tests.conftest import ROOT, LiveServer, free_port, start_daphne

ROW = re.compile(r'<article class="qrow[^"]*" id="handoff-(\d+)"')
GONE = re.compile(r'<article id="handoff-(\d+)" hx-swap-oob="delete"')
CSRF = re.compile(r'"X-CSRFToken": "([^"]+)"')


def require_postgresql_and_redis() -> None:
    """These tests only mean something on the real services (the second ``make test`` pass)."""
    problems = []
    if connection.vendor != "postgresql":
        problems.append(f"the database is {connection.vendor}, not PostgreSQL (set DATABASE_URL)")
    if not settings.REDIS_URL:
        problems.append("REDIS_URL is empty (the channel layer would be in-memory)")
    if problems:
        pytest.fail(
            "tests/scaleout need PostgreSQL and Redis: "
            + "; ".join(problems)
            + ". Run them as `make test` does: DATABASE_URL=postgres://root@127.0.0.1:5432/"
            "postgres REDIS_URL=redis://127.0.0.1:6379/15 pytest -m pg tests/scaleout",
            pytrace=False,
        )


# ---------------------------------------------------------------- processes
def stop_all(servers: list[LiveServer], grace: float = 3.0) -> None:
    """Stop Daphnes together. One whose shutdown hangs is killed after ``grace`` seconds:
    a socket's disconnect handler still broadcasting when SIGTERM lands waits forever on
    the stopped event loop (async_to_sync), a Daphne shutdown race, not these tests'."""
    for server in servers:
        if server.process.poll() is None:
            server.process.terminate()
    deadline = time.monotonic() + grace
    for server in servers:
        try:
            server.process.wait(timeout=max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


class Consoles:
    """Starts Daphnes on the test database (several at once) and stops them all at the end."""

    def __init__(self, django_db_blocker) -> None:
        self.blocker = django_db_blocker
        self.started: list[LiveServer] = []

    def start(
        self,
        count: int = 1,
        *,
        redis_url: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> list[LiveServer]:
        extra = {
            "DATABASE_POOL_MAX_SIZE": "16",  # pooled, as in production (tests/env.py)
            **({"REDIS_URL": redis_url} if redis_url else {}),
            **(extra_env or {}),
        }
        (ROOT / ".pytest_cache").mkdir(exist_ok=True)  # start_daphne logs there
        with self.blocker.unblock(), ThreadPoolExecutor(count) as pool:
            futures = [pool.submit(start_daphne, extra_env=extra) for _ in range(count)]
        servers = [future.result() for future in futures if future.exception() is None]
        self.started.extend(servers)  # stopped at the end even if another failed to start
        for future in futures:
            if future.exception() is not None:
                raise future.exception()
        return servers

    def stop(self) -> None:
        stop_all(self.started)


@pytest.fixture(scope="module")
def _module_consoles(django_db_setup, django_db_blocker) -> Iterator[Consoles]:
    require_postgresql_and_redis()
    consoles = Consoles(django_db_blocker)
    yield consoles
    consoles.stop()


@pytest.fixture
def pair(_module_consoles: Consoles, module_redis) -> tuple[LiveServer, LiveServer]:
    """Daphne A and Daphne B sharing a Redis layer and cache, kept for the module's tests
    (one that a test killed is replaced). A test must leave them idle, every socket
    closed and its disconnect handled, or their writes race the flush between tests."""
    consoles = _module_consoles
    consoles.started = [s for s in consoles.started if s.process.poll() is None]
    if len(consoles.started) < 2:
        consoles.start(2 - len(consoles.started), redis_url=module_redis.url)
    a, b = consoles.started
    return a, b


@pytest.fixture
def consoles(django_db_setup, django_db_blocker) -> Iterator[Consoles]:
    """``consoles.start(2, redis_url=...)``: Daphnes for this test only."""
    started = Consoles(django_db_blocker)
    yield started
    started.stop()


@dataclass
class RedisServer:
    """A private ``redis-server`` (no persistence: a restart loses everything in it)."""

    port: int
    workdir: str
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.workdir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock,
            ):
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


def _redis_server(workdir: str) -> RedisServer:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(port=free_port(), workdir=workdir)
    server.start()
    return server


@pytest.fixture(scope="module")
def module_redis() -> Iterator[RedisServer]:
    """A Redis of the module's own: the machine's one (``REDIS_URL``) is shared with other
    test runs, whose groups and presence counters would mix with these."""
    with tempfile.TemporaryDirectory(prefix="scaleout-redis-") as workdir:
        server = _redis_server(workdir)
        yield server
        server.stop()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A Redis that one test may stop and restart."""
    with tempfile.TemporaryDirectory(prefix="scaleout-redis-") as workdir:
        server = _redis_server(workdir)
        yield server
        server.stop()


# ---------------------------------------------------------------- agents in a browser
def ws_url(server: LiveServer, path: str) -> str:
    return server.url.replace("http://", "ws://", 1) + path


def session_cookie(agent: Agent) -> str:
    """A real logged-in session for ``agent`` (stored in the shared database)."""
    client = Client()
    client.force_login(agent.user)
    return client.cookies["sessionid"].value


async def page_csrf(http: httpx.AsyncClient) -> str:
    """Load the queue page as a browser would: it sets the CSRF cookie and the header htmx sends."""
    response = await http.get("/")
    assert response.status_code == 200, response.text[:300]
    match = CSRF.search(response.text)
    assert match, "the page carries no X-CSRFToken for htmx"
    return match.group(1)


@dataclass
class QueueScreen:
    """One agent's queue page: a socket to /ws/queue/ that reconnects like htmx's ws
    extension (to the first server that answers, as behind one address) and applies what
    it receives: a snapshot replaces every row, an out-of-band row adds one, a delete
    removes one."""

    name: str
    cookie: str
    servers: list[LiveServer]
    rows: set[int] = field(default_factory=set)
    live_added: list[int] = field(default_factory=list)
    live_gone: list[int] = field(default_factory=list)
    snapshots: int = 0
    disconnects: int = 0
    connected_to: LiveServer | None = None
    task: asyncio.Task | None = None
    retry_delay: float = 0.1

    def start(self) -> QueueScreen:
        self.task = asyncio.create_task(self._run(), name=f"screen-{self.name}")
        return self

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _run(self) -> None:
        while True:
            for server in self.servers:
                try:
                    async with connect(
                        ws_url(server, "/ws/queue/"),
                        additional_headers={
                            "Cookie": f"sessionid={self.cookie}",
                            "Origin": server.url,
                        },
                        open_timeout=5,
                        ping_interval=None,
                    ) as ws:
                        self.connected_to = server
                        async for message in ws:
                            self._apply(message)
                except (TimeoutError, OSError, InvalidHandshake, WebSocketException):
                    pass
                if self.connected_to is not None:
                    self.disconnects += 1
                    self.connected_to = None
                await asyncio.sleep(self.retry_delay)

    def _apply(self, message: str) -> None:
        if 'id="queue-rows"' in message:
            self.rows = {int(pk) for pk in ROW.findall(message)}
            self.snapshots += 1
            return
        for pk in map(int, GONE.findall(message)):
            self.rows.discard(pk)
            self.live_gone.append(pk)
        if 'hx-swap-oob="beforeend:#queue-rows"' in message:
            for pk in map(int, ROW.findall(message)):
                self.rows.add(pk)
                self.live_added.append(pk)

    async def wait_for(self, predicate: Callable[[QueueScreen], bool], what: str, timeout=10):
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name}: {what} not seen in {timeout} s (rows={sorted(self.rows)}, "
                    f"snapshots={self.snapshots}, disconnects={self.disconnects}, "
                    f"connected_to={self.connected_to and self.connected_to.url})"
                )
            await asyncio.sleep(0.02)


# ---------------------------------------------------------------- bots
async def post_escalation(
    server: LiveServer, bot_key: str, *, customer: str, team: str = "billing-specialist"
) -> int:
    """A bot stores a handoff summary through the memory API; returns the handoff id."""
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        response = await http.post(
            "/v1/memory/store",
            headers={"Authorization": f"Bearer {bot_key}"},
            json={
                "agent_id": customer,
                "content": f"{customer}: charged twice for the March invoice, wants a refund.",
                "importance": 1.0,
                "metadata": {"type": "handoff", "from_agent": "tier1-bot", "to_agent": team},
            },
        )
    assert response.status_code == 200, response.text
    return await handoff_id_for(customer)


async def handoff_id_for(customer: str) -> int:
    return await sync_to_async(
        lambda: Handoff.objects.values_list("pk", flat=True).get(customer=customer)
    )()
