"""offers: offer routing under a burst (issue 18).

One fresh SQLite file (WAL, as in production) with one team in ``offer`` mode and 50
online agents (capacity 8: room for every hop of the burst, so the policy, not capacity,
decides the spread). 200 hops arrive in a burst from 4 threads (each its own
connection, as several Daphnes would), through the real intake service; each intake
routes after its commit (``offers.dispatch_on_commit``), the way production does.

Measured per hop: the time from its arrival (the intake's timestamp,
``Handoff.created_at``) to its first offer (``Offer.created_at``, taken by the router
that claimed it, whose short transaction commits right after), p50/p99; and the spread
of the offers across the agents (min / max / standard deviation of offers per agent,
agents used). Rounds: 3 (``--quick``: 1), a fresh team and agents each.

Baseline, same run, same threads and connection settings: the bare claim loop, per hop
one ``INSERT`` of a bare row and one conditional ``UPDATE ... WHERE offered_to IS NULL``
naming the next agent round robin: the floor of "a hop arrives and is claimed" on this
database, without the intake, the policy query, the capacity lock or the audit rows.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

from django.db import connection

from . import env
from .core import Row, latency_metrics

AGENTS = 50
HOPS = 200
THREADS = 4
CAPACITY = 8
TARGET_P99_MS = 500.0


def _log(args: argparse.Namespace, message: str) -> None:
    if not args.silent:
        print(f"  [offers] {message}", flush=True)


def _setup(round_no: int):
    from django.contrib.auth import get_user_model

    from handoffs.models import Agent, Presence, Team

    team = Team.objects.create(
        slug=f"burst-{round_no}", name=f"Burst {round_no}", routing_mode="offer"
    )
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"r{round_no}-agent{i:02d}", first_name=f"A{i}")
        for i in range(AGENTS)
    )
    agents = Agent.objects.bulk_create(
        Agent(user=u, capacity=CAPACITY, presence=Presence.ONLINE) for u in users
    )
    team.agents.add(*agents)
    return team


def _burst(team_slug: str, round_no: int) -> dict[int, float]:
    """200 intakes from 4 threads at once; returns hop id -> arrival (perf_counter)."""
    from handoffs.lifecycle.intake import handoff_intake

    arrivals: dict[int, float] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def bring(part: int) -> None:
        connection.ensure_connection()
        barrier.wait()
        try:
            for i in range(HOPS // THREADS):
                t0 = time.perf_counter()
                hop = handoff_intake(
                    customer=f"burst-{round_no}-{part}-{i}",
                    source_session_id="",
                    from_agent="tier1-bot",
                    to_agent=team_slug,
                    summary=f"Burst {round_no} hop {part}-{i}: charged twice, wants a refund.",
                    sentiment="neutral",
                    urgency="normal",
                ).handoff
                with lock:
                    arrivals[hop.pk] = t0
        finally:
            connection.close()

    threads = [threading.Thread(target=bring, args=(p,)) for p in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return arrivals


def _measure(team):
    """Arrival → offer per hop (committed times), and offers per agent."""
    from handoffs.models import Agent, Handoff, Offer

    connection.close()  # read what the burst's threads committed
    offered: list[float] = []
    hops = Handoff.objects.filter(team=team)
    created = dict(hops.values_list("pk", "created_at"))
    firsts: dict[int, float] = {}
    for hop_id, at in (
        Offer.objects.filter(team=team)
        .order_by("created_at")
        .values_list("handoff_id", "created_at")
    ):
        firsts.setdefault(hop_id, at.timestamp())
    for hop_id, at in created.items():
        if hop_id in firsts:
            offered.append(max(0.0, firsts[hop_id] - at.timestamp()))
    per_agent = [
        Offer.objects.filter(team=team, agent=a).count() for a in Agent.objects.filter(teams=team)
    ]
    return offered, per_agent, len(created) - len(firsts)


def _bare(round_no: int) -> list[float]:
    """The bare claim loop: INSERT a row, claim it with one conditional UPDATE."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_offer_bare "
            "(id INTEGER PRIMARY KEY, round INTEGER, offered_to INTEGER)"
        )
    samples: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)
    counter = iter(range(10**9))

    def bring(part: int) -> None:
        from django.db import connection as conn
        from django.db import transaction

        conn.ensure_connection()
        barrier.wait()
        try:
            for _ in range(HOPS // THREADS):
                t0 = time.perf_counter()
                with transaction.atomic(), conn.cursor() as cursor:
                    cursor.execute(
                        "INSERT INTO bench_offer_bare (round, offered_to) VALUES (%s, NULL)",
                        [round_no],
                    )
                    row_id = cursor.lastrowid
                with lock:
                    agent = next(counter) % AGENTS + 1
                with transaction.atomic(), conn.cursor() as cursor:
                    cursor.execute(
                        "UPDATE bench_offer_bare SET offered_to = %s "
                        "WHERE id = %s AND offered_to IS NULL",
                        [agent, row_id],
                    )
                    assert cursor.rowcount == 1
                with lock:
                    samples.append(time.perf_counter() - t0)
        finally:
            conn.close()

    threads = [threading.Thread(target=bring, args=(p,)) for p in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return samples


def run(args: argparse.Namespace) -> list[Row]:
    env.fresh_database(args.workdir, "offers")
    rounds = 1 if args.quick else 3
    offered: list[float] = []
    spreads: list[list[int]] = []
    bare: list[float] = []
    unoffered = 0
    burst_s: list[float] = []
    for round_no in range(rounds):
        team = _setup(round_no)
        t0 = time.perf_counter()
        _burst(team.slug, round_no)
        burst_s.append(time.perf_counter() - t0)
        got, per_agent, missing = _measure(team)
        offered += got
        spreads.append(per_agent)
        unoffered += missing
        bare += _bare(round_no)
        _log(
            args,
            f"round {round_no + 1}/{rounds}: {len(got)} offered in {burst_s[-1]:.2f}s, "
            f"per agent {min(per_agent)}-{max(per_agent)}",
        )
    measured = latency_metrics(offered)
    base = latency_metrics(bare)
    per_agent = [n for spread in spreads for n in spread]
    measured.update(
        {
            "unoffered": unoffered,
            "burst_s": statistics.fmean(burst_s),
            "per_agent_min": min(per_agent),
            "per_agent_max": max(per_agent),
            "per_agent_stdev": statistics.pstdev(per_agent),
            "agents_used": min(sum(1 for n in s if n) for s in spreads),
        }
    )
    ok = measured["p99_ms"] <= TARGET_P99_MS and unoffered == 0
    return [
        Row(
            scenario="offers",
            variant=f"burst {HOPS} hops, {AGENTS} agents (SQLite)",
            metrics=measured,
            primary="p99_ms",
            baseline=base["p99_ms"],
            baseline_label="bare INSERT + conditional UPDATE claim",
            baseline_metrics=base,
            target=f"p99 arrival→offer ≤ {TARGET_P99_MS:.0f} ms, every hop offered",
            ok=ok,
            notes=(
                f"arrival→offer p50 {measured['p50_ms']:.1f} ms / p99 {measured['p99_ms']:.1f}"
                f" ms (bare claim p50 {base['p50_ms']:.1f} / p99 {base['p99_ms']:.1f} ms); "
                f"offers per agent {measured['per_agent_min']}-{measured['per_agent_max']} "
                f"(stdev {measured['per_agent_stdev']:.2f}, {measured['agents_used']} of "
                f"{AGENTS} agents used), {unoffered} not offered"
            ),
        )
    ]


async def _drive(config):  # no separate client process: everything runs in-process
    return {}


def main(argv: list[str] | None = None) -> int:
    return env.standalone("offers", run, _drive, argv)


if __name__ == "__main__":
    raise SystemExit(main())
