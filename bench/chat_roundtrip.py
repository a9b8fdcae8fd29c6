"""chat_roundtrip: a customer's message → the agent's screen, 50 and 200 conversations.

One fresh SQLite file; N accepted conversations, each with its own agent (a Django
session made in this process) and its customer. The console runs in one Daphne
(``console.asgi``). Each conversation has the agent's socket open on
``/ws/conversations/<id>/`` and the customer's on ``/ws/chat/<token>/``, as the two
chat pages do. Every conversation then sends customer messages the way the chat page
does (``POST /c/<token>/messages`` with a client id and the CSRF token), at random
(Poisson) moments averaging one message per ``INTERVAL_S`` per conversation, all N
conversations at once. Measured per message: from sending the POST to the moment the
AGENT's socket has received that message (matched by its client id). Also recorded:
the POST's own answer (the customer's acknowledgement), messages late (not received
within 10 s of the acknowledgement), and the Daphne process's CPU time
per message (user + system, from /proc).

Baseline, same run, same N, same schedule: ``bench/bare_asgi.py`` in a second Daphne,
one-to-one: ``POST /bare/post/c<i>`` does one SQLite insert and a ``group_send`` to
that conversation's group, whose one socket receives it; the bare body is padded to the
size of the console's frame. Bare and console phases alternate, so background noise
hits both alike.

The clients (autobahn's asyncio WebSocket client, as ``intake_fanout`` uses, and httpx)
run in a child process, ``python -m bench.chat_roundtrip --drive``, which never imports
Django (see ``intake_fanout``: Django's ``daphne`` app binds txaio to Twisted).

Target (issue 4): p99 ≤ 50 ms at 50 conversations. ``--quick``: 50 conversations only,
fewer messages.

``python -m bench --only chat_roundtrip``, or standalone:
``.venv/bin/python -m bench.chat_roundtrip [--quick] [--keep]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import secrets
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import httpx

from . import env, ws
from .core import Row, latency_metrics, percentile
from .env import BareDaphne
from .intake_fanout import TEAM, _cpu_s, _create_agents

TARGET_P99_MS = {50: 50.0}
INTERVAL_S = 5.0  # mean time between one conversation's customer messages (Poisson)
RECEIVE_TIMEOUT_S = 10.0
IDLE_PAUSE_S = 0.1
CONNECT_CONCURRENCY = 4
CLIENT_ID = re.compile(rb'data-client-id="([^"]+)"')
MARKER = re.compile(rb'"marker": "([^"]+)"')
SUMMARY = (
    "Customer reports a $100 billing overcharge: the plan is $199/mo but the last invoice "
    "shows $299. Customer tone: frustrated but polite. Needs a refund or an explanation."
)
MESSAGES = [
    "Hi, I was charged $299 but my plan is $199 a month.",
    "Can you tell me when the refund will arrive?",
    "Thanks, that helps. Is there anything else you need from me?",
    "The invoice number is 8812, from last Tuesday.",
    "OK, I'll wait for the email then.",
]


def _config(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        return {"phase_s": {50: 4.0}, "phases": 2, "warmup_s": 2.0, "idle": 20}
    # 200 conversations offer four times the messages per second: shorter phases.
    return {"phase_s": {50: 10.0, 200: 4.0}, "phases": 2, "warmup_s": 3.0, "idle": 25}


def _log(args: argparse.Namespace, message: str) -> None:
    if not args.silent:
        print(f"  [chat_roundtrip] {message}", flush=True)


# ---------------------------------------------------------------- set-up (sync, ORM)
def _create_conversations(count: int) -> list[dict[str, Any]]:
    """``count`` accepted conversations, one agent each; what the driver needs of them.

    No server runs yet, so the set-up's broadcasts would reach nobody: they are switched
    off here (re-rendering the supervisors' floor on every intake and accept would make
    the set-up quadratic).
    """
    from handoffs.lifecycle.accept import handoff_accept
    from handoffs.lifecycle.intake import handoff_intake
    from handoffs.models import Agent, Presence
    from handoffs.realtime import broadcast

    cookies = _create_agents(count)
    # On duty already (as agents with a conversation are): opening their sockets is then
    # no presence change, which would re-render the supervisors' floor each time.
    Agent.objects.filter(teams__slug=TEAM).update(presence=Presence.ONLINE)
    agents = list(Agent.objects.filter(teams__slug=TEAM).order_by("user__username"))
    conversations = []
    with contextlib.ExitStack() as quiet:
        for name in ("send", "publish_floor", "publish_handoff_change", "publish_message"):
            if hasattr(broadcast, name):
                quiet.enter_context(mock.patch.object(broadcast, name, lambda *a, **k: None))
        for i, (agent, cookie) in enumerate(zip(agents, cookies, strict=True)):
            handoff = handoff_intake(
                customer=f"bench-chat-{i:03d}",
                customer_name=f"Customer {i}",
                source_session_id="",
                from_agent="tier1-bot",
                to_agent=TEAM,
                summary=f"{SUMMARY} (case {i})",
                sentiment="frustrated",
                urgency="normal",
            ).handoff
            handoff_accept(handoff_id=handoff.pk, agent=agent)
            handoff.refresh_from_db()
            conversations.append(
                {"handoff": handoff.pk, "token": handoff.conversation.token, "cookie": cookie}
            )
    return conversations


# ---------------------------------------------------------------- the driver (child process)
@dataclass
class Inbox:
    """Messages in flight, by client id (console) or marker (bare): when they arrive."""

    waiting: dict[bytes, asyncio.Future] = field(default_factory=dict)
    frame_bytes: int = 0

    def expect(self, key: bytes) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.waiting[key] = future
        return future

    def arrived(self, pattern: re.Pattern[bytes], payload: bytes) -> None:
        now = time.perf_counter()
        for key in pattern.findall(payload):
            future = self.waiting.pop(key, None)
            if future is not None and not future.done():
                future.set_result(now)
                self.frame_bytes = len(payload)


async def _open(
    port: int, paths: list[tuple[str, str | None]], inbox: Inbox | None, pattern: re.Pattern
) -> list:
    """One socket per (path, cookie); each is open once its snapshot has arrived."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    def on_event(_socket: Any, payload: bytes) -> None:
        if inbox is not None:
            inbox.arrived(pattern, payload)

    async def one(path: str, cookie: str | None) -> Any:
        made = ws.factory(port, path, cookie, ws.snapshot_socket_class())
        made.on_event = on_event
        return await ws.open_snapshot_socket(made, port, gate=gate, attempts=4, ready_timeout=60)

    return list(await asyncio.gather(*(one(p, c) for p, c in paths)))


@dataclass
class Target:
    name: str
    inbox: Inbox = field(default_factory=Inbox)
    samples: list[tuple[float, float]] = field(default_factory=list)  # (received, answered)
    late: int = 0


async def _message(target: Target, send_one, tag: str, i: int, timed: bool) -> None:
    """Send one message on conversation ``i``; record when its socket received it."""
    key = f"{target.name}-{tag}-{i}-{secrets.token_hex(4)}".encode()
    arrived = target.inbox.expect(key)
    started = time.perf_counter()
    response = await send_one(i, key.decode())
    answered = time.perf_counter()
    if response.status_code not in (200, 201):
        raise RuntimeError(f"{target.name} POST answered {response.status_code}")
    try:
        received = await asyncio.wait_for(arrived, RECEIVE_TIMEOUT_S)
    except TimeoutError:
        target.inbox.waiting.pop(key, None)
        received = started + RECEIVE_TIMEOUT_S
        if timed:
            target.late += 1
    if timed:
        target.samples.append((received - started, answered - started))


async def _phase(
    target: Target,
    send_one,  # async (i, key) -> httpx.Response
    n: int,
    seconds: float,
    rng: random.Random,
    timed: bool,
) -> None:
    """For ``seconds``, every conversation sends messages at Poisson moments (open loop:
    a message is sent on time even if the previous one has not arrived yet); then wait
    for the ones in flight."""
    deadline = time.perf_counter() + seconds

    async def conversation(i: int) -> None:
        tasks = []
        for k in itertools.count():
            due = time.perf_counter() + rng.expovariate(1 / INTERVAL_S)
            if due > deadline:  # the next message would fall after the phase: done now
                break
            await asyncio.sleep(due - time.perf_counter())
            tasks.append(asyncio.create_task(_message(target, send_one, f"{n}-{k}", i, timed)))
        await asyncio.gather(*tasks)

    await asyncio.gather(*(conversation(i) for i in range(n)))


@dataclass
class Sockets:
    """The sockets open so far; a larger round opens only the missing ones."""

    console: Inbox = field(default_factory=Inbox)
    bare: Inbox = field(default_factory=Inbox)
    open: list = field(default_factory=list)
    count: int = 0


async def _round(
    http: httpx.AsyncClient, config: dict[str, Any], n: int, sockets: Sockets
) -> dict[str, Any]:
    console, bare = Target("console", sockets.console), Target("bare", sockets.bare)
    cport, bport = config["console_port"], config["bare_port"]
    conversations = config["conversations"][:n]
    new = conversations[sockets.count :]
    csrf = secrets.token_hex(16)  # any 32 alphanumerics: cookie and header must match

    started = time.perf_counter()
    sockets.open += await _open(
        cport,
        [(f"/ws/conversations/{c['handoff']}/", c["cookie"]) for c in new],
        console.inbox,
        CLIENT_ID,
    )
    sockets.open += await _open(
        cport, [(f"/ws/chat/{c['token']}/", None) for c in new], None, CLIENT_ID
    )
    opened = time.perf_counter() - started
    sockets.open += await _open(
        bport,
        [(f"/ws/bare/c{i}/", None) for i in range(sockets.count, n)],
        bare.inbox,
        MARKER,
    )
    sockets.count = n
    await ws.settle(http, [cport, bport])
    print(
        f"  [chat_roundtrip] {n} conversations: {2 * len(new)} more console sockets open "
        f"in {opened:.1f}s",
        file=sys.stderr,
        flush=True,
    )

    async def console_send(i: int, key: str) -> httpx.Response:
        c = conversations[i]
        return await http.post(
            f"http://127.0.0.1:{cport}/c/{c['token']}/messages",
            data={"body": MESSAGES[i % len(MESSAGES)], "client_id": key},
            headers={"X-CSRFToken": csrf, "Cookie": f"csrftoken={csrf}", "HX-Request": "true"},
        )

    async def bare_send(i: int, key: str) -> httpx.Response:
        body = {"marker": key, "html": ""}
        size = console.inbox.frame_bytes or 1200
        body["html"] = "x" * max(0, size - len(json.dumps(body)))
        return await http.post(
            f"http://127.0.0.1:{bport}/bare/post/c{i}",
            content=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )

    seconds = config["phase_s"][str(n)]
    rng = random.Random(config["seed"] + n)
    plan = [(console, console_send), (bare, bare_send)]
    for target, send in plan:
        await _phase(target, send, n, config["warmup_s"], rng, timed=False)
    # The floor: one message at a time, the server otherwise idle (sockets open).
    idle = {"console": Target("console", console.inbox), "bare": Target("bare", bare.inbox)}
    for j in range(config["idle"]):
        for target, send in plan:
            await _message(idle[target.name], send, "idle", j % n, timed=True)
            await asyncio.sleep(IDLE_PAUSE_S)
    cpu = {"console": 0.0, "bare": 0.0}
    pids = config["pids"]
    for phase in range(config["phases"]):
        for target, send in plan if phase % 2 == 0 else plan[::-1]:
            before = _cpu_s(pids[target.name])
            await _phase(target, send, n, seconds, rng, timed=True)
            cpu[target.name] += _cpu_s(pids[target.name]) - before

    messages = {"console": len(console.samples), "bare": len(bare.samples)}
    return {
        "n": n,
        "console": console.samples,
        "bare": bare.samples,
        "idle_console": idle["console"].samples,
        "idle_bare": idle["bare"].samples,
        "console_late": console.late,
        "bare_late": bare.late,
        "phase_s": seconds,
        "frame_bytes": console.inbox.frame_bytes,
        "open_s": opened,
        "opened_now": len(new),
        "cpu_ms_per_message": {k: v / max(messages[k], 1) * 1000 for k, v in cpu.items()},
    }


async def _drive(config: dict[str, Any]) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    sockets = Sockets()
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        results = [await _round(http, config, int(n), sockets) for n in config["phase_s"]]
    for socket in sockets.open:  # the servers are stopped next: no need to wait for them
        socket.sendClose(1000)
    return {"results": results}


# ---------------------------------------------------------------- rows
def _metrics(samples: list[tuple[float, float]], late: int) -> dict[str, float]:
    lat = latency_metrics([s[0] for s in samples])
    return {
        "p50_ms": lat["p50_ms"],
        "p99_ms": lat["p99_ms"],
        "ack_p50_ms": percentile([s[1] for s in samples], 50) * 1000,
        "ack_p99_ms": percentile([s[1] for s in samples], 99) * 1000,
        "late": float(late),
        "mean_ms": lat["mean_ms"],
        "max_ms": lat["max_ms"],
        "n": lat["n"],
    }


def _rows(args: argparse.Namespace, driven: dict[str, Any]) -> list[Row]:
    config = _config(args)
    rows = []
    for result in driven["results"]:
        n = result["n"]
        metrics = _metrics(result["console"], result["console_late"])
        baseline = _metrics(result["bare"], result["bare_late"])
        metrics["server_cpu_ms"] = result["cpu_ms_per_message"]["console"]
        baseline["server_cpu_ms"] = result["cpu_ms_per_message"]["bare"]
        target = TARGET_P99_MS.get(n)
        rows.append(
            Row(
                scenario="chat_roundtrip",
                variant=f"customer POST → agent socket, {n} conversations",
                metrics=metrics,
                primary="p99_ms",
                baseline=baseline["p99_ms"],
                baseline_label="bare Channels group_send (1:1)",
                baseline_metrics=baseline,
                target=f"p99 ≤ {target:g}ms" if target else None,
                ok=(metrics["p99_ms"] <= target and metrics["late"] == 0) if target else None,
                notes=(
                    f"{int(metrics['n'])} messages ({config['phases']} phases of "
                    f"{result['phase_s']:g}s, alternating with bare), one "
                    f"per {INTERVAL_S:g}s per conversation on average (~{n / INTERVAL_S:.0f}/s "
                    f"offered); agent frame {result['frame_bytes']} bytes; customer's "
                    f"acknowledgement p50 {metrics['ack_p50_ms']:.1f} / p99 "
                    f"{metrics['ack_p99_ms']:.1f}ms (bare {baseline['ack_p50_ms']:.1f} / "
                    f"{baseline['ack_p99_ms']:.1f}ms); late {int(metrics['late'])} (bare "
                    f"{int(baseline['late'])}); server CPU per message "
                    f"{metrics['server_cpu_ms']:.1f}ms (bare {baseline['server_cpu_ms']:.1f}ms);"
                    f" {2 * result['opened_now']} more console sockets opened in "
                    f"{result['open_s']:.1f}s; load "
                    f"average {os.getloadavg()[0]:.1f}"
                ),
            )
        )
        idle, idle_base = _metrics(result["idle_console"], 0), _metrics(result["idle_bare"], 0)
        rows.append(
            Row(
                scenario="chat_roundtrip",
                variant=f"one message at a time, {n} conversations open",
                metrics=idle,
                primary="p99_ms",
                baseline=idle_base["p99_ms"],
                baseline_label="bare Channels group_send (1:1)",
                baseline_metrics=idle_base,
                notes=(
                    f"{int(idle['n'])} messages, each sent after the previous one arrived "
                    f"(+{IDLE_PAUSE_S * 1000:.0f}ms): the floor with no queueing; customer's "
                    f"acknowledgement p50 {idle['ack_p50_ms']:.1f}ms (bare "
                    f"{idle_base['ack_p50_ms']:.1f}ms)"
                ),
            )
        )
        _log(
            args,
            f"{n} conversations, one at a time: console p50 {idle['p50_ms']:.1f} / p99 "
            f"{idle['p99_ms']:.1f} ms; bare p50 {idle_base['p50_ms']:.1f} / p99 "
            f"{idle_base['p99_ms']:.1f} ms",
        )
        _log(
            args,
            f"{n} conversations: console p50 {metrics['p50_ms']:.1f} / p99 "
            f"{metrics['p99_ms']:.1f} ms; bare p50 {baseline['p50_ms']:.1f} / p99 "
            f"{baseline['p99_ms']:.1f} ms",
        )
    return rows


# ---------------------------------------------------------------- the scenario
def run(args: argparse.Namespace) -> list[Row]:
    env.fresh_database(args.workdir, "chat_roundtrip")
    config = _config(args)
    conversations = _create_conversations(max(config["phase_s"]))
    from django.db import connections

    connections.close_all()  # the Daphne children own the database from here
    with (
        env.Daphne(args.workdir, "chat-roundtrip") as console,
        BareDaphne(args.workdir) as bare,
    ):
        _log(args, f"console on :{console.port}, bare Channels on :{bare.port}")
        config.update(
            console_port=console.port,
            bare_port=bare.port,
            conversations=conversations,
            seed=args.seed,
            pids={"console": console.process.pid, "bare": bare.process.pid},
        )
        samples = env.run_driver(
            "bench.chat_roundtrip", config, silent=args.silent, what="chat driver"
        )
        return _rows(args, samples)


# ---------------------------------------------------------------- standalone
def main(argv: list[str] | None = None) -> int:
    """``python -m bench.chat_roundtrip``: this scenario alone (``env.standalone``)."""
    return env.standalone("chat_roundtrip", run, _drive, argv)


if __name__ == "__main__":
    raise SystemExit(main())
