"""storms: mass disconnects, a killed Daphne under 1,000 sockets, and what a connect costs.

Scale-out only (``bench/scaleout.py``): a throw-away PostgreSQL database, a Redis
database, two console Daphnes started as ``deploy/circus.ini`` starts them
(``--websocket_connect_timeout 30 --application-close-timeout 5``), one
``manage.py run_worker`` (it runs the presence sweep), and one bare Channels Daphne
(``bench/bare_asgi.py`` on the same PostgreSQL server and Redis) for the baseline. The
WebSocket clients run in a driver child process (``--drive``; the ``websockets``
library, no Django), which reads PostgreSQL (agents' presence) and Redis (group
members, connected clients) directly.

Phases, N = 1,000 agents of one team (``--quick``: 200):

1. **connect cost**: after a warm-up (50 sockets opened and closed, on each server),
   N queue sockets opened on console Daphne A, 50 handshakes in flight at a time, each
   counted once its first frame (snapshot) arrives; A's CPU time (``/proc/<pid>/stat``)
   over the phase / N, against N ``/ws/bare/`` sockets on the
   bare Daphne, same client, same concurrency. Target: at most 2× the bare CPU per
   connect. The sockets are then closed.
2. **mass disconnect**: N queue sockets opened over A and B (half each, all handshakes
   at once: a storm), then all closed at once. Measured until it settles (at most 30 s):
   agents still shown online (stale presence), channels still in any ``asgi:group:*``
   (dead group members; every socket is closed, so every member is dead), Redis's
   connected clients. Target: 0 and 0.
3. **killed Daphne**: N sockets over A and B again; A is killed (SIGKILL). Its clients
   reconnect as the page does (``static/handoffs/reconnect.js``: full-jitter back-off
   capped at 10 s, ``?after=`` the last queue change number), to whichever process takes
   the connection (a refused connect tries the other at once, as one circus address
   would); 5 % of A's clients never come back (closed laptops). Measured: for each of
   A's returning clients, kill → first frame on its new socket (p50 / p90 / p100;
   target p100 ≤ 15 s); handshakes that failed on the way; then one escalation POSTed,
   which every one of the N - gone sockets must show (correct, not just connected);
   how long the gone clients' agents stay online (target: ≤ PRESENCE_TTL_SECS +
   PRESENCE_HEARTBEAT_SECS = 20 s); dead group members once the sweep has run.

``python -m bench --only storms``, or standalone: ``.venv/bin/python -m bench.storms``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import env, scaleout
from .core import Row, percentile

TEAM = "storm-team"
BOT = "storm-bot"
CONNECT_CONCURRENCY = 50
WARM_UP = 50  # sockets opened and closed on each server before the connect cost is measured
GONE_FRACTION = 0.05
TARGET_BACK_S = 15.0
TARGET_CPU_RATIO = 2.0
TARGET_OFFLINE_S = 20.0
SETTLE_S = 30.0
REDIS_DOWN_S = 3.0
ROW = re.compile(rb'id="handoff-(\d+)"')
SEQ = re.compile(rb'id="queue-seq" hx-swap-oob="true" data-seq="(\d+)"')


def _log(args: argparse.Namespace, message: str) -> None:
    if not args.silent:
        print(f"  [storms] {message}", flush=True)


# ---------------------------------------------------------------- set-up (child, ORM)
def _setup(count: int) -> dict[str, Any]:
    """A bot key and ``count`` signed-in agents of one team; their cookies and ids."""

    from handoffs.api.keys import bot_create
    from handoffs.models import Team

    _bot, key = bot_create(name=BOT)
    team = Team.objects.create(slug=TEAM, name="Storm team")
    agents, cookies = env.signed_in_agents(team, count, "storm-agent")
    return {"key": key, "cookies": cookies, "agent_ids": [a.pk for a in agents]}


class StormDaphne(env.Daphne):
    """A console Daphne with the flags ``deploy/circus.ini`` gives it."""

    def __enter__(self) -> StormDaphne:
        command = [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(self.port),
            "--websocket_connect_timeout",
            "30",
            "--application-close-timeout",
            "5",
            self.APP,
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - daphne with this interpreter
                command, cwd=env.ROOT, env=self.child_env(), stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_ready()
        return self


# ---------------------------------------------------------------- the driver (no Django)
def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Client:
    """One agent's queue page: one socket, reconnecting like reconnect.js."""

    def __init__(self, index: int, cookie: str, ports: list[int], path: str = "/ws/queue/"):
        self.index = index
        self.cookie = cookie
        self.ports = list(ports)
        self.path = path
        self.port: int | None = None
        self.ws: Any = None
        self.frames: list[bytes] = []
        self.snapshot_times: list[float] = []
        self.seq: int | None = None
        self.rows: set[int] = set()
        self.first_frame = asyncio.Event()
        self.opened_at: float | None = None
        self.failed_handshakes = 0
        self.task: asyncio.Task | None = None
        self.reconnect = False
        self.back_at: float | None = None
        self.killed_at: float | None = None

    async def connect_once(self, port: int, *, timeout: float = 60) -> None:
        from websockets.asyncio.client import connect

        url = f"ws://127.0.0.1:{port}{self.path}"
        if self.seq is not None and self.path == "/ws/queue/":
            url += f"?after={self.seq}"
        self.ws = await connect(
            url,
            additional_headers={"Cookie": self.cookie, "Origin": f"http://127.0.0.1:{port}"},
            open_timeout=timeout,
            ping_interval=None,
            close_timeout=10,
            max_size=None,
        )
        self.port = port

    def _apply(self, frame: bytes) -> None:
        self.frames.append(frame)
        if b'id="queue-rows"' in frame:
            self.snapshot_times.append(time.monotonic())
        if match := SEQ.search(frame):
            self.seq = max(self.seq or 0, int(match.group(1)))

    async def read(self) -> None:
        """Read frames until the socket closes."""
        from websockets.exceptions import ConnectionClosed

        try:
            async for message in self.ws:
                frame = message.encode() if isinstance(message, str) else message
                self._apply(frame)
                if not self.first_frame.is_set():
                    self.first_frame.set()
                    if self.killed_at is not None and self.back_at is None:
                        self.back_at = time.monotonic()
        except ConnectionClosed:
            pass

    async def run(self, port: int) -> None:
        """Connect, read, and (while ``reconnect`` is set) come back after a drop: full
        jitter capped at 10 s (reconnect.js). A refused connection (a dead process) goes
        to another process at once, as one circus address hands it to a live Daphne."""
        target, failures = port, 0
        while True:
            try:
                await self.connect_once(target)
                await self.read()
                if not self.reconnect:
                    return
                # As reconnect.js: the back-off starts over only once a frame came (a socket
                # refused with 4013 opens and closes without one).
                failures = 1 if self.first_frame.is_set() else failures + 1
            except ConnectionRefusedError:
                if not self.reconnect:
                    return
                others = [p for p in self.ports if p != target]
                target = random.choice(others or self.ports)
                await asyncio.sleep(0.01)
                continue
            except Exception:  # noqa: BLE001 - a timeout, an HTTP 500/503 answer, a reset
                self.failed_handshakes += 1
                failures += 1
                if not self.reconnect:
                    return
            self.first_frame = asyncio.Event()
            await asyncio.sleep(random.random() * min(10.0, 0.5 * 2**failures))
            target = random.choice(self.ports)

    async def close(self) -> None:
        self.reconnect = False
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


async def _open_all(
    clients: list[Client], ports: list[int], *, concurrency: int | None, reconnect: bool = False
) -> float:
    """Open every client's socket (round-robin over ``ports``) and wait for each first frame."""
    gate = asyncio.Semaphore(concurrency) if concurrency else None
    started = time.monotonic()

    async def one(client: Client, port: int) -> None:
        if gate is not None:
            async with gate:
                await _start(client, port, reconnect)
        else:
            await _start(client, port, reconnect)

    await asyncio.gather(*(one(c, ports[i % len(ports)]) for i, c in enumerate(clients)))
    return time.monotonic() - started


async def _start(client: Client, port: int, reconnect: bool) -> None:
    client.reconnect = True  # the first connect retries too (a storm may refuse some)
    client.task = asyncio.create_task(client.run(port))
    # A failed attempt replaces ``first_frame`` with a new event: poll the attribute.
    deadline = time.monotonic() + 120
    while not client.first_frame.is_set():
        if time.monotonic() > deadline:
            raise RuntimeError(f"client {client.index}: no first frame in 120 s")
        await asyncio.sleep(0.05)
    if not reconnect:
        client.reconnect = False


class Observer:
    """Reads what the servers keep: PostgreSQL presence, Redis groups and clients."""

    def __init__(self, config: dict[str, Any]) -> None:
        import psycopg
        import redis

        self.db = psycopg.connect(config["database_url"], autocommit=True)
        self.redis = redis.Redis.from_url(config["redis_url"])
        self.agent_ids = config["agent_ids"]

    def online(self, agent_ids: list[int] | None = None) -> int:
        ids = agent_ids if agent_ids is not None else self.agent_ids
        row = self.db.execute(
            "SELECT count(*) FROM handoffs_agent WHERE presence <> 'offline' AND id = ANY(%s)",
            [ids],
        ).fetchone()
        return int(row[0])

    def group_members(self) -> int:
        total = 0
        for key in self.redis.scan_iter(match="asgi:group:*", count=1000):
            if key.startswith(b"asgi:group:bare"):
                continue  # the bare baseline's group (stock channels-redis), not the console's
            total += int(self.redis.zcard(key))
        return total

    def redis_clients(self) -> int:
        return int(self.redis.info("clients")["connected_clients"])

    def close(self) -> None:
        self.db.close()
        self.redis.close()


async def _settle(observer: Observer, expect_online: int, expect_members: int) -> dict[str, float]:
    started = time.monotonic()
    while True:
        online = observer.online()
        members = observer.group_members()
        if (online == expect_online and members == expect_members) or (
            time.monotonic() - started > SETTLE_S
        ):
            return {
                "settle_s": time.monotonic() - started,
                "online": online,
                "members": members,
            }
        await asyncio.sleep(0.25)


async def _phase_connect_cost(config: dict[str, Any]) -> dict[str, Any]:
    a_port, bare_port = config["console_ports"][0], config["bare_port"]
    result: dict[str, Any] = {}
    for name, port, pid, path in (
        ("console", a_port, config["console_pids"][0], "/ws/queue/"),
        ("bare", bare_port, config["bare_pid"], "/ws/bare/"),
    ):
        # Warm-up (both servers alike): the first sockets of a fresh process pay for
        # imports, template loading and pool connections, which a storm on a running
        # Daphne doesn't.
        warm = [Client(i, c, [port], path) for i, c in enumerate(config["cookies"][:WARM_UP])]
        await _open_all(warm, [port], concurrency=CONNECT_CONCURRENCY)
        await asyncio.gather(*(c.close() for c in warm))
        await asyncio.sleep(3)
        clients = [Client(i, c, [port], path) for i, c in enumerate(config["cookies"])]
        cpu0 = _cpu_s(pid)
        elapsed = await _open_all(clients, [port], concurrency=CONNECT_CONCURRENCY)
        cpu = _cpu_s(pid) - cpu0
        result[name] = {
            "open_s": elapsed,
            "cpu_ms_per_connect": cpu * 1000 / len(clients),
            "failed": sum(c.failed_handshakes for c in clients),
        }
        await asyncio.gather(*(c.close() for c in clients))
        await asyncio.sleep(3)
    return result


async def _phase_mass_close(config: dict[str, Any], observer: Observer) -> dict[str, Any]:
    ports = config["console_ports"]
    clients = [Client(i, c, ports) for i, c in enumerate(config["cookies"])]
    open_s = await _open_all(clients, ports, concurrency=None)
    online_open = observer.online()
    members_open = observer.group_members()
    clients_open = observer.redis_clients()
    started = time.monotonic()
    await asyncio.gather(*(c.close() for c in clients))
    close_s = time.monotonic() - started
    settled = await _settle(observer, 0, 0)
    return {
        "sockets": len(clients),
        "open_s": open_s,
        "failed_handshakes": sum(c.failed_handshakes for c in clients),
        "online_while_open": online_open,
        "members_while_open": members_open,
        "redis_clients_while_open": clients_open,
        "close_s": close_s,
        "settle_s": settled["settle_s"],
        "stale_presence": settled["online"],
        "dead_group_members": settled["members"],
        "redis_clients_after": observer.redis_clients(),
    }


async def _phase_kill(config: dict[str, Any], observer: Observer) -> dict[str, Any]:
    import httpx

    ports = config["console_ports"]
    a_port, b_port = ports
    clients = [Client(i, c, ports) for i, c in enumerate(config["cookies"])]
    open_s = await _open_all(clients, ports, concurrency=None, reconnect=True)
    on_a = [c for c in clients if c.port == a_port]
    gone = on_a[: max(1, int(len(on_a) * GONE_FRACTION))]
    returning = [c for c in on_a if c not in gone]
    gone_ids = [config["agent_ids"][c.index] for c in gone]
    for c in gone:
        c.reconnect = False
    killed_at = time.monotonic()
    for c in on_a:
        c.killed_at = killed_at
        c.back_at = None
    os.kill(config["console_pids"][0], signal.SIGKILL)
    deadline = killed_at + 60
    while time.monotonic() < deadline and any(c.back_at is None for c in returning):
        await asyncio.sleep(0.1)
    back = [c.back_at - killed_at for c in returning if c.back_at is not None]
    all_back_s = time.monotonic() - killed_at

    # Correct, not just connected: one escalation reaches every live screen.
    live = [c for c in clients if c not in gone]
    marker = f"storm-{random.randrange(10**9)}"
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"http://127.0.0.1:{b_port}/v1/memory/store",
            headers={"Authorization": f"Bearer {config['key']}"},
            json={
                "agent_id": marker,
                "content": f"{marker}: charged twice for the March invoice, wants a refund.",
                "importance": 1.0,
                "metadata": {"type": "handoff", "from_agent": "tier1-bot", "to_agent": TEAM},
            },
        )
    posted = response.status_code == 200
    needle = marker.encode()
    seen_deadline = time.monotonic() + 15
    while time.monotonic() < seen_deadline:
        seen = sum(1 for c in live if any(needle in f for f in c.frames[-5:]))
        if seen == len(live):
            break
        await asyncio.sleep(0.1)
    seen = sum(1 for c in live if any(needle in f for f in c.frames))

    # The gone clients' agents go offline by themselves (heartbeat TTL + sweep).
    offline_s = None
    while time.monotonic() - killed_at < 60:
        if observer.online(gone_ids) == 0:
            offline_s = time.monotonic() - killed_at
            break
        await asyncio.sleep(0.25)
    # The killed process's channels leave their groups when the sweep reaps it.
    per_socket = config["groups_per_socket"]  # as counted in the mass-disconnect phase
    while True:
        dead_members = max(observer.group_members() - per_socket * len(live), 0)
        if dead_members == 0 or time.monotonic() - killed_at > 60:
            break
        await asyncio.sleep(0.25)
    reaped_s = time.monotonic() - killed_at
    online_live = observer.online([config["agent_ids"][c.index] for c in live])
    await asyncio.gather(*(c.close() for c in clients))
    return {
        "sockets": len(clients),
        "open_s": open_s,
        "on_killed": len(on_a),
        "returning": len(returning),
        "gone": len(gone),
        "back": back,
        "not_back": len(returning) - len(back),
        "all_back_s": all_back_s,
        "failed_handshakes": sum(c.failed_handshakes for c in returning),
        "posted": posted,
        "escalation_seen": seen,
        "live": len(live),
        "gone_offline_s": offline_s,
        "dead_group_members": dead_members,
        "reaped_s": reaped_s,
        "live_online": online_live,
    }


def _redis_server(port: int, workdir: str) -> subprocess.Popen:
    """A private ``redis-server`` (no persistence: a restart loses everything in it)."""
    import shutil
    import socket as socketlib

    process = subprocess.Popen(  # noqa: S603 - redis-server from PATH
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            socketlib.create_connection(("127.0.0.1", port), timeout=0.5) as sock,
        ):
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG"):
                return process
        time.sleep(0.05)
    raise RuntimeError(f"redis-server did not start on port {port}")


async def _phase_redis_restart(config: dict[str, Any]) -> dict[str, Any]:
    """Redis stopped for ``REDIS_DOWN_S`` and started again empty under N sockets: every
    client back (first frame on a new socket) counted from the restart; then one
    escalation must reach every screen."""
    import httpx

    ports = config["console_ports"]
    clients = [Client(i, c, ports) for i, c in enumerate(config["cookies"])]
    open_s = await _open_all(clients, ports, concurrency=None, reconnect=True)
    redis_pid = config["redis_pid"]
    os.kill(redis_pid, signal.SIGTERM)
    stopped_at = time.monotonic()
    for c in clients:
        c.killed_at = stopped_at
        c.back_at = None
    await asyncio.sleep(REDIS_DOWN_S)
    restarted = await asyncio.to_thread(_redis_server, config["redis_port"], config["workdir"])
    restarted_at = time.monotonic()
    # Back = a full queue snapshot received after the restart: on a new socket (the old
    # one dropped; one refused with 4013 meanwhile never gets a frame) or on a socket
    # that survived the outage and was told to resync (its groups were lost with Redis).

    def back_at(client: Client) -> float | None:
        return next((t for t in client.snapshot_times if t >= restarted_at), None)

    while time.monotonic() - restarted_at < 60 and any(back_at(c) is None for c in clients):
        await asyncio.sleep(0.1)
    back = [back_at(c) - restarted_at for c in clients if back_at(c) is not None]
    marker = f"redis-{random.randrange(10**9)}"
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"http://127.0.0.1:{ports[0]}/v1/memory/store",
            headers={"Authorization": f"Bearer {config['key']}"},
            json={
                "agent_id": marker,
                "content": f"{marker}: charged twice for the March invoice, wants a refund.",
                "importance": 1.0,
                "metadata": {"type": "handoff", "from_agent": "tier1-bot", "to_agent": TEAM},
            },
        )
    needle = marker.encode()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        seen = sum(1 for c in clients if any(needle in f for f in c.frames[-5:]))
        if seen == len(clients):
            break
        await asyncio.sleep(0.1)
    seen = sum(1 for c in clients if any(needle in f for f in c.frames))
    refused = sum(c.failed_handshakes for c in clients)
    await asyncio.gather(*(c.close() for c in clients))
    return {
        "sockets": len(clients),
        "open_s": open_s,
        "down_s": restarted_at - stopped_at,
        "back": back,
        "not_back": len(clients) - len(back),
        "refused_or_failed_connects": refused,
        "posted": response.status_code == 200,
        "escalation_seen": seen,
        "redis_pid": restarted.pid,
    }


PHASES = ("cost", "mass", "kill", "redis")


def _phases() -> list[str]:
    """``STORMS_PHASES=cost,redis`` runs only those phases (default: all four); the
    killed-Daphne phase needs the mass-disconnect one (it counts groups per socket)."""
    wanted = [p.strip() for p in os.environ.get("STORMS_PHASES", ",".join(PHASES)).split(",")]
    unknown = sorted(set(wanted) - set(PHASES) - {""})
    if unknown:
        raise SystemExit(f"STORMS_PHASES: unknown {', '.join(unknown)}; known: {PHASES}")
    if "kill" in wanted and "mass" not in wanted:
        wanted.append("mass")
    return [p for p in PHASES if p in wanted]


async def _drive(config: dict[str, Any]) -> dict[str, Any]:
    if config.get("phase") == "redis":
        return await _phase_redis_restart(config)
    phases = config.get("phases", list(PHASES))
    observer = Observer(config)
    driven: dict[str, Any] = {}
    try:
        if "cost" in phases:
            driven["cost"] = await _phase_connect_cost(config)
            await _settle(observer, 0, 0)
        if "mass" in phases:
            mass = driven["mass"] = await _phase_mass_close(config, observer)
            await asyncio.sleep(2)
            config["groups_per_socket"] = round(mass["members_while_open"] / mass["sockets"])
        if "kill" in phases:
            driven["kill"] = await _phase_kill(config, observer)
    finally:
        observer.close()
    return driven


# ---------------------------------------------------------------- rows
def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _rows(args: argparse.Namespace, driven: dict[str, Any], load: str) -> list[Row]:
    rows = []
    if "cost" in driven:
        rows.append(_cost_row(args, driven["cost"], load))
    if "mass" in driven:
        rows.append(_mass_row(driven["mass"], load))
    if "kill" in driven:
        rows.append(_kill_row(driven["kill"], load))
    if driven.get("redis"):
        rows.append(_redis_row(driven["redis"], load))
    return rows


def _cost_row(args: argparse.Namespace, cost: dict[str, Any], load: str) -> Row:
    console_ms, bare_ms = cost["console"]["cpu_ms_per_connect"], cost["bare"]["cpu_ms_per_connect"]
    return Row(
        scenario="storms",
        variant=f"connect cost, {len(args.cookies)} queue sockets, one Daphne",
        metrics={
            "cpu_ms_per_connect": console_ms,
            "open_s": cost["console"]["open_s"],
            "failed": cost["console"]["failed"],
        },
        primary="cpu_ms_per_connect",
        baseline=bare_ms,
        baseline_label="bare Channels /ws/bare/ connect (group_add + accept + a frame)",
        baseline_metrics={"open_s": cost["bare"]["open_s"], "failed": cost["bare"]["failed"]},
        target=f"≤ {TARGET_CPU_RATIO:g}× bare CPU per connect",
        ok=console_ms <= TARGET_CPU_RATIO * bare_ms,
        notes=f"load {load}; {CONNECT_CONCURRENCY} handshakes in flight",
    )


def _mass_row(mass: dict[str, Any], load: str) -> Row:
    return Row(
        scenario="storms",
        variant=f"mass disconnect, {mass['sockets']} sockets over 2 Daphnes",
        metrics={
            "stale_presence": mass["stale_presence"],
            "dead_group_members": mass["dead_group_members"],
            "settle_s": mass["settle_s"],
            "open_s": mass["open_s"],
            "failed_handshakes": mass["failed_handshakes"],
            "redis_clients_while_open": mass["redis_clients_while_open"],
            "redis_clients_after": mass["redis_clients_after"],
        },
        primary="settle_s",
        baseline=0.0,
        baseline_label="none (a count of leftovers; 0 is the floor)",
        target="0 stale presence, 0 dead group members",
        ok=mass["stale_presence"] == 0 and mass["dead_group_members"] == 0,
        notes=(
            f"load {load}; all {mass['sockets']} handshakes at once, all closed at once; "
            f"while open: {mass['online_while_open']} online, "
            f"{mass['members_while_open']} group members"
        ),
    )


def _kill_row(kill: dict[str, Any], load: str) -> Row:
    back = kill["back"]
    p100 = max(back) if back else float("nan")
    return Row(
        scenario="storms",
        variant=f"Daphne killed under {kill['sockets']} sockets",
        metrics={
            "back_p50_s": percentile(back, 50),
            "back_p90_s": percentile(back, 90),
            "back_p100_s": p100,
            "returning": kill["returning"],
            "not_back": kill["not_back"],
            "failed_handshakes": kill["failed_handshakes"],
            "escalation_seen": kill["escalation_seen"],
            "live": kill["live"],
            "gone_offline_s": kill["gone_offline_s"] or float("nan"),
            "dead_group_members": kill["dead_group_members"],
            "reaped_s": kill["reaped_s"],
        },
        primary="back_p100_s",
        baseline=TARGET_BACK_S,
        baseline_label="the target (no bare equivalent)",
        target=f"p100 ≤ {TARGET_BACK_S:g} s, all back and correct, gone offline ≤ 20 s",
        ok=(
            kill["not_back"] == 0
            and p100 <= TARGET_BACK_S
            and kill["escalation_seen"] == kill["live"]
            and kill["gone_offline_s"] is not None
            and kill["gone_offline_s"] <= TARGET_OFFLINE_S
        ),
        notes=(
            f"load {load}; {kill['on_killed']} on the killed Daphne, {kill['gone']} of them "
            f"never return; the escalation after: {kill['escalation_seen']}/{kill['live']}"
        ),
    )


def _redis_row(redis: dict[str, Any], load: str) -> Row:
    back = redis["back"]
    p100 = max(back) if back else float("nan")
    return Row(
        scenario="storms",
        variant=f"Redis restarted empty under {redis['sockets']} sockets",
        metrics={
            "back_p50_s": percentile(back, 50),
            "back_p90_s": percentile(back, 90),
            "back_p100_s": p100,
            "not_back": redis["not_back"],
            "down_s": redis["down_s"],
            "refused_or_failed_connects": redis["refused_or_failed_connects"],
            "escalation_seen": redis["escalation_seen"],
        },
        primary="back_p100_s",
        baseline=TARGET_BACK_S,
        baseline_label="the target (no bare equivalent)",
        target=f"p100 ≤ {TARGET_BACK_S:g} s after the restart, all back and correct",
        ok=(
            redis["not_back"] == 0
            and p100 <= TARGET_BACK_S
            and redis["escalation_seen"] == redis["sockets"]
        ),
        notes=(
            f"load {load}; Redis stopped {redis['down_s']:.1f} s, restarted empty; "
            f"connects refused (4013) or failed meanwhile: "
            f"{redis['refused_or_failed_connects']}; the escalation after: "
            f"{redis['escalation_seen']}/{redis['sockets']}"
        ),
    )


def _run_redis_restart(
    args: argparse.Namespace,
    cluster: scaleout.ScaleOut,
    prepared: dict[str, Any],
    console_env: dict[str, str],
) -> dict[str, Any]:
    """Phase 4 on a private redis-server (the machine's Redis is shared): two fresh
    console Daphnes and a worker on it, the same database."""
    redis_port = env.free_port()
    redis_dir = args.workdir / "redis"
    redis_dir.mkdir(exist_ok=True)
    redis_process = _redis_server(redis_port, str(redis_dir))
    redis_pid = redis_process.pid
    private_env = {**console_env, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
    consoles = [
        StormDaphne(args.workdir, f"storms-redis-console-{i}", extra_env=private_env)
        for i in range(2)
    ]
    worker = None
    try:
        cluster._start(consoles)
        worker = subprocess.Popen(  # noqa: S603 - our manage.py
            [sys.executable, "manage.py", "run_worker", "--poll", "0.5"],
            cwd=env.ROOT,
            env=private_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _log(args, f"Redis restart phase: private redis on :{redis_port}")
        result = env.run_driver(
            "bench.storms",
            {
                **prepared,
                "phase": "redis",
                "console_ports": [c.port for c in consoles],
                "redis_pid": redis_pid,
                "redis_port": redis_port,
                "workdir": str(redis_dir),
            },
            silent=args.silent,
            what="storm driver (Redis restart)",
        )
        redis_pid = result["redis_pid"]
        return result
    finally:
        for console in consoles:
            console.stop()
        if worker is not None:
            worker.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.kill(redis_pid, signal.SIGTERM)
        with contextlib.suppress(Exception):
            redis_process.wait(timeout=10)


def _config(args: argparse.Namespace) -> int:
    return 200 if args.quick else 1000


def run(args: argparse.Namespace) -> list[Row]:
    why_not = scaleout.available()
    if why_not:
        _log(args, f"not run: PostgreSQL or Redis unavailable ({why_not})")
        return []
    count = _config(args)
    phases = _phases()
    with scaleout.ScaleOut(args.workdir, "storms") as cluster:
        # As `make run-scaleout` runs it: DEBUG off (no debug cursor recording every query),
        # plain HTTP on loopback. One secret key for the set-up child (it signs the
        # sessions) and the servers.
        production = {
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": f"bench-storms-{os.getpid()}-not-a-real-secret",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DJANGO_SECURE_COOKIES": "0",
            "DJANGO_HSTS_SECONDS": "0",
            "SERVING_TIMERS": "0",
        }
        prepared = env.run_driver(
            "bench.scaleout",
            [count],
            silent=True,
            what="scale-out set-up bench.storms:_setup",
            flags=("--call", "bench.storms:_setup"),
            child_env={**cluster.console_env(), **production},
        )
        args.cookies = prepared["cookies"]
        console_env = {**cluster.console_env(), **production}
        consoles = [
            StormDaphne(args.workdir, f"storms-console-{i}", extra_env=console_env)
            for i in range(2)
        ]
        cluster._start(consoles)
        # The baseline runs as the console does: DEBUG off.
        bare = cluster.bares(1, {"DJANGO_DEBUG": "0"})[0]
        worker_log = open(args.workdir / "storms-worker.log", "wb")  # noqa: SIM115
        worker = subprocess.Popen(  # noqa: S603 - our manage.py
            [sys.executable, "manage.py", "run_worker", "--poll", "0.5"],
            cwd=env.ROOT,
            env=console_env,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
        )
        try:
            _log(args, f"{count} agents; consoles :{consoles[0].port} :{consoles[1].port}")
            load_before = _load()
            # --profile: py-spy on console A over the drive (the connect phase is most of it).
            spy = (
                env.start_py_spy(consoles[0].process.pid, args.results_dir / "storms-console.txt")
                if args.profile
                else None
            )
            driven = env.run_driver(
                "bench.storms",
                {
                    **prepared,
                    "phases": phases,
                    "console_ports": [c.port for c in consoles],
                    "console_pids": [c.process.pid for c in consoles],
                    "bare_port": bare.port,
                    "bare_pid": bare.process.pid,
                    "database_url": cluster.database_url,
                    "redis_url": cluster.redis_url,
                },
                silent=args.silent,
                what="storm driver",
            )
            env.stop_py_spy(spy)
            load = f"{load_before} → {_load()} (1/5/15 min)"
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
            worker_log.close()
        if "redis" in phases:
            driven["redis"] = _run_redis_restart(args, cluster, prepared, console_env)
        load = f"{load_before} → {_load()} (1/5/15 min)"
        rows = _rows(args, driven, load)
        (args.results_dir).mkdir(parents=True, exist_ok=True)
        (args.results_dir / "storms-raw.json").write_text(json.dumps(driven, indent=1))
    return rows


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.storms``: this scenario alone (``env.standalone``)."""
    return env.standalone("storms", run, _drive, argv)


if __name__ == "__main__":
    raise SystemExit(main())
