"""sustained_intake: 16 bots running the full seed flow back to back for 30 s.

What one "flow" is (one handoff, as ``handoffs/demo.py``'s seed scenario sends it through
the ``dakera`` SDK), five POSTs on one keep-alive connection, each waiting for the last:

1. ``POST /v1/sessions/start``      ``{"agent_id", "metadata": {"agent", "channel"}}``
2. ``POST /v1/memory/store``        a fact (``metadata.type = "issue"``), in the session
3. ``POST /v1/memory/store``        a fact (``metadata.type = "context"``), in the session
4. ``POST /v1/memory/store``        the HANDOFF SUMMARY, importance 1.0, metadata ``type =
   handoff``, ``from_agent`` (the bot), ``to_agent`` (the team), ``sentiment``, ``urgency``,
   ``customer_name``: the console turns it into a Handoff row in the same transaction
5. ``POST /v1/sessions/<id>/end``   ``{"summary"}``

The bodies are the bytes the SDK (0.14.1) sends: ``requests``' ``json=`` (``json.dumps``
with default separators), keys in the SDK's order, ``Content-Type: application/json``,
``User-Agent: dakera-py/0.14.1``, ``Authorization: Bearer <key>``. Every flow uses a new
customer namespace (``sus-b<bot>-<n>``), so nothing dedupes and every flow is one handoff.

Set-up: a fresh SQLite file (WAL), a bot key, one team (``bench-billing``, the handoffs'
``to_agent``), no agents and no sockets connected (this measures intake, not fan-out;
the queue row and card are still rendered and ``group_send`` to the team's empty group).
The console runs in one Daphne (``console.asgi``, ``env.PRODUCTION_ENV``: DEBUG off),
in-memory channel layer.

Load: a driver child process (``python -m bench.sustained_intake --drive``, never imports
Django) runs 16 asyncio tasks, the 16 bots, each with its own ``httpx.AsyncClient`` (one
keep-alive connection, opened before the clock). A bot starts flows until the deadline;
the flow in flight at the deadline is finished (never cut half-way), and the wall time
runs until the last bot is done: ``handoffs_per_s = completed flows / wall``. A step
that fails (non-2xx or transport error) abandons its flow: it is counted in ``errors``
by status, "database is locked" answers separately (``locked``); afterwards the Daphne
log is searched for "database is locked" too (``log_locked``).

Checked in the database afterwards (``db_mismatch``, must be 0): Handoff rows of the
timed customers = successful handoff POSTs, memories = successful memory POSTs, and no
session of a completed flow left open.

Baseline, same run: ``bench/bare_asgi.py`` in a second Daphne (``intake_fanout.
BareDaphne``): 16 clients, each "flow" the same five POSTs, same bodies, to ``POST
/bare/post/sus-b<bot>`` (one SQLite INSERT in an IMMEDIATE transaction, WAL, then a
``group_send`` to that bot's empty group; the route exists already). Order, to spread
drift in background load over both: warm-up (one flow per bot on each server, untimed),
bare for a sixth of the console's time, console for the full 30 s, bare for another
sixth (A-B-A; the bare rate is steady within seconds). Then the same in scale-out (two
Daphnes on PostgreSQL + channels-redis, ``bench/scaleout.py``, 8 bots on each), 10 s
each for console and bare.
Bare flows/s is the sum of both halves' flows over the sum of their walls.

Also reported: requests/s, POST p50/p99 over all five POSTs and for the handoff POST
alone, flow p50/p99, each server's CPU seconds per flow (user + system from /proc, all
threads), the driver's own CPU share, the 1-minute load average before and after.

Reading it: one Daphne process runs the Python of every request under one GIL, so once
it is saturated handoffs/s is close to 1000 / ``server_cpu_ms`` (CPU per flow), which a
busy neighbour on the machine disturbs less than the rate itself.

Target (issue 20): at least 50 % of the bare baseline's flow rate with POST p99 under
150 ms, zero errors, zero "database is locked", db_mismatch 0.
``--quick``: 5 s (bare 2.5 + 2.5). ``--profile``: py-spy samples the console's Daphne
(all threads, 250 Hz, raw collapsed stacks) over the console phase into
``bench/results/sustained_intake-console.txt`` (sampling costs the 2-core machine CPU:
read the numbers of a profiled run as perturbed).

``python -m bench --only sustained_intake`` (once registered), or standalone:
``.venv/bin/python -m bench.sustained_intake [--quick] [--profile] [--keep]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from . import env, scaleout
from .core import Row, latency_metrics, percentile
from .env import BareDaphne
from .intake_fanout import SCALEOUT_PROCESSES, _cpu_s

BOTS = 16
# Issue 20: at least half the bare baseline's flow rate, POST p99 under 150 ms. (The
# earlier absolute target, 250 handoffs/s, is past what one Python process does here:
# the bare baseline itself stays far below it; README, "What is the framework's".)
TARGET_SHARE_OF_BARE = 0.5
TARGET_P99_MS = 150.0
TEAM = "bench-billing"
BOT = "tier1-bot"
USER_AGENT = "dakera-py/0.14.1"
STEPS = ("start", "fact", "fact", "handoff", "end")
SENTIMENTS = ("frustrated", "neutral", "angry", "positive")
URGENCIES = ("high", "normal", "critical", "low")
LOCKED = "database is locked"


def _config(args: argparse.Namespace) -> dict[str, Any]:
    # The bare baseline gets a third of the console's time (two sixths around it): its rate
    # is steady within seconds, and the whole suite has a 10-minute budget.
    seconds = 5.0 if args.quick else 30.0
    return {
        "bots": BOTS,
        "seconds": seconds,
        "bare_seconds": seconds / 3,
        # Scale-out: a shorter look (the suite has a 10-minute budget), bare as long.
        "scaleout_seconds": 5.0 if args.quick else 10.0,
        "warmup_flows": 1,
    }


def _log(args: argparse.Namespace, message: str) -> None:
    if not args.silent:
        print(f"  [sustained_intake] {message}", flush=True)


# ---------------------------------------------------------------- the driver (child process)
def _dumps(data: dict[str, Any]) -> bytes:
    """What ``requests`` sends for ``json=data`` (the SDK's transport)."""
    return json.dumps(data).encode()


def _bodies(customer: str, n: int) -> list[bytes | None]:
    """The five bodies of one flow; the three memory bodies get the session id later."""
    account = f"ACC-{4000 + n % 6000}"
    return [
        _dumps(
            {"agent_id": customer, "metadata": {"agent": BOT, "channel": "chat"}},
        ),
        None,
        None,
        None,
        _dumps({"summary": f"Bot->human handoff: billing overcharge on {account}"}),
    ]


def _memory_body(customer: str, n: int, step: int, session_id: str) -> bytes:
    account = f"ACC-{4000 + n % 6000}"
    if step == 1:
        content = f"User reports billing discrepancy: charged ${200 + n % 300} but plan is $199/mo"
        importance, metadata = 0.9, {"type": "issue"}
    elif step == 2:
        content = f"User has been a customer since {2015 + n % 10}. Account ID: {account}."
        importance, metadata = 0.8, {"type": "context"}
    else:
        content = (
            f"Customer {account} (since {2015 + n % 10}) reports ${100 + n % 200} billing "
            "overcharge. Verified plan is $199/mo but last invoice shows more. Customer "
            "tone: frustrated but polite. Needs refund or explanation."
        )
        importance = 1.0
        metadata = {
            "type": "handoff",
            "from_agent": BOT,
            "to_agent": TEAM,
            "sentiment": SENTIMENTS[n % len(SENTIMENTS)],
            "urgency": URGENCIES[n % len(URGENCIES)],
            "customer_name": f"Customer {customer}",
        }
    return _dumps(
        {
            "content": content,
            "memory_type": "episodic",
            "importance": importance,
            "metadata": metadata,
            "session_id": session_id,
            "agent_id": customer,
        }
    )


@dataclass
class Tally:
    """One phase's outcome, across its bots."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STEPS})
    flow_s: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    flows: int = 0
    handoffs_ok: int = 0
    memories_ok: int = 0
    locked: int = 0


async def _flow(
    http: httpx.AsyncClient, target: str, prefix: str, bot: int, n: int, tally: Tally
) -> None:
    """One full seed flow; a failed step abandons it (counted by status)."""
    customer = f"{prefix}-b{bot:02d}-{n:05d}"
    bodies = _bodies(customer, n)
    bare_path = f"/bare/post/{prefix}-b{bot:02d}"
    session_id = f"sess_{bot:02d}{n:08x}"  # the bare server makes none
    clock = time.perf_counter
    flow_started = clock()
    for step, kind in enumerate(STEPS):
        body = bodies[step] or _memory_body(customer, n, step, session_id)
        if target == "bare":
            path = bare_path
        elif kind == "start":
            path = "/v1/sessions/start"
        elif kind == "end":
            path = f"/v1/sessions/{session_id}/end"
        else:
            path = "/v1/memory/store"
        started = clock()
        try:
            response = await http.post(path, content=body)
        except httpx.HTTPError as exc:
            tally.statuses[f"transport:{type(exc).__name__}"] += 1
            return
        tally.latencies[kind].append(clock() - started)
        tally.statuses[str(response.status_code)] += 1
        if not response.is_success:
            tally.locked += LOCKED in response.text
            return
        if kind in ("fact", "handoff"):
            tally.memories_ok += 1
        if kind == "handoff":
            tally.handoffs_ok += 1
        if target == "console" and kind == "start":
            session_id = response.json()["session"]["id"]
    tally.flows += 1
    tally.flow_s.append(clock() - flow_started)


async def _phase(
    target: dict[str, Any], prefix: str, bots: int, seconds: float | None, flows: int = 0
) -> dict[str, Any]:
    """``bots`` bots loop flows for ``seconds`` (or exactly ``flows`` each, untimed)."""
    tally = Tally()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Authorization": f"Bearer {target['key']}",
    }
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    urls = target["urls"]  # bots spread evenly over the server's processes
    clients = [
        httpx.AsyncClient(base_url=urls[i % len(urls)], headers=headers, timeout=60, limits=limits)
        for i in range(bots)
    ]
    try:
        # Open every keep-alive connection before the clock.
        await asyncio.gather(*(c.get("/health/live") for c in clients))
        deadline = [0.0]

        async def bot(index: int) -> None:
            n = 0
            while (flows and n < flows) or (not flows and time.perf_counter() < deadline[0]):
                await _flow(clients[index], target["name"], prefix, index, n, tally)
                n += 1

        cpu_before, own_before = sum(map(_cpu_s, target["pids"])), time.process_time()
        started = time.perf_counter()
        deadline[0] = started + (seconds or 0.0)
        await asyncio.gather(*(bot(i) for i in range(bots)))
        wall = time.perf_counter() - started
        cpu = sum(map(_cpu_s, target["pids"])) - cpu_before
        own = time.process_time() - own_before
    finally:
        for client in clients:
            await client.aclose()
    return {
        "wall_s": wall,
        "server_cpu_s": cpu,
        "driver_cpu_s": own,
        "flows": tally.flows,
        "handoffs_ok": tally.handoffs_ok,
        "memories_ok": tally.memories_ok,
        "locked": tally.locked,
        "statuses": dict(tally.statuses),
        "latencies": tally.latencies,
        "flow_s": tally.flow_s,
    }


def _say(message: str) -> None:
    print(f"  [sustained_intake] {message}", file=sys.stderr, flush=True)


def _rate(phase: dict[str, Any]) -> float:
    return phase["flows"] / phase["wall_s"]


async def _drive(config: dict[str, Any]) -> dict[str, Any]:
    console, bare = config["console"], config["bare"]
    bots, seconds = config["bots"], config["seconds"]
    for target in (console, bare):
        warm = await _phase(target, "warm", bots, None, flows=config["warmup_flows"])
        _say(f"warm-up {target['name']}: {warm['flows']} flows, {warm['statuses']}")
    load = {"before": os.getloadavg()[0]}
    phases = {"bare_a": await _phase(bare, "sus", bots, config["bare_seconds"] / 2)}
    _say(f"bare (first half): {_rate(phases['bare_a']):.0f} flows/s")
    spy = (
        env.start_py_spy(console["pids"][0], config["profile_out"])
        if config["profile_out"]
        else None
    )
    phases["console"] = await _phase(console, "sus", bots, seconds)
    env.stop_py_spy(spy)
    _say(f"console: {_rate(phases['console']):.0f} handoffs/s")
    # The bare server's group names differ per half so nothing carries over.
    phases["bare_b"] = await _phase(bare, "sus2", bots, config["bare_seconds"] / 2)
    _say(f"bare (second half): {_rate(phases['bare_b']):.0f} flows/s")
    load["after"] = os.getloadavg()[0]
    return {"phases": phases, "loadavg_1m": load}


# ---------------------------------------------------------------- results (parent)
def _summary(phases: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge one server's phases into one set of metrics."""
    wall = sum(p["wall_s"] for p in phases)
    flows = sum(p["flows"] for p in phases)
    statuses: Counter = Counter()
    for p in phases:
        statuses.update(p["statuses"])
    every = [s for p in phases for samples in p["latencies"].values() for s in samples]
    handoff = [s for p in phases for s in p["latencies"]["handoff"]]
    flow_s = [s for p in phases for s in p["flow_s"]]
    lat, lat_handoff = latency_metrics(every), latency_metrics(handoff)
    return {
        "handoffs_per_s": flows / wall,
        "req_per_s": len(every) / wall,
        "p50_ms": lat["p50_ms"],
        "p99_ms": lat["p99_ms"],
        "handoff_p50_ms": lat_handoff["p50_ms"],
        "handoff_p99_ms": lat_handoff["p99_ms"],
        "flow_p50_ms": percentile(flow_s, 50) * 1000,
        "flow_p99_ms": percentile(flow_s, 99) * 1000,
        "errors": sum(n for code, n in statuses.items() if not code.startswith("2")),
        "locked": sum(p["locked"] for p in phases),
        "server_cpu_ms": sum(p["server_cpu_s"] for p in phases) / max(flows, 1) * 1000,
        "driver_cpu_pct": sum(p["driver_cpu_s"] for p in phases) / wall * 100,
        "flows": flows,
        "handoffs_ok": sum(p["handoffs_ok"] for p in phases),
        "memories_ok": sum(p["memories_ok"] for p in phases),
        "wall_s": wall,
        "statuses": dict(statuses),
        "step_p50_ms": {
            kind: percentile([s for p in phases for s in p["latencies"][kind]], 50) * 1000
            for kind in dict.fromkeys(STEPS)
        },
    }


def _check_database(expected: dict[str, Any]) -> dict[str, int]:
    """Compare the rows the timed customers left with what the driver saw succeed (in
    this process's database; scale-out runs it in a child on PostgreSQL)."""
    from django.db import connections

    from handoffs.memory.models import Memory, MemorySession
    from handoffs.models import Handoff

    connections.close_all()
    handoffs = Handoff.objects.filter(customer__startswith="sus-").count()
    memories = Memory.objects.filter(agent_id__startswith="sus-").count()
    sessions = MemorySession.objects.filter(agent_id__startswith="sus-").count()
    open_sessions = MemorySession.objects.filter(agent_id__startswith="sus-", ended_at=None).count()
    connections.close_all()
    abandoned = sessions - expected["flows"]  # sessions of flows that failed part-way
    return {
        "handoffs": handoffs,
        "memories": memories,
        "sessions": sessions,
        "open_sessions": open_sessions,
        "mismatch": abs(handoffs - expected["handoffs_ok"])
        + abs(memories - expected["memories_ok"])
        + max(0, open_sessions - abandoned),
    }


def _log_counts(path: Path) -> dict[str, int]:
    text = path.read_text(errors="replace") if path.exists() else ""
    return {
        "locked": sum(LOCKED in line for line in text.splitlines()),
        "tracebacks": text.count("Traceback (most recent call last)"),
    }


def _fmt_statuses(statuses: dict[str, int]) -> str:
    return ", ".join(f"{code}×{n}" for code, n in sorted(statuses.items())) or "none"


def _row(
    args: argparse.Namespace,
    console: dict[str, Any],
    bare: dict[str, Any],
    db: dict[str, int],
    logs: dict[str, dict[str, int]],
    load: dict[str, float],
    mode: str = "embedded",
) -> Row:
    config = _config(args)
    embedded = mode == "embedded"
    metrics = {
        key: console[key]
        for key in (
            "handoffs_per_s",
            "req_per_s",
            "p50_ms",
            "p99_ms",
            "handoff_p50_ms",
            "handoff_p99_ms",
            "errors",
            "locked",
            "server_cpu_ms",
        )
    }
    metrics["log_locked"] = logs["console"]["locked"]
    metrics["db_mismatch"] = db["mismatch"]
    baseline = {
        key: bare[key]
        for key in ("handoffs_per_s", "req_per_s", "p50_ms", "p99_ms", "errors", "server_cpu_ms")
    }
    baseline["locked"] = bare["locked"] + logs["bare"]["locked"]
    ok = (
        (
            not embedded
            or (
                console["handoffs_per_s"] >= TARGET_SHARE_OF_BARE * bare["handoffs_per_s"]
                and console["p99_ms"] < TARGET_P99_MS
            )
        )
        and console["errors"] == 0
        and console["locked"] == 0
        and logs["console"]["locked"] == 0
        and db["mismatch"] == 0
    )
    steps = ", ".join(f"{k} {v:.1f}" for k, v in console["step_p50_ms"].items())
    bare_steps = bare["step_p50_ms"]["start"]
    return Row(
        scenario="sustained_intake",
        variant=env.on_server(
            f"{config['bots']} bots, full seed flow (5 POSTs) per handoff"
            + (" (one process)" if embedded else f" ({SCALEOUT_PROCESSES} processes, PostgreSQL)")
        ),
        metrics=metrics,
        primary="handoffs_per_s",
        baseline=bare["handoffs_per_s"],
        baseline_label="bare Channels, 5 x (INSERT + group_send)"
        + ("" if embedded else f", {SCALEOUT_PROCESSES} processes, PostgreSQL + Redis"),
        baseline_metrics=baseline,
        target=(
            f"≥ {TARGET_SHARE_OF_BARE:.0%} of bare, POST p99 < {TARGET_P99_MS:g} ms"
            if embedded
            else "0 errors, whole"
        ),
        ok=ok,
        notes=(
            f"console {console['wall_s']:.0f}s between two bare runs of "
            f"{bare['wall_s'] / 2:.1f}s; {console['flows']} flows in "
            f"{console['wall_s']:.1f}s (bare {bare['flows']} in "
            f"{bare['wall_s']:.1f}s, {bare['handoffs_per_s']:.0f} flows/s); flow p50/p99 "
            f"{console['flow_p50_ms']:.0f}/{console['flow_p99_ms']:.0f}ms (bare "
            f"{bare['flow_p50_ms']:.0f}/{bare['flow_p99_ms']:.0f}ms); step p50 ms: {steps} "
            f"(bare {bare_steps:.1f}); statuses {_fmt_statuses(console['statuses'])} (bare "
            f"{_fmt_statuses(bare['statuses'])}); locked {console['locked']} in answers, "
            f"{logs['console']['locked']} log lines, {logs['console']['tracebacks']} tracebacks "
            f"in the log; server CPU per flow {console['server_cpu_ms']:.1f}ms (bare "
            f"{bare['server_cpu_ms']:.1f}ms); driver CPU {console['driver_cpu_pct']:.0f}% of a "
            f"core (bare {bare['driver_cpu_pct']:.0f}%); DB: {db['handoffs']} handoffs, "
            f"{db['memories']} memories, {db['sessions']} sessions ({db['open_sessions']} open), "
            f"mismatch {db['mismatch']}; load average {load['before']:.1f} → "
            f"{load['after']:.1f}{'; py-spy attached (perturbed)' if args.profile else ''}"
        ),
    )


# ---------------------------------------------------------------- the scenario
def _setup() -> str:
    """The bot's key and the team the handoffs go to, in the current database."""
    from handoffs.api.keys import bot_create
    from handoffs.models import Team

    _bot, key = bot_create(name=BOT)
    Team.objects.create(slug=TEAM, name="Bench billing")
    return key


def _drive_servers(
    args: argparse.Namespace,
    mode: str,
    key: str,
    consoles: list[env.Daphne],
    bares: list[env.Daphne],
    check_database,
) -> Row:
    config = _config(args)
    if mode != "embedded":
        config.update(seconds=config["scaleout_seconds"], bare_seconds=config["scaleout_seconds"])
    _log(
        args,
        f"{mode}: console on :{','.join(str(c.port) for c in consoles)}, bare Channels on "
        f":{','.join(str(b.port) for b in bares)}",
    )
    profile_out = (
        args.results_dir / "sustained_intake-console.txt"
        if args.profile and mode == "embedded"
        else ""
    )
    config.update(
        console={
            "name": "console",
            "urls": [c.url for c in consoles],
            "pids": [c.process.pid for c in consoles],
            "key": key,
        },
        bare={
            "name": "bare",
            "urls": [b.url for b in bares],
            "pids": [b.process.pid for b in bares],
            "key": "unused",
        },
        profile_out=str(profile_out),
    )
    driven = env.run_driver("bench.sustained_intake", config, silent=args.silent, what="driver")
    phases = driven["phases"]
    console_sum = _summary([phases["console"]])
    bare_sum = _summary([phases["bare_a"], phases["bare_b"]])
    db = check_database(console_sum)
    logs = {
        name: {
            key: sum(_log_counts(server.log_path)[key] for server in servers)
            for key in ("locked", "tracebacks")
        }
        for name, servers in (("console", consoles), ("bare", bares))
    }
    row = _row(args, console_sum, bare_sum, db, logs, driven["loadavg_1m"], mode)
    _log(
        args,
        f"{mode}: console {console_sum['handoffs_per_s']:.0f} handoffs/s "
        f"(POST p99 {console_sum['p99_ms']:.0f}ms), bare {bare_sum['handoffs_per_s']:.0f} "
        f"flows/s; errors {console_sum['errors']}, locked {console_sum['locked']}"
        f"+{logs['console']['locked']}, db mismatch {db['mismatch']}",
    )
    if profile_out:
        _log(args, f"py-spy profile in {profile_out}")
    return row


def run(args: argparse.Namespace) -> list[Row]:
    """Embedded (one Daphne on SQLite), then scale-out (two Daphnes on PostgreSQL and
    channels-redis, the bots split evenly between them; ``bench/scaleout.py``)."""
    env.fresh_database(args.workdir, "sustained_intake")
    from django.db import connections

    key = _setup()
    connections.close_all()  # the Daphne child owns the database from here
    with (
        env.Daphne(args.workdir, "sustained-intake") as console,
        BareDaphne(args.workdir) as bare,
    ):
        rows = [_drive_servers(args, "embedded", key, [console], [bare], _check_database)]
    why_not = scaleout.available()
    if why_not:
        _log(args, f"scale-out variant not run: PostgreSQL or Redis unavailable ({why_not})")
        return rows
    with scaleout.ScaleOut(args.workdir, "intake") as cluster:
        key = cluster.call("bench.sustained_intake:_setup")
        consoles = cluster.consoles(SCALEOUT_PROCESSES)
        bares = cluster.bares(SCALEOUT_PROCESSES)
        rows.append(
            _drive_servers(
                args,
                "scaleout",
                key,
                consoles,
                bares,
                lambda expected: cluster.call("bench.sustained_intake:_check_database", expected),
            )
        )
    return rows


# ---------------------------------------------------------------- standalone
def main(argv: list[str] | None = None) -> int:
    """``python -m bench.sustained_intake``: this scenario alone (``env.standalone``)."""
    return env.standalone("sustained_intake", run, _drive, argv)


if __name__ == "__main__":
    raise SystemExit(main())
