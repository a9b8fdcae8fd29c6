"""recall: latency of ``EmbeddedStore().recall`` as namespaces and the table grow.

Two phases on one fresh SQLite file:

1. namespaces of 1,000 and 10,000 memories, alone in the table (11,000 rows);
2. the table grown to 1,000,000 rows (``--quick``: 50,000) by namespaces of about
   1,000 memories each (their text drawn from a pool of 50,000 generated memories),
   plus a fresh 1,000- and 10,000-memory namespace whose rows are spread evenly
   through that load, as a namespace that grew alongside the others is.

Each measured namespace is recalled with a handful of different queries (``top_k=5``),
in process (the store call; wall and this thread's CPU time) and over HTTP
(``POST /v1/memory/recall`` on a live Daphne). The baselines run alternately with the
measured calls: the bare full-text match for the same recall (the ``OR`` of the store's
own per-term ``MATCH`` expressions, captured from the database layer, in one plain
``SELECT rowid ... MATCH``, run alone through the DB-API connection on the same data;
see ``_fts_sql``) and a bare ``GET /health/live`` round trip on the same Daphne.
Target (issue 2): p99 < 20 ms for the 10,000-memory namespace. When it is missed, or
with ``--profile``, a cProfile of in-process recalls goes to ``recall-profile.txt``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import pstats
import random
import statistics
import time
from collections.abc import Iterator
from typing import Any

import httpx
from django.db import connection

from handoffs.memory.embedded import EmbeddedStore

from . import data, env
from .core import Row, cpu_metrics, latency_metrics, time_pair
from .textgen import QUERIES, TextGen

TARGET_P99_MS = 20.0
TOP_K = 5


def _config(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:  # a smoke run: every code path once, numbers only indicative
        return {
            "total": 50_000,
            "pool": 10_000,
            "samples": 60,
            "http_samples": 60,
            "warmup": 3,
            "max_seconds": 1.0,
            "min_count": 20,
            "profile_calls": 20,
        }
    return {
        "total": 1_000_000,
        "pool": 50_000,
        "samples": 400,
        "http_samples": 300,
        "warmup": 20,
        "max_seconds": 2.0,
        "min_count": 100,
        "profile_calls": 100,
    }


def _fts_sql(store: EmbeddedStore, agent_id: str, query: str) -> tuple[str, list[Any]]:
    """The bare full-text query for this recall: one ``MATCH`` of the ``OR`` of the
    store's own per-term expressions, returning rowids only.

    The store reads each term's matches in one statement (a ``MATCH`` per term, see
    ``lexical._sqlite_candidates``); the expressions are captured from the database
    layer, so the baseline follows any change to ``lexical`` by itself. Their ``OR`` in
    a single plain ``MATCH`` is the least any full-text recall of these words does:
    finding the matching memories, with no scoring and no rows read."""
    seen: list[tuple[str, list[Any]]] = []

    def capture(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if "memory_fts" in sql and "MATCH" in sql:
            seen.append((sql, list(params or ())))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        store.search(agent_id=agent_id, query=query, top_k=TOP_K)
    if len(seen) != 1:
        raise AssertionError(f"expected one full-text statement per recall, saw {len(seen)}")
    sql, params = seen[0]
    phrases = [p for p in params if isinstance(p, str) and p.startswith("body:")]
    if sql.count("MATCH") != len(phrases):
        raise AssertionError("expected one body: expression per MATCH")
    return "SELECT rowid FROM memory_fts WHERE memory_fts MATCH ?", [" OR ".join(phrases)]


def _fts_hits(fts: list[tuple[str, list[Any]]]) -> list[int]:
    """How many indexed memories each query's MATCH expression matches."""
    raw = connection.connection
    sql = "SELECT COUNT(*) FROM memory_fts WHERE memory_fts MATCH ?"
    return [raw.execute(sql, params).fetchone()[0] for _sql, params in fts]


def _measure(
    *,
    label: str,
    agent_id: str,
    size: int,
    client: httpx.Client,
    cfg: dict[str, Any],
) -> list[Row]:
    store = EmbeddedStore()
    connection.ensure_connection()
    raw = connection.connection
    fts = [_fts_sql(store, agent_id, q) for q in QUERIES]

    def recall(i: int) -> None:
        body = store.recall(agent_id=agent_id, query=QUERIES[i % len(QUERIES)], top_k=TOP_K)
        assert body["memories"], "recall returned nothing"

    def raw_match(i: int) -> None:
        sql, params = fts[i % len(fts)]
        raw.execute(sql, params).fetchall()

    def http_recall(i: int) -> None:
        response = client.post(
            "/v1/memory/recall",
            json={"agent_id": agent_id, "query": QUERIES[i % len(QUERIES)], "top_k": TOP_K},
        )
        response.raise_for_status()

    def http_live(i: int) -> None:
        client.get("/health/live").raise_for_status()

    hits = _fts_hits(fts)
    notes = (
        f"{size} memories in namespace; FTS matches per query mean "
        f"{statistics.fmean(hits):.0f}, max {max(hits)}; top_k={TOP_K}"
    )
    is_target = size >= 10_000
    rows = []
    for how, measured, baseline, base_label, count in (
        ("in-process", recall, raw_match, "raw FTS5 OR MATCH, rowids", cfg["samples"]),
        ("HTTP", http_recall, http_live, "GET /health/live", cfg["http_samples"]),
    ):
        # In process, also this thread's CPU time per call: on a shared machine it moves
        # far less than wall time when other processes compete for the cores.
        measured_cpu: list[float] | None = [] if how == "in-process" else None
        baseline_cpu: list[float] | None = [] if how == "in-process" else None
        measured_s, baseline_s = time_pair(
            measured,
            baseline,
            count,
            cfg["warmup"],
            max_seconds=cfg["max_seconds"],
            min_count=cfg["min_count"],
            measured_cpu=measured_cpu,
            baseline_cpu=baseline_cpu,
        )
        metrics, base = latency_metrics(measured_s), latency_metrics(baseline_s)
        if measured_cpu and baseline_cpu:
            metrics.update(cpu_metrics(measured_cpu))
            base.update(cpu_metrics(baseline_cpu))
        rows.append(
            Row(
                scenario="recall",
                variant=f"{how} {label}",
                metrics=metrics,
                primary="p99_ms",
                baseline=base["p99_ms"],
                baseline_label=base_label,
                baseline_metrics=base,
                target=f"p99<{TARGET_P99_MS:g}ms" if is_target else None,
                ok=metrics["p99_ms"] < TARGET_P99_MS if is_target else None,
                notes=notes,
            )
        )
    return rows


def _profile(args: argparse.Namespace, agent_id: str, count: int) -> str:
    """cProfile of ``count`` in-process recalls, written next to the JSON results."""
    store = EmbeddedStore()
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(count):
        store.recall(agent_id=agent_id, query=QUERIES[i % len(QUERIES)], top_k=TOP_K)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    out.write(f"# {count} in-process recalls on {agent_id}, sorted by cumulative time\n")
    stats.sort_stats("cumulative").print_stats(35)
    out.write("\n# sorted by own time\n")
    stats.sort_stats("tottime").print_stats(25)
    path = args.results_dir / "recall-profile.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(out.getvalue())
    return str(path)


def _log(args: argparse.Namespace, message: str) -> None:
    if not args.silent:
        print(f"  [recall] {message}", flush=True)


MEASURED_LATE = {"bench-r1k-late": 1_000, "bench-r10k-late": 10_000}


def _grow_items(labels: list[str], seed: int, pool_size: int) -> Iterator[tuple[str, Any]]:
    """Rows for phase 2: fresh text for the measured namespaces, the filler namespaces
    drawing from a pool of prepared memories (generating a million distinct texts would
    cost half a minute and change nothing the index statistics can tell apart)."""
    pool_gen, fresh_gen = TextGen(seed=seed + 1), TextGen(seed=seed + 2)
    pool = [data.prepare(pool_gen.memory()) for _ in range(pool_size)]
    pick = random.Random(seed).random
    for label in labels:
        if label in MEASURED_LATE:
            yield label, data.prepare(fresh_gen.memory())
        else:
            yield label, pool[int(pick() * pool_size)]


def _client(server: env.Daphne, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def run(args: argparse.Namespace) -> list[Row]:
    cfg = _config(args)
    env.fresh_database(args.workdir, "recall")
    data.check_encoding()
    key = env.bot_key()
    gen = TextGen(seed=args.seed)

    # Phase 1: a 1,000- and a 10,000-memory namespace, alone in the table.
    started = time.perf_counter()
    phase1 = itertools.chain(
        data.stream("bench-r1k", gen.memories(1_000)),
        data.stream("bench-r10k", gen.memories(10_000)),
    )
    loaded = data.load(phase1, 11_000)
    data.verify(loaded)
    _log(args, f"loaded {loaded:,} memories in {time.perf_counter() - started:.1f}s")
    rows: list[Row] = []
    with env.Daphne(args.workdir, "recall") as server, _client(server, key) as client:
        for agent_id, size in (("bench-r1k", 1_000), ("bench-r10k", 10_000)):
            label = f"{size // 1000}k/ns, {loaded // 1000}k total"
            rows += _measure(label=label, agent_id=agent_id, size=size, client=client, cfg=cfg)
            _log(args, f"measured {label}")

    # Phase 2: grow the table with ~1,000-memory namespaces; two new measured namespaces
    # are spread evenly through the load, as namespaces growing side by side are.
    grow = cfg["total"] - loaded
    filler = grow - sum(MEASURED_LATE.values())
    labels = [name for name, size in MEASURED_LATE.items() for _ in range(size)]
    labels += [f"bench-fill-{i % (filler // 1000):04d}" for i in range(filler)]
    random.Random(args.seed).shuffle(labels)
    started = time.perf_counter()
    items = _grow_items(labels, args.seed, cfg["pool"])
    loaded += data.load(items, grow, bulk=True)
    data.verify(loaded)
    _log(args, f"grew the table to {loaded:,} memories in {time.perf_counter() - started:.1f}s")
    total_label = f"{loaded / 1e6:g}M" if loaded >= 1_000_000 else f"{loaded // 1000}k"
    with env.Daphne(args.workdir, "recall") as server, _client(server, key) as client:
        for agent_id, size in MEASURED_LATE.items():
            label = f"{size // 1000}k/ns, {total_label} total"
            rows += _measure(label=label, agent_id=agent_id, size=size, client=client, cfg=cfg)
            _log(args, f"measured {label}")

    missed = any(r.ok is False for r in rows)
    if args.profile or missed:
        path = _profile(args, "bench-r10k-late", cfg["profile_calls"])
        _log(args, f"{'target missed: ' if missed else ''}profile written to {path}")
    return rows
