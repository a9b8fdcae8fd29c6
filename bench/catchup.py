"""catchup: how long a reconnecting agent takes to catch up after 100 missed events.

One fresh SQLite file; the console in one Daphne (``console.asgi``). The WebSocket
clients and HTTP calls run in a driver child process (``python -m bench.catchup
--drive``, autobahn's asyncio client and httpx, no Django; see ``intake_fanout``).
Each client reconnects the way the browser does: htmx's ``ws`` extension re-opens the
same URL (``/ws/queue/``, ``/ws/conversations/<id>/``) and sends nothing else, no
last-seen sequence number; the consumers answer every connect with a fresh snapshot
from the database (``handoffs/desk/consumers.py``).

Queue (one round): agent A has ``/ws/queue/`` open (snapshot received), agent B of the
same team too. A's socket closes. While A is away, 100 queue events happen: 80
handoffs arrive (a bot POSTs handoff memories to ``/v1/memory/store``), B sees them on
its queue and accepts 20 of them (``POST /handoffs/<pk>/accept``, as the Accept
button does). Then A reconnects; measured: from opening the TCP connection to A having
its snapshot, checked to hold exactly the 60 waiting rows (none accepted, none twice,
none missing). Each round has its own team and pair of agents, so every round starts
from an empty queue.

Conversation (one round): an accepted conversation (``chat_roundtrip``'s set-up); the
agent's ``/ws/conversations/<id>/`` socket is open (snapshot received), then closes;
the customer sends 100 messages (``POST /c/<token>/messages`` with client ids, as the
chat page does). Then the agent reconnects; measured: from opening the TCP connection
until all 100 missed messages have arrived, checked to be in order and exactly once
(over every frame received, snapshot and later ones). Since the snapshot is the whole
conversation, a second variant does the same with 1,000 earlier messages in it.

Baseline, same run, rounds alternating with the console's: ``bench/bare_asgi.py`` in
a second Daphne (its own SQLite file). Catch-up from the database: a
``/ws/bare-catchup/`` socket learns the last row id, closes, 100 events are POSTed
(``/bare/post/<group>``: one SQLite insert each, bodies padded to the size of the
console's queue row or chat message), then it reconnects with ``?after=<id>`` and gets
the 100 rows it missed in one frame (one ``SELECT`` through ``database_sync_to_async``),
checked the same way. Also a plain reconnect (connect + ``snapshot``, no database) on
``/ws/bare/``, in the rows' notes.

No numeric target in the issue; ``ok`` = every catch-up complete and correct.
``--quick``: 3 rounds per variant (2 with history) instead of 6 (3). ``--profile``:
py-spy samples the console's Daphne over the drive (``bench/results/catchup-console.txt``).

``python -m bench --only catchup``, or standalone:
``.venv/bin/python -m bench.catchup [--quick] [--keep]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from . import env, ws
from .chat_roundtrip import MESSAGES, _create_conversations
from .core import Row, latency_metrics, percentile
from .env import BareDaphne
from .intake_fanout import BOT, _console_body

ARRIVALS = 80  # handoffs arriving while the agent is away ...
ACCEPTS = 20  # ... and accepted by a colleague meanwhile: 100 queue events
MISSED_MESSAGES = 100
HISTORY = 1000  # earlier messages in the history variant's conversation
CATCHUP_TIMEOUT_S = 30.0
ROW = re.compile(rb'id="handoff-(\d+)"')
MESSAGE = re.compile(rb'data-seq="(\d+)" data-client-id="([^"]+)"')
QUEUE_SEQ = re.compile(rb'id="queue-seq" hx-swap-oob="true" data-seq="(\d+)"')
GONE = re.compile(rb'<article id="handoff-(\d+)" hx-swap-oob="delete"')
ADDED = re.compile(rb'<article class="qrow[^"]*" id="handoff-(\d+)"')


def _config(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        return {"rounds": 3, "history_rounds": 2}
    return {"rounds": 6, "history_rounds": 3}


def _log(args: argparse.Namespace, message: str) -> None:
    if not args.silent:
        print(f"  [catchup] {message}", flush=True)


# ---------------------------------------------------------------- set-up (sync, ORM)
def _setup(config: dict[str, Any]) -> dict[str, Any]:
    """Agents, teams and conversations for every round; what the driver needs of them.

    All agents come from ``chat_roundtrip._create_conversations`` (each with one
    accepted conversation, on duty). The queue rounds' pairs move to a team of their
    own; their capacity is raised so B can accept 20 in a row.
    """
    from django.db.models import F

    from handoffs.models import Agent, Conversation, Message, Sender, Team

    rounds, history_rounds = config["rounds"], config["history_rounds"]
    conversations = _create_conversations(2 * rounds + rounds + history_rounds)
    pairs = conversations[: 2 * rounds]
    agents = list(Agent.objects.order_by("user__username"))  # the same order
    queue_rounds = []
    for r in range(rounds):
        team = Team.objects.create(slug=f"catchup-q{r}", name=f"Catch-up {r}")
        for agent in agents[2 * r : 2 * r + 2]:
            agent.teams.set([team])
        queue_rounds.append(
            {"team": team.slug, "a": pairs[2 * r]["cookie"], "b": pairs[2 * r + 1]["cookie"]}
        )
    Agent.objects.update(capacity=1000)
    chats = conversations[2 * rounds : 3 * rounds]
    histories = conversations[3 * rounds :]
    for entry in histories:
        conversation = Conversation.objects.get(token=entry["token"])
        start = conversation.last_seq + 1
        Message.objects.bulk_create(
            Message(
                conversation=conversation,
                seq=start + k,
                client_id=f"history-{k:05d}",
                sender=Sender.CUSTOMER if k % 2 == 0 else Sender.AGENT,
                author=conversation.customer if k % 2 == 0 else "agent",
                author_name="Customer" if k % 2 == 0 else "Agent",
                body=MESSAGES[k % len(MESSAGES)],
                handoff_id=entry["handoff"],
            )
            for k in range(HISTORY)
        )
        Conversation.objects.filter(pk=conversation.pk).update(last_seq=F("last_seq") + HISTORY)
    return {"queue": queue_rounds, "chats": chats, "histories": histories}


# ---------------------------------------------------------------- the driver (child process)
def _socket_class() -> type:
    from autobahn.asyncio.websocket import WebSocketClientProtocol

    class CatchupSocket(WebSocketClientProtocol):
        """Keeps every frame with its arrival time; ``until`` waits for a condition."""

        def __init__(self) -> None:
            super().__init__()
            loop = asyncio.get_event_loop()
            self.frames: list[tuple[float, bytes]] = []
            self.changed = asyncio.Event()
            self.closed: asyncio.Future = loop.create_future()

        def onMessage(self, payload: bytes, isBinary: bool) -> None:  # noqa: N802, N803
            self.frames.append((time.perf_counter(), payload))
            self.changed.set()

        def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:  # noqa: N802, N803
            if not self.closed.done():
                self.closed.set_result(code)
            self.changed.set()

        async def until(self, done: Callable[[list[bytes]], bool], what: str) -> float:
            """Wait until ``done(payloads)``; the arrival time of the frame that did it."""
            deadline = time.perf_counter() + CATCHUP_TIMEOUT_S
            while True:
                if self.frames and done([payload for _t, payload in self.frames]):
                    return self.frames[-1][0]
                if self.closed.done():
                    raise RuntimeError(f"{what}: socket closed ({self.closed.result()})")
                self.changed.clear()
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    raise RuntimeError(f"{what}: not complete after {CATCHUP_TIMEOUT_S:g}s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), remaining)

        async def leave(self) -> None:
            self.sendClose(1000)
            await asyncio.wait_for(asyncio.shield(self.closed), 120)

    return CatchupSocket


async def _connect(port: int, path: str, cookie: str | None = None) -> Any:
    made = ws.factory(port, path, cookie, _socket_class(), openHandshakeTimeout=60)
    _transport, socket = await asyncio.get_running_loop().create_connection(made, "127.0.0.1", port)
    return socket


def _check(status: httpx.Response, what: str) -> None:
    if status.status_code not in (200, 201):
        raise RuntimeError(f"{what} answered {status.status_code}: {status.text[:300]}")


@dataclass
class Sample:
    """One catch-up: its time and whether what arrived was complete and correct."""

    seconds: float
    correct: bool
    items: int  # rows / messages the catch-up delivered in all
    frame_bytes: int
    frames: int
    problem: str = ""


@dataclass
class Driver:
    http: httpx.AsyncClient
    config: dict[str, Any]
    csrf: str = field(default_factory=lambda: secrets.token_hex(16))
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    reconnect_s: list[float] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=lambda: {"queue": 1500, "chat": 700})

    @property
    def cport(self) -> int:
        return self.config["console_port"]

    @property
    def bport(self) -> int:
        return self.config["bare_port"]

    def record(self, variant: str, sample: Sample) -> None:
        self.samples.setdefault(variant, []).append(sample)
        if not sample.correct:
            print(f"  [catchup] {variant}: WRONG: {sample.problem}", file=sys.stderr, flush=True)

    def form_headers(self, cookie: str = "") -> dict[str, str]:
        jar = f"{cookie}; csrftoken={self.csrf}" if cookie else f"csrftoken={self.csrf}"
        return {"X-CSRFToken": self.csrf, "Cookie": jar, "HX-Request": "true"}

    # ------------------------------------------------------------ console: queue
    async def queue_round(self, r: int, spec: dict[str, str], *, resume: bool = False) -> None:
        """``resume``: A reconnects with ``?after=`` the last queue change it saw (as the
        page does) and applies the rows and removals it is sent, instead of a snapshot."""
        a = await _connect(self.cport, "/ws/queue/", spec["a"])
        await a.until(lambda frames: True, "A's first snapshot")
        initial = {int(pk) for pk in ROW.findall(a.frames[0][1])}
        b = await _connect(self.cport, "/ws/queue/", spec["b"])
        await b.until(lambda frames: True, "B's snapshot")
        seqs = [int(m) for _t, f in a.frames for m in QUEUE_SEQ.findall(f)]
        await a.leave()

        markers = []
        for i in range(ARRIVALS):
            body = json.loads(_console_body((20_000 if resume else 10_000) + r, i))
            body["metadata"]["to_agent"] = spec["team"]
            markers.append(body["marker"].encode())
            response = await self.http.post(
                f"http://127.0.0.1:{self.cport}/v1/memory/store",
                json=body,
                headers={"Authorization": f"Bearer {self.config['key']}"},
            )
            _check(response, "POST /v1/memory/store")

        def seen_all(frames: list[bytes]) -> bool:
            return all(any(m in f for f in frames) for m in markers)

        await b.until(seen_all, "B seeing the arrivals")  # B learns the pks from its queue
        pks = []
        for marker in markers:
            frame = next(f for _t, f in b.frames if marker in f and b"beforeend:#queue-rows" in f)
            pks.append(int(ROW.search(frame).group(1)))
        accepted = set(pks[:: ARRIVALS // ACCEPTS][:ACCEPTS])
        for pk in sorted(accepted):
            response = await self.http.post(
                f"http://127.0.0.1:{self.cport}/handoffs/{pk}/accept",
                headers=self.form_headers(spec["b"]),
            )
            _check(response, f"POST /handoffs/{pk}/accept")
        expected = [pk for pk in [*initial, *pks] if pk not in accepted]

        started = time.perf_counter()
        if resume:
            a = await _connect(self.cport, f"/ws/queue/?after={max(seqs)}", spec["a"])
            arrived = await a.until(lambda frames: b'id="queue-seq"' in frames[0], "A's catch-up")
            snapshot = a.frames[0][1]
            shown = set(initial)
            for pk in GONE.findall(snapshot):
                shown.discard(int(pk))
            added = [int(pk) for pk in ADDED.findall(snapshot)]
            rows = sorted(shown) + added
            if b'id="queue-rows"' in snapshot:  # a full snapshot after all
                rows = [int(pk) for pk in ROW.findall(snapshot)]
        else:
            a = await _connect(self.cport, "/ws/queue/", spec["a"])
            arrived = await a.until(lambda frames: b'id="queue-rows"' in frames[0], "A's catch-up")
            snapshot = a.frames[0][1]
            rows = [int(pk) for pk in ROW.findall(snapshot)]
        problems = []
        if len(rows) != len(set(rows)):
            problems.append(f"{len(rows) - len(set(rows))} rows twice")
        if set(rows) & accepted:
            problems.append(f"{len(set(rows) & accepted)} accepted rows shown")
        if missing := set(expected) - set(rows):
            problems.append(f"{len(missing)} rows missing")
        if extra := set(rows) - set(expected) - accepted:
            problems.append(f"{len(extra)} unknown rows")
        self.record(
            "queue-after" if resume else "queue",
            Sample(
                arrived - started, not problems, len(rows), len(snapshot), 1, "; ".join(problems)
            ),
        )
        if not resume:
            self.sizes["queue"] = len(snapshot) // max(len(rows), 1)
        await a.leave()
        await b.leave()

    # ------------------------------------------------------------ console: conversation
    async def chat_round(
        self, variant: str, r: int, chat: dict[str, Any], *, resume: bool = False
    ) -> None:
        """``resume``: the agent reconnects with ``?after=`` its last message's seq."""
        path = f"/ws/conversations/{chat['handoff']}/"
        socket = await _connect(self.cport, path, chat["cookie"])
        await socket.until(lambda frames: True, "the agent's first snapshot")
        before = MESSAGE.findall(socket.frames[0][1])
        last_seq = max((int(seq) for seq, _cid in before), default=0)
        await socket.leave()

        missed = [
            f"missed-{r}-{k:03d}-{secrets.token_hex(3)}".encode() for k in range(MISSED_MESSAGES)
        ]
        for k, client_id in enumerate(missed):
            response = await self.http.post(
                f"http://127.0.0.1:{self.cport}/c/{chat['token']}/messages",
                data={"body": MESSAGES[k % len(MESSAGES)], "client_id": client_id.decode()},
                headers=self.form_headers(),
            )
            _check(response, "POST /c/<token>/messages")

        wanted = set(missed)

        def complete(frames: list[bytes]) -> bool:
            got = {cid for f in frames for _seq, cid in MESSAGE.findall(f)}
            return wanted <= got

        started = time.perf_counter()
        socket = await _connect(
            self.cport, f"{path}?after={last_seq}" if resume else path, chat["cookie"]
        )
        arrived = await socket.until(complete, "the agent's catch-up")
        frames = [f for _t, f in socket.frames]
        received = [(int(seq), cid) for f in frames for seq, cid in MESSAGE.findall(f)]
        allowed = 5 if resume else len(before)  # the overlap, or the whole history
        self.record(variant, _judge(arrived - started, received, missed, frames, allowed))
        if variant == "chat":
            self.sizes["chat"] = len(frames[0]) // max(len(received), 1)
        await socket.leave()

    # ------------------------------------------------------------ bare
    async def bare_round(self, variant: str, size: int, r: int) -> None:
        socket = await _connect(self.bport, "/ws/bare-catchup/")
        await socket.until(lambda frames: True, "bare first frame")
        last = json.loads(socket.frames[0][1])["last"]
        await socket.leave()

        missed = [
            f"bare-{variant}-{r}-{k:03d}-{secrets.token_hex(3)}" for k in range(MISSED_MESSAGES)
        ]
        for k, marker in enumerate(missed):
            body = {"marker": marker, "seq": k, "html": ""}
            body["html"] = "x" * max(0, size - len(json.dumps(body)))
            response = await self.http.post(
                f"http://127.0.0.1:{self.bport}/bare/post/catchup", content=json.dumps(body)
            )
            _check(response, "POST /bare/post")

        started = time.perf_counter()
        socket = await _connect(self.bport, f"/ws/bare-catchup/?after={last}")
        arrived = await socket.until(lambda frames: True, "bare catch-up")
        frame = socket.frames[0][1]
        received = [
            (row["seq"], row["marker"].encode())
            for row in map(json.loads, json.loads(frame)["rows"])
        ]
        self.record(
            f"bare-{variant}",
            _judge(arrived - started, received, [m.encode() for m in missed], [frame], 0),
        )
        await socket.leave()

    async def bare_reconnect(self) -> None:
        started = time.perf_counter()
        socket = await _connect(self.bport, "/ws/bare/")
        arrived = await socket.until(lambda frames: True, "bare snapshot")
        self.reconnect_s.append(arrived - started)
        await socket.leave()


def _judge(
    seconds: float, received: list[tuple[int, bytes]], missed: list[bytes], frames, history: int
) -> Sample:
    """The missed messages must all be there, once each, in order (seq and arrival)."""
    counts = Counter(cid for _seq, cid in received)
    wanted = set(missed)
    problems = []
    if twice := [cid for cid in wanted if counts[cid] > 1]:
        problems.append(f"{len(twice)} missed messages twice")
    if missing := [cid for cid in wanted if counts[cid] == 0]:
        problems.append(f"{len(missing)} missed messages missing")
    order = [cid for _seq, cid in received if cid in wanted]
    first_seen = list(dict.fromkeys(order))
    if first_seen != [cid for cid in missed if cid in counts]:
        problems.append("missed messages out of order")
    seqs = [seq for seq, cid in received if cid in wanted]
    if seqs != sorted(seqs):
        problems.append("sequence numbers out of order")
    if len(received) - len(order) > history + 5:  # the snapshot resends what it had
        problems.append(f"{len(received) - len(order)} other messages")
    return Sample(
        seconds,
        not problems,
        len(received),
        sum(len(f) for f in frames),
        len(frames),
        "; ".join(problems),
    )


async def _drive(config: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=120) as http:
        driver = Driver(http, config)
        for r in range(config["rounds"]):  # console and bare alternate, so noise hits both
            await driver.queue_round(r, config["queue"][r])
            await driver.bare_round("queue", driver.sizes["queue"], r)
            await driver.queue_round(r, config["queue"][r], resume=True)
            await driver.chat_round("chat", r, config["chats"][r])
            await driver.bare_round("chat", driver.sizes["chat"], r)
            await driver.chat_round("chat-after", 500 + r, config["chats"][r], resume=True)
            await driver.bare_reconnect()
            print(f"  [catchup] round {r + 1} done", file=sys.stderr, flush=True)
        for r, chat in enumerate(config["histories"]):
            await driver.chat_round("history", 1000 + r, chat)
            await driver.bare_round("chat", driver.sizes["chat"], 1000 + r)
            await driver.chat_round("history-after", 2000 + r, chat, resume=True)
            await driver.bare_reconnect()
    return {
        "samples": {k: [vars(s) for s in v] for k, v in driver.samples.items()},
        "reconnect_s": driver.reconnect_s,
    }


# ---------------------------------------------------------------- rows
def _metrics(samples: list[dict[str, Any]]) -> dict[str, float]:
    lat = latency_metrics([s["seconds"] for s in samples])
    return {
        "p50_ms": lat["p50_ms"],
        "p99_ms": lat["p99_ms"],
        "wrong": float(sum(not s["correct"] for s in samples)),
        "items": percentile([s["items"] for s in samples], 50),
        "frame_kb": percentile([s["frame_bytes"] for s in samples], 50) / 1024,
        "mean_ms": lat["mean_ms"],
        "max_ms": lat["max_ms"],
        "n": lat["n"],
    }


def _rows(args: argparse.Namespace, driven: dict[str, Any]) -> list[Row]:
    samples = driven["samples"]
    reconnect = latency_metrics(driven["reconnect_s"])
    load = os.getloadavg()[0]
    variants = [
        (
            "queue",
            "bare-queue",
            f"queue: reconnect after {ARRIVALS + ACCEPTS} missed events "
            f"({ARRIVALS} new, {ACCEPTS} accepted)",
            f"snapshot of {ARRIVALS - ACCEPTS} waiting rows, checked: none accepted, none "
            "missing, none twice",
        ),
        (
            "chat",
            "bare-chat",
            f"conversation: reconnect after {MISSED_MESSAGES} missed messages",
            "the snapshot is the whole conversation (no last-seen seq is sent); checked: all "
            "missed messages, in order, once",
        ),
        (
            "history",
            "bare-chat",
            f"conversation with {HISTORY:,} earlier messages: reconnect after "
            f"{MISSED_MESSAGES} missed",
            f"the snapshot resends all {HISTORY:,} earlier messages too",
        ),
        (
            "queue-after",
            "bare-queue",
            f"queue, resuming with ?after=: reconnect after {ARRIVALS + ACCEPTS} missed events",
            "the rows changed since the page's last queue change number (new rows, removals), "
            "checked the same way",
        ),
        (
            "chat-after",
            "bare-chat",
            f"conversation, resuming with ?after=<seq>: {MISSED_MESSAGES} missed messages",
            "only the missed messages (and a 5-message overlap); checked the same way",
        ),
        (
            "history-after",
            "bare-chat",
            f"conversation with {HISTORY:,} earlier messages, resuming with ?after=<seq>",
            "only the missed messages, whatever the history",
        ),
    ]
    rows = []
    for key, base_key, variant, what in variants:
        if key not in samples:
            continue
        metrics, baseline = _metrics(samples[key]), _metrics(samples[base_key])
        baseline["reconnect_p50_ms"] = reconnect["p50_ms"]
        wrong = [s["problem"] for s in samples[key] if not s["correct"]]
        rows.append(
            Row(
                scenario="catchup",
                variant=variant,
                metrics=metrics,
                primary="p50_ms",
                baseline=baseline["p50_ms"],
                baseline_label="bare catch-up from SQLite",
                baseline_metrics=baseline,
                target="complete and correct",
                ok=not wrong,
                notes=(
                    f"{int(metrics['n'])} reconnects, time from TCP connect to the last missed "
                    f"item received; {what}; frame {metrics['frame_kb']:.0f} kB, "
                    f"{metrics['items']:.0f} items (bare: 100 rows after ?after=<id>, one SELECT, "
                    f"{baseline['frame_kb']:.0f} kB, p50 {baseline['p50_ms']:.1f} / p99 "
                    f"{baseline['p99_ms']:.1f}ms); bare plain reconnect (connect + snapshot, no "
                    f"database) p50 {reconnect['p50_ms']:.1f} / p99 {reconnect['p99_ms']:.1f}ms;"
                    f" {'wrong: ' + '; '.join(wrong) if wrong else 'all correct'}; "
                    f"load average {load:.1f}"
                ),
            )
        )
        _log(
            args,
            f"{key}: p50 {metrics['p50_ms']:.1f} / p99 {metrics['p99_ms']:.1f} ms "
            f"({int(metrics['wrong'])} wrong); bare catch-up p50 {baseline['p50_ms']:.1f} / p99 "
            f"{baseline['p99_ms']:.1f} ms",
        )
    return rows


# ---------------------------------------------------------------- the scenario
def run(args: argparse.Namespace) -> list[Row]:
    env.fresh_database(args.workdir, "catchup")
    from django.db import connections

    from handoffs.api.keys import bot_create

    config = _config(args)
    _bot, key = bot_create(name=BOT)
    config.update(_setup(config))
    connections.close_all()  # the Daphne children own the database from here
    bare = BareDaphne(args.workdir)
    bare.db_path = args.workdir / "catchup-bare.sqlite3"  # not shared with other scenarios
    with env.Daphne(args.workdir, "catchup") as console, bare:
        _log(args, f"console on :{console.port}, bare Channels on :{bare.port}")
        config.update(console_port=console.port, bare_port=bare.port, key=key)
        # py-spy over the whole drive: the reconnects are the stacks under consumers.py.
        spy = (
            env.start_py_spy(console.process.pid, args.results_dir / "catchup-console.txt")
            if args.profile
            else None
        )
        try:
            driven = env.run_driver(
                "bench.catchup", config, silent=args.silent, what="catch-up driver"
            )
        finally:
            env.stop_py_spy(spy)
        return _rows(args, driven)


# ---------------------------------------------------------------- standalone
def main(argv: list[str] | None = None) -> int:
    """``python -m bench.catchup``: this scenario alone (``env.standalone``)."""
    return env.standalone("catchup", run, _drive, argv)


if __name__ == "__main__":
    raise SystemExit(main())
