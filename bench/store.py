"""store: memories/s through the memory API on a live Daphne, one and many clients.

Each client is a thread with its own keep-alive ``httpx.Client`` sending requests back
to back for a fixed time: ``POST /v1/memory/store`` (one memory per request) and
``POST /v1/memories/store/batch`` (``BATCH`` memories per request). The baseline is a
bare JSON round trip, ``GET /health/live``, at the same concurrency on the same Daphne,
measured in the same run; the ratio is memories/s over bare requests/s. Any non-2xx
answer counts as an error ("database is locked" ones are counted separately).

The clients share the machine's two cores with Daphne, as a co-located bot would.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from . import env
from .core import Row, latency_metrics
from .intake_fanout import _cpu_s
from .textgen import TextGen

BATCH = 100
CONCURRENCY = (1, 8)


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    errors: int = 0
    locked: int = 0
    server_cpu_s: float = 0.0


def _drive(
    *,
    url: str,
    key: str,
    method: str,
    path: str,
    bodies: list[list[bytes]],
    seconds: float,
    server_pid: int,
) -> tuple[list[Tally], float]:
    """``len(bodies)`` clients hammer ``path`` for ``seconds``; per-client tallies."""
    tallies = [Tally() for _ in bodies]
    ready = threading.Barrier(len(bodies) + 1)
    deadline: list[float] = []
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def client(index: int) -> None:
        tally, mine = tallies[index], bodies[index]
        with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
            http.get("/health/live")  # open the keep-alive connection before the clock
            ready.wait()
            clock, i = time.perf_counter, 0
            while clock() < deadline[0]:
                started = clock()
                try:
                    response = http.request(method, path, content=mine[i % len(mine)])
                except httpx.HTTPError:
                    tally.errors += 1
                    continue
                finally:
                    i += 1
                tally.latencies.append(clock() - started)
                if response.is_success:
                    tally.ok += 1
                else:
                    tally.errors += 1
                    tally.locked += "database is locked" in response.text

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    deadline.append(time.perf_counter() + seconds + 0.05)
    cpu_before = _cpu_s(server_pid)
    started = time.perf_counter()
    ready.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    tallies[0].server_cpu_s = _cpu_s(server_pid) - cpu_before
    return tallies, elapsed


def _summary(tallies: list[Tally], elapsed: float, per_request: int) -> dict[str, float]:
    latencies = [s for t in tallies for s in t.latencies]
    ok = sum(t.ok for t in tallies)
    lat = latency_metrics(latencies)
    answered = sum(len(t.latencies) for t in tallies)
    return {
        "mem_per_s": ok * per_request / elapsed,
        "req_per_s": ok / elapsed,
        "p50_ms": lat["p50_ms"],
        "p99_ms": lat["p99_ms"],
        # The server process's CPU (user + system, all threads) per answered request:
        # what a busy neighbour on a shared machine moves least.
        "server_cpu_ms": sum(t.server_cpu_s for t in tallies) / max(answered, 1) * 1000,
        "errors": sum(t.errors for t in tallies),
        "locked": sum(t.locked for t in tallies),
        "n": ok,
    }


def _bodies(gen: TextGen, clients: int, per_client: int, batch: int | None) -> list[list[bytes]]:
    """Pre-serialised request bodies, so the clients spend no time generating text."""
    out = []
    for c in range(clients):
        agent_id = f"bench-store-{'b' if batch else 's'}{clients}-{c}"
        mine = []
        for _ in range(per_client):
            if batch:
                body: dict[str, Any] = {
                    "agent_id": agent_id,
                    "memories": list(gen.memories(batch)),
                }
            else:
                body = {"agent_id": agent_id, **gen.memory()}
            mine.append(json.dumps(body).encode())
        out.append(mine)
    return out


def _log(args: argparse.Namespace, message: str) -> None:
    if not args.silent:
        print(f"  [store] {message}", flush=True)


def run(args: argparse.Namespace) -> list[Row]:
    seconds = 1.0 if args.quick else 4.0
    env.fresh_database(args.workdir, "store")
    key = env.bot_key()
    gen = TextGen(seed=args.seed + 7)
    rows: list[Row] = []
    with env.Daphne(args.workdir, "store") as server:
        for clients in CONCURRENCY:
            live_bodies = [[b""] for _ in range(clients)]
            tallies, elapsed = _drive(
                url=server.url,
                key=key,
                method="GET",
                path="/health/live",
                bodies=live_bodies,
                seconds=seconds,
                server_pid=server.process.pid,
            )
            bare = _summary(tallies, elapsed, 1)
            bare.pop("mem_per_s")
            _log(args, f"bare GET /health/live x{clients}: {bare['req_per_s']:.0f} req/s")
            for variant, path, batch in (
                ("POST /v1/memory/store", "/v1/memory/store", None),
                (f"POST batch of {BATCH}", "/v1/memories/store/batch", BATCH),
            ):
                bodies = _bodies(gen, clients, 40 if batch else 400, batch)
                tallies, elapsed = _drive(
                    url=server.url,
                    key=key,
                    method="POST",
                    path=path,
                    bodies=bodies,
                    seconds=seconds,
                    server_pid=server.process.pid,
                )
                metrics = _summary(tallies, elapsed, batch or 1)
                rows.append(
                    Row(
                        scenario="store",
                        variant=env.on_server(
                            f"{variant}, {clients} client{'s' if clients > 1 else ''}"
                        ),
                        metrics=metrics,
                        primary="mem_per_s",
                        baseline=bare["req_per_s"],
                        baseline_label="GET /health/live",
                        baseline_metrics=bare,
                        notes=(
                            f"{seconds:g}s run; ratio = memories/s over bare requests/s; "
                            f"server CPU per request {metrics['server_cpu_ms']:.2f} ms (bare "
                            f"{bare['server_cpu_ms']:.2f} ms); "
                            f"{metrics['errors']:.0f} errors ({metrics['locked']:.0f} locked)"
                        ),
                    )
                )
                _log(args, f"{rows[-1].variant}: {metrics['mem_per_s']:.0f} memories/s")
    return rows
