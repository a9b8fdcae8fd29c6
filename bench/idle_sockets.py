"""idle_sockets: 1,000 agents' queue sockets open and idle for 5 minutes.

One fresh SQLite file, one team, 1,000 agent users, each signed in with a Django
session made in this process (``intake_fanout._create_agents``). The console runs in
one Daphne (``console.asgi``, Daphne's defaults: a keep-alive ping every 20 s, closed
if unanswered for 30 s). A driver child process (``python -m bench.idle_sockets
--drive``, autobahn's asyncio client, no Django; see ``intake_fanout``) opens 1,000
``/ws/queue/`` sockets, each waiting for its snapshot, keeps them open and idle for the
duration (300 s; ``--quick``: 20 s; the client answers the server's pings and sends
none), then checks that every one is still alive: a bot POSTs one handoff memory to
``/v1/memory/store`` and the driver counts the sockets that receive its queue row.

Measured: disconnects while idle (sockets the server closed, or that errored), sockets
alive at the end, the Daphne process's RSS (``VmRSS``) before opening and with all
sockets open (memory per socket = delta / 1,000; also its peak while idle and at the
end, to show growth), the server's CPU while idle (user + system, from /proc: Daphne's
pings and its once-a-second sweep of every connection), how long opening the 1,000
sockets took, each connect's latency (TCP connect → snapshot received), the CPU per
connect and the handshakes the server dropped (Daphne rejects a socket its
application has not accepted within 5 s; the driver retries those).

Before the "before" RSS, a few sockets are opened and closed once so that imports,
template compilation and caches the first connect loads are not billed to the sockets.

Baseline, same run: ``bench/bare_asgi.py`` in a second Daphne (its own SQLite file),
1,000 ``/ws/bare/`` sockets (joined to one group, ``snapshot`` on connect), the same
measurements. The bare sockets are opened first (seconds), then the console's, so the
two open times don't overlap; then both sets idle **at the same time**, over the same
window, in the same driver, which halves the scenario's wall time and puts the same
background noise on both. The alive check POSTs to each server in turn.

Running in the background: ``start(args)`` sets up the database, starts both Daphnes
and the driver (``Popen``) and returns at once (~3 s); ``finish(handle)`` waits for the
driver, stops the servers and returns the rows; ``run(args) = finish(start(args))``.
``wait_opened(handle)`` (optional) returns once all sockets are open and the idle
window has begun, ~30 s after ``start``: the open phase is the busy part (about 15 ms
of the console's CPU per connect); the idle window costs ~0.5 % of a core.
Both servers have their database path fixed when ``start`` returns, so a later
scenario's ``env.fresh_database`` does not touch them. While other scenarios run on the
same (2-core) machine, open time, connect latency and the alive check's fan-out are
slower; disconnects, memory per socket and idle CPU barely move.

Target (issue 3, implicit): zero disconnects and all 1,000 sockets alive at the end.
``--profile``: py-spy (if installed) samples the console's Daphne, all threads, while it
opens the 1,000 sockets, into ``bench/results/idle_sockets-connect.txt`` (collapsed stacks).

``python -m bench --only idle_sockets``, or standalone:
``.venv/bin/python -m bench.idle_sockets [--quick] [--keep]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from . import env, ws
from .core import Row, percentile
from .env import BareDaphne
from .intake_fanout import (
    BOT,
    _console_body,
    _cpu_s,
    _create_agents,
)

SOCKETS = 1000
IDLE_S = 300.0
QUICK_IDLE_S = 20.0
WARMUP_SOCKETS = 5
# Opening handshakes in flight at once per server. Each console connect runs its auth,
# presence change and queue snapshot on Django's single thread-sensitive executor, so
# more in flight only queues there (and past Daphne's 5 s connect timeout, drops).
CONNECT_CONCURRENCY = {"console": 4, "bare": 16}
CONNECT_ATTEMPTS = 5
ALIVE_TIMEOUT_S = 60.0
SAMPLE_EVERY_S = 5.0
DRIVER_TIMEOUT_S = 1800.0


def _config(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "sockets": SOCKETS,
        "idle_s": QUICK_IDLE_S if args.quick else IDLE_S,
        "warmup": WARMUP_SOCKETS,
        "concurrency": CONNECT_CONCURRENCY,
    }


def _log(args: argparse.Namespace, message: str) -> None:
    if not args.silent:
        print(f"  [idle_sockets] {message}", flush=True)


def _rss_kb(pid: int) -> int:
    """Resident set size of a process, in kB (``VmRSS`` in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


# ---------------------------------------------------------------- the driver (child process)
@dataclass
class Fleet:
    """One server's sockets and what happened to them."""

    name: str
    port: int
    path: str
    sockets: list = field(default_factory=list)
    connect_s: list[float] = field(default_factory=list)
    dropped: int = 0
    closed: list[tuple[float, int | None, str | None]] = field(default_factory=list)
    marker: bytes = b""
    received: dict[int, float] = field(default_factory=dict)  # id(socket) -> when
    all_received: asyncio.Future | None = None
    idle_since: float = 0.0

    def hit(self, socket: Any, payload: bytes) -> None:
        if not self.marker or self.marker not in payload or id(socket) in self.received:
            return
        self.received[id(socket)] = time.perf_counter()
        done = self.all_received
        if len(self.received) == len(self.sockets) and done is not None and not done.done():
            done.set_result(None)


async def _open(fleet: Fleet, cookies: list[str | None], concurrency: int) -> None:
    """Open one socket per cookie, at most ``concurrency`` handshakes in flight; each is
    open once its snapshot has arrived. Dropped handshakes are retried with back-off."""
    gate = asyncio.Semaphore(concurrency)

    def dropped() -> None:
        fleet.dropped += 1

    def closed(socket: Any, code: int | None, reason: str | None) -> None:
        if not getattr(socket, "closing_on_purpose", False):
            fleet.closed.append((time.perf_counter(), code, reason))

    async def one(cookie: str | None) -> Any:
        # Patient opening handshakes too, so only the server decides to drop one.
        made = ws.factory(
            fleet.port, fleet.path, cookie, ws.snapshot_socket_class(), openHandshakeTimeout=120
        )
        made.on_event, made.on_closed = fleet.hit, closed
        socket = await ws.open_snapshot_socket(
            made,
            fleet.port,
            gate=gate,
            attempts=CONNECT_ATTEMPTS,
            ready_timeout=120,
            on_dropped=dropped,
        )
        fleet.connect_s.append(socket.connect_s)
        return socket

    fleet.sockets = list(await asyncio.gather(*(one(c) for c in cookies)))


async def _close(sockets: list) -> None:
    for socket in sockets:
        socket.closing_on_purpose = True
        socket.sendClose(1000)
    await asyncio.sleep(0.5)


async def _alive(
    http: httpx.AsyncClient, fleet: Fleet, url: str, body: bytes, headers: dict[str, str]
) -> dict[str, float]:
    """POST one event; how many of the fleet's sockets received it, and how fast."""
    fleet.marker = json.loads(body)["marker"].encode()
    fleet.received = {}
    fleet.all_received = asyncio.get_running_loop().create_future()
    started = time.perf_counter()
    response = await http.post(url, content=body, headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"POST {url} answered {response.status_code}: {response.text[:300]}")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(fleet.all_received), ALIVE_TIMEOUT_S)
    times = sorted(fleet.received.values())
    return {
        "alive": float(len(times)),
        "fanout_first_ms": (times[0] - started) * 1000 if times else float("nan"),
        "fanout_last_ms": (times[-1] - started) * 1000 if times else float("nan"),
    }


async def _drive(config: dict[str, Any]) -> dict[str, Any]:
    n, idle_s, pids = config["sockets"], config["idle_s"], config["pids"]
    console = Fleet("console", config["console_port"], "/ws/queue/")
    bare = Fleet("bare", config["bare_port"], "/ws/bare/")
    fleets = {"console": console, "bare": bare}
    cookies = {"console": list(config["cookies"][:n]), "bare": [None] * n}
    out: dict[str, Any] = {"console": {}, "bare": {}}

    def say(message: str) -> None:
        print(f"  [idle_sockets] {message}", file=sys.stderr, flush=True)

    async with httpx.AsyncClient(timeout=120) as http:
        # Warm-up: the first connects import and compile what every later one reuses.
        for name, fleet in fleets.items():
            warm = Fleet(name, fleet.port, fleet.path)
            await _open(warm, cookies[name][: config["warmup"]], 2)
            await _close(warm.sockets)
            await ws.settle(http, [fleet.port])
        for name in fleets:
            out[name]["rss_before_kb"] = _rss_kb(pids[name])

        # Open: bare first (seconds), then the console, so the open times don't overlap.
        for name in ("bare", "console"):
            fleet = fleets[name]
            spy = (  # --profile: the console's connect path
                env.start_py_spy(
                    pids[name], Path(config["profile_dir"]) / "idle_sockets-connect.txt"
                )
                if name == "console" and config.get("profile_dir")
                else None
            )
            cpu_before, started = _cpu_s(pids[name]), time.perf_counter()
            await _open(fleet, cookies[name], config["concurrency"][name])
            opened = time.perf_counter() - started
            env.stop_py_spy(spy)
            await ws.settle(http, [fleet.port])
            out[name].update(
                open_s=opened,
                connect_cpu_ms=(_cpu_s(pids[name]) - cpu_before) / n * 1000,
                connect_p50_ms=percentile(fleet.connect_s, 50) * 1000,
                connect_p99_ms=percentile(fleet.connect_s, 99) * 1000,
                dropped=fleet.dropped,
            )
            say(f"{n} {name} sockets open in {opened:.1f}s ({fleet.dropped} handshakes dropped)")

        Path(config["opened_path"]).touch()  # for wait_opened()
        # Idle: both fleets at once, over the same window.
        for name in fleets:
            out[name]["rss_open_kb"] = _rss_kb(pids[name])
            out[name]["rss_peak_kb"] = out[name]["rss_open_kb"]
        cpu_idle = {name: _cpu_s(pids[name]) for name in fleets}
        idle_started = time.perf_counter()
        deadline = idle_started + idle_s
        next_report = idle_started + 60
        while (now := time.perf_counter()) < deadline:
            await asyncio.sleep(min(SAMPLE_EVERY_S, deadline - now))
            for name in fleets:
                rss = _rss_kb(pids[name])
                out[name]["rss_peak_kb"] = max(out[name]["rss_peak_kb"], rss)
            if time.perf_counter() >= next_report:
                next_report += 60
                say(
                    f"idle {time.perf_counter() - idle_started:.0f}s: disconnects console "
                    f"{len(console.closed)}, bare {len(bare.closed)}"
                )
        idled = time.perf_counter() - idle_started
        for name, fleet in fleets.items():
            used = _cpu_s(pids[name]) - cpu_idle[name]
            out[name].update(
                idle_s=idled,
                idle_cpu_pct=used / idled * 100,
                rss_end_kb=_rss_kb(pids[name]),
                disconnects=len(fleet.closed),
                close_codes=sorted({str(code) for _t, code, _r in fleet.closed}),
            )

        # Alive: one event to every socket of each server.
        out["console"].update(
            await _alive(
                http,
                console,
                f"http://127.0.0.1:{console.port}/v1/memory/store",
                _console_body(n, 0),
                {"Authorization": f"Bearer {config['key']}", "Content-Type": "application/json"},
            )
        )
        bare_body = json.dumps({"marker": f"bare-alive-{os.urandom(3).hex()}", "html": ""})
        out["bare"].update(
            await _alive(
                http,
                bare,
                f"http://127.0.0.1:{bare.port}/bare/post",
                bare_body.encode(),
                {"Content-Type": "application/json"},
            )
        )
        for name, fleet in fleets.items():
            # Closed after the idle window but before the check: count them too.
            out[name]["disconnects"] = len(fleet.closed)
            say(
                f"{name}: {out[name]['disconnects']} disconnects, {out[name]['alive']:.0f}/{n} "
                f"alive (last receipt {out[name]['fanout_last_ms']:.0f}ms after the POST)"
            )
    # The servers are stopped next: the sockets go with the process.
    return out


# ---------------------------------------------------------------- rows
def _rows(args: argparse.Namespace, driven: dict[str, Any], config: dict[str, Any]) -> list[Row]:
    n = config["sockets"]
    metrics, baseline = {}, {}
    for name, into in (("console", metrics), ("bare", baseline)):
        result = driven[name]
        into.update(
            disconnects=float(result["disconnects"]),
            alive=result["alive"],
            rss_per_socket_kb=(result["rss_open_kb"] - result["rss_before_kb"]) / n,
            rss_growth_idle_kb=float(result["rss_end_kb"] - result["rss_open_kb"]),
            idle_cpu_pct=result["idle_cpu_pct"],
            fanout_last_ms=result["fanout_last_ms"],
        )
    load = os.getloadavg()
    ok = metrics["disconnects"] == 0 and metrics["alive"] == n
    c, b = driven["console"], driven["bare"]
    common = (
        f"idle {c['idle_s']:.0f}s, console and bare at the same time; RSS before "
        f"{c['rss_before_kb'] / 1024:.0f} MB → open {c['rss_open_kb'] / 1024:.0f} MB → peak "
        f"{c['rss_peak_kb'] / 1024:.0f} MB → end {c['rss_end_kb'] / 1024:.0f} MB (bare "
        f"{b['rss_before_kb'] / 1024:.0f} → {b['rss_open_kb'] / 1024:.0f} → "
        f"{b['rss_peak_kb'] / 1024:.0f} → {b['rss_end_kb'] / 1024:.0f} MB); "
    )
    rows = [
        Row(
            scenario="idle_sockets",
            variant=f"{n} idle queue sockets, {c['idle_s']:.0f}s: memory per socket",
            metrics=metrics,
            primary="rss_per_socket_kb",
            baseline=baseline["rss_per_socket_kb"],
            baseline_label="bare Channels /ws/bare/",
            baseline_metrics=baseline,
            target=f"0 disconnects, {n} alive",
            ok=ok,
            notes=(
                common + f"idle CPU {metrics['idle_cpu_pct']:.2f}% of a core (bare "
                f"{baseline['idle_cpu_pct']:.2f}%); disconnects {int(metrics['disconnects'])} "
                f"(codes {', '.join(c['close_codes']) or '-'}; bare "
                f"{int(baseline['disconnects'])}); alive check: one POST, last of {n} "
                f"receipts after {metrics['fanout_last_ms']:.0f}ms (bare "
                f"{baseline['fanout_last_ms']:.0f}ms); load average {load[0]:.1f}"
            ),
        )
    ]
    opening, opening_base = {}, {}
    for result, into in ((c, opening), (b, opening_base)):
        into.update(
            open_s=result["open_s"],
            connect_p50_ms=result["connect_p50_ms"],
            connect_p99_ms=result["connect_p99_ms"],
            connect_cpu_ms=result["connect_cpu_ms"],
            dropped=float(result["dropped"]),
        )
    rows.append(
        Row(
            scenario="idle_sockets",
            variant=f"opening {n} queue sockets",
            metrics=opening,
            primary="open_s",
            baseline=opening_base["open_s"],
            baseline_label="bare Channels /ws/bare/",
            baseline_metrics=opening_base,
            notes=(
                f"at most {config['concurrency']['console']} console handshakes in flight "
                f"(bare {config['concurrency']['bare']}); connect = TCP connect → snapshot "
                f"received, p50 {opening['connect_p50_ms']:.0f} / p99 "
                f"{opening['connect_p99_ms']:.0f}ms (bare {opening_base['connect_p50_ms']:.1f}"
                f" / {opening_base['connect_p99_ms']:.1f}ms); server CPU per connect "
                f"{opening['connect_cpu_ms']:.1f}ms (bare {opening_base['connect_cpu_ms']:.1f}"
                f"ms); {int(opening['dropped'])} handshakes dropped and retried (bare "
                f"{int(opening_base['dropped'])}); load average {load[0]:.1f}"
            ),
        )
    )
    _log(
        args,
        f"console: {int(metrics['disconnects'])} disconnects, {metrics['alive']:.0f}/{n} alive, "
        f"{metrics['rss_per_socket_kb']:.1f} kB/socket, opened in {opening['open_s']:.1f}s; "
        f"bare: {int(baseline['disconnects'])} disconnects, {baseline['alive']:.0f}/{n} alive, "
        f"{baseline['rss_per_socket_kb']:.1f} kB/socket, opened in {opening_base['open_s']:.1f}s",
    )
    return rows


# ---------------------------------------------------------------- the scenario
@dataclass
class Handle:
    """A started run: its servers, its driver, where the driver's output goes."""

    args: argparse.Namespace
    config: dict[str, Any]
    console: env.Daphne
    bare: BareDaphne
    driver: subprocess.Popen
    out_path: Path
    err_path: Path
    started: float


def start(args: argparse.Namespace) -> Handle:
    """Set up the database, start both Daphnes and the driver; return without waiting."""
    env.fresh_database(args.workdir, "idle_sockets")
    from django.db import connections

    from handoffs.api.keys import bot_create

    config = _config(args)
    started = time.perf_counter()
    _bot, key = bot_create(name=BOT)
    cookies = _create_agents(config["sockets"])
    connections.close_all()  # the Daphne children own the database from here
    console = env.Daphne(args.workdir, "idle-sockets")
    bare = BareDaphne(args.workdir)
    bare.db_path = args.workdir / "idle-sockets-bare.sqlite3"  # not shared with others
    with contextlib.ExitStack() as on_error:
        on_error.enter_context(console)  # SQLITE_PATH is read here, once
        on_error.enter_context(bare)
        _log(
            args,
            f"{config['sockets']} agents set up, console on :{console.port}, bare Channels on "
            f":{bare.port} in {time.perf_counter() - started:.1f}s; the driver runs "
            f"~{config['idle_s'] + 40:.0f}s",
        )
        config.update(
            console_port=console.port,
            bare_port=bare.port,
            key=key,
            cookies=cookies,
            pids={"console": console.process.pid, "bare": bare.process.pid},
            profile_dir=str(args.results_dir) if args.profile else "",
        )
        out_path = args.workdir / "idle-sockets-driver.json"
        config["opened_path"] = str(args.workdir / "idle-sockets-opened")
        err_path = args.workdir / "idle-sockets-driver.log"
        child_env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            driver = subprocess.Popen(  # noqa: S603 - our own module, this interpreter
                [sys.executable, "-m", "bench.idle_sockets", "--drive"],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
                cwd=env.ROOT,
                env=child_env,
            )
        assert driver.stdin is not None
        driver.stdin.write(json.dumps(config).encode())
        driver.stdin.close()
        on_error.pop_all()  # started: finish() stops them
    return Handle(args, config, console, bare, driver, out_path, err_path, time.perf_counter())


def wait_opened(handle: Handle, timeout: float = 600.0) -> bool:
    """Optional: block until all 2,000 sockets are open and the idle window has begun.

    Opening keeps the console's Daphne and the driver busy for ~30 s on 2 cores; a runner
    that starts other scenarios only after this keeps that out of their numbers (and
    theirs out of the open time). False if the driver ended first or ``timeout`` passed.
    """
    deadline = time.monotonic() + timeout
    opened = Path(handle.config["opened_path"])
    while time.monotonic() < deadline:
        if opened.exists():
            return True
        if handle.driver.poll() is not None:
            return False
        time.sleep(0.2)
    return False


def finish(handle: Handle) -> list[Row]:
    """Wait for the driver, stop both servers, return the rows."""
    try:
        try:
            handle.driver.wait(timeout=DRIVER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            handle.driver.kill()
            handle.driver.wait()
        log = handle.err_path.read_text()
        if not handle.args.silent:
            sys.stderr.write(log)
        if handle.driver.returncode != 0:
            raise RuntimeError(f"the idle-sockets driver failed:\n{log[-3000:]}")
        driven = json.loads(handle.out_path.read_text())
    finally:
        stopping = time.perf_counter()
        handle.console.stop()
        handle.bare.stop()
        _log(
            handle.args,
            f"collected {stopping - handle.started:.0f}s after start(); servers stopped in "
            f"{time.perf_counter() - stopping:.1f}s",
        )
    return _rows(handle.args, driven, handle.config)


def abort(handle: Handle) -> None:
    """Stop the driver and both servers without collecting (the run failed elsewhere)."""
    if handle.driver.poll() is None:
        handle.driver.kill()
        handle.driver.wait()
    handle.console.stop()
    handle.bare.stop()


def run(args: argparse.Namespace) -> list[Row]:
    return finish(start(args))


# ---------------------------------------------------------------- standalone
def main(argv: list[str] | None = None) -> int:
    """``python -m bench.idle_sockets``: this scenario alone (``env.standalone``)."""
    return env.standalone("idle_sockets", run, _drive, argv)


if __name__ == "__main__":
    raise SystemExit(main())
