"""``python -m bench``: run the benchmark scenarios, print a table, write JSON.

.venv/bin/python -m bench                 # every scenario (make bench; under 10 minutes)
.venv/bin/python -m bench --quick         # smoke run (about 3 minutes)
.venv/bin/python -m bench --only recall   # a subset (comma-separated or repeated)
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from .cli import parse_args
from .core import BACKGROUND, SCENARIOS, Row, table, write_json


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.workdir = Path(tempfile.mkdtemp(prefix="handoff-bench-", dir="/tmp"))
    started = time.perf_counter()
    started_at = dt.datetime.now(dt.UTC)

    from . import env

    env.setup_django(args.workdir)  # before any scenario module imports models
    rows: list[Row] = []
    timings: dict[str, float] = {}
    loads: dict[str, tuple[float, float]] = {}
    background: dict[str, tuple[object, float, float]] = {}
    try:
        foreground = [n for n in args.scenarios if n not in BACKGROUND]
        for name in args.scenarios:
            if name in BACKGROUND and foreground:
                # Started first; the foreground runs once its sockets are open (the
                # busy part), so the two don't skew each other's numbers.
                if not args.silent:
                    print(f"== {name} (in the background)", flush=True)
                module = importlib.import_module(SCENARIOS[name])
                began, load_before = time.perf_counter(), os.getloadavg()[0]
                handle = module.start(args)
                module.wait_opened(handle)
                background[name] = (handle, began, load_before)
        for name in foreground or args.scenarios:
            if not args.silent:
                print(f"== {name}", flush=True)
            module = importlib.import_module(SCENARIOS[name])
            scenario_started = time.perf_counter()
            load_before = os.getloadavg()[0]
            rows.extend(module.run(args))
            timings[name] = round(time.perf_counter() - scenario_started, 1)
            loads[name] = (round(load_before, 2), round(os.getloadavg()[0], 2))
        for name, (handle, began, load_before) in list(background.items()):
            if not args.silent:
                print(f"== {name}: collecting", flush=True)
            del background[name]
            rows.extend(importlib.import_module(SCENARIOS[name]).finish(handle))
            timings[name] = round(time.perf_counter() - began, 1)
            loads[name] = (round(load_before, 2), round(os.getloadavg()[0], 2))
    finally:
        for name, (handle, _started, _load) in background.items():  # a scenario failed
            importlib.import_module(SCENARIOS[name]).abort(handle)
        from django.db import connections

        connections.close_all()
        if args.keep:
            print(f"work directory kept: {args.workdir}")
        else:
            shutil.rmtree(args.workdir, ignore_errors=True)

    wall = time.perf_counter() - started
    meta = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "wall_s": round(wall, 1),
        "scenario_wall_s": timings,
        # 1-minute load average before and after each scenario: other work on the
        # machine inflates latencies, so read the numbers next to it.
        "loadavg_1m": loads,
        "quick": args.quick,
        "scenarios": args.scenarios,
        "seed": args.seed,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "processor": _cpu_model(),
            "python": sys.version.split()[0],
            "sqlite": sqlite3.sqlite_version,
        },
        "settings": {
            "DJANGO_DEBUG": os.environ.get("DJANGO_DEBUG"),
            "database": "sqlite (WAL); intake_fanout's scale-out rows: " + _services(),
        },
    }
    write_json(args.json, rows, meta)
    print()
    print(table(rows))
    print()
    machine = meta["machine"]
    print(
        f"{machine['cpus']} CPUs ({machine['processor']}), Python {machine['python']}, "
        f"SQLite {machine['sqlite']}; wall time {wall:.0f}s; results in {args.json}"
    )
    print(
        "1-min load average before/after: "
        + ", ".join(f"{name} {a:g}/{b:g}" for name, (a, b) in loads.items())
    )
    missed = [f"{r.scenario}: {r.variant}" for r in rows if r.ok is False]
    if missed:
        print("targets missed: " + "; ".join(missed))
    return 1 if missed and args.strict else 0


def _services() -> str:
    """The PostgreSQL and Redis versions the scale-out rows ran on."""
    from . import scaleout

    try:
        import psycopg
        import redis

        with psycopg.connect(scaleout.ADMIN_URL, connect_timeout=3) as conn:
            pg = conn.execute("SHOW server_version").fetchone()[0]
        info = redis.Redis.from_url(scaleout.REDIS_BASE, socket_timeout=3).info("server")
        return f"PostgreSQL {pg.split()[0]}, Redis {info['redis_version']}"
    except Exception as exc:  # noqa: BLE001 - only a label
        return f"PostgreSQL/Redis unavailable ({exc.__class__.__name__})"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
