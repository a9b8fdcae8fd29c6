"""search: the agent's search (issue 14) over 1,000,000 messages.

One fresh SQLite file is loaded with bulk SQL ``INSERT``s (``executemany``; the search
triggers are dropped for the load and the index is rebuilt once after it, by the same
``search.index.ensure_sqlite_index`` that repairs lost triggers after a migration):
8 teams, 40 agents (each in one or two teams), a supervisor, 50,000 conversations
(``--quick``: 2,500) of 5 to 35 messages each (1,000,000 in all; ``--quick``: 50,000),
written under 1 to 3 hops (earlier ones transferred, the last mostly resolved, some
handed back, open or waiting), in support-desk sentences from ``bench/textgen.py``.

Measured, alternately with the baseline: ``search.finder.search_for_agent`` for a
two-word query (16 different pairs of frequent and rare support words), the console's
whole search: the three index queries (customers, handoff summaries and notes,
messages) with the viewer's rights inside each, then loading the hits, deciding where
each opens and highlighting them. Once as an agent of one team (rights cut the matches
to an eighth) and once as a supervisor (no cut).

Baseline: the bare full-text query on the same file through Python's ``sqlite3`` module,
no Django: the 30 best messages matching both words (``MATCH '"a" AND "b"' ORDER BY
bm25 LIMIT 30``), no rights, no other sections. Target (issue 14): p99 < 100 ms for the
agent's two-word search.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from . import env
from .core import Row, cpu_metrics, latency_metrics, time_pair
from .textgen import TOPICS, TextGen

TARGET_P99_MS = 100.0
TEAMS = 8
AGENTS = 40
QUERIES = [
    "refund invoice",
    "password reset",
    "tracking delayed",
    "webhook timeout",
    "export csv",
    "courier parcel",
    "login locked",
    "cancel subscription",
    "charge card",
    "upload error",
    "damaged package",
    "license seats",
    "verification email",
    "api integration",
    "trial upgrade",
    "angry manager",
]
PG_TABLES = ("handoffs_message", "handoffs_handoff", "handoffs_conversation")
FIRST_NAMES = "Ada Ben Cleo Dev Eli Fay Gus Hana Ivo Jun Kai Lea Max Noa Oli Pia Raj Sol Tom Uma"


def _config(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        return {"conversations": 2_500, "messages": 50_000, "samples": 64, "warmup": 4}
    return {"conversations": 50_000, "messages": 1_000_000, "samples": 320, "warmup": 16}


def _log(args: argparse.Namespace, message: str) -> None:
    if not args.silent:
        print(f"  [search] {message}", flush=True)


# ---------------------------------------------------------------- the data
def _db_datetime(value: datetime) -> str:
    """SQLite's text form of an aware datetime, as Django stores it (naive UTC)."""
    return str(value.astimezone(UTC).replace(tzinfo=None))


def _defaults(table: str, columns: list[str]) -> tuple[list[str], tuple]:
    """The table's other columns that have a model default (fields later issues add, e.g.
    a hop's required skills), with that default as the database stores it: a raw
    ``INSERT`` leaves nothing NULL that the ORM would have filled."""
    from django.apps import apps

    model = next(m for m in apps.get_models() if m._meta.db_table == table)
    extra, values = [], []
    for field in model._meta.concrete_fields:
        if field.column in columns or field.primary_key or not field.has_default():
            continue
        extra.append(field.column)
        values.append(field.get_db_prep_save(field.get_default(), connection))
    return extra, tuple(values)


def _insert(table: str, columns: list[str], rows: list[tuple]) -> None:
    extra, values = _defaults(table, columns)
    if extra:
        columns = [*columns, *extra]
        rows = [(*row, *values) for row in rows]
    marks = ", ".join(["%s"] * len(columns))
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 20_000):
            cursor.executemany(sql, rows[start : start + 20_000])


def _people(rng: random.Random) -> dict[str, Any]:
    from django.contrib.auth import get_user_model

    from handoffs.models import Agent, Role, Team

    teams = Team.objects.bulk_create(
        [Team(slug=f"team-{i}", name=f"Team {i}") for i in range(TEAMS)]
    )
    User = get_user_model()
    users = User.objects.bulk_create(
        [User(username=f"agent{i:02d}", first_name=f"Agent {i:02d}") for i in range(AGENTS)]
        + [User(username="sup", first_name="Sue", is_staff=True)]
    )
    agents = Agent.objects.bulk_create(
        [Agent(user=u) for u in users[:-1]] + [Agent(user=users[-1], role=Role.SUPERVISOR)]
    )
    through = Agent.teams.through
    members: dict[int, list[int]] = {team.pk: [] for team in teams}
    links = []
    for i, agent in enumerate(agents[:-1]):
        own = {teams[i % TEAMS]}
        if i >= TEAMS and rng.random() < 0.4:  # the first agent of each team has one team
            own.add(teams[rng.randrange(TEAMS)])
        for team in own:
            links.append(through(agent_id=agent.pk, team_id=team.pk))
            members[team.pk].append(agent.pk)
    through.objects.bulk_create(links)
    return {
        "teams": [t.pk for t in teams],
        "members": members,
        "agent": agents[0],  # agent00: team-0 only
        "supervisor": agents[-1],
    }


def _load(cfg: dict[str, Any], seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    gen = TextGen(seed)
    people = _people(rng)
    now = timezone.now()
    topics = list(TOPICS)
    names = FIRST_NAMES.split()
    total, count = cfg["messages"], cfg["conversations"]
    # Message counts per conversation: 5..35, scaled to add up to ``total`` exactly.
    sizes = [rng.randint(5, 35) for _ in range(count)]
    scale = total / sum(sizes)
    sizes = [max(3, round(s * scale)) for s in sizes]
    step = 1 if total > sum(sizes) else -1
    i = 0
    while sum(sizes) != total:  # spread the rounding, none below 3
        if sizes[i % count] + step >= 3:
            sizes[i % count] += step
        i += 1

    conversations, hops, messages = [], [], []
    hop_id, message_id = 0, 0
    for c in range(count):
        pk = c + 1
        started = now - timedelta(seconds=rng.uniform(3600, 90 * 86400))
        customer = f"cust-{c:06d}"
        name = f"{rng.choice(names)} {rng.choice(names)}son"
        topic = rng.choice(topics)
        n_hops = rng.choices([1, 2, 3], [70, 22, 8])[0]
        roll = rng.random()
        last_status = (
            "resolved"
            if roll < 0.9
            else "handed_back"
            if roll < 0.93
            else "accepted"
            if roll < 0.98
            else "waiting"
        )
        closed_at = None
        chain = uuid.uuid4().hex
        at = started
        split = sorted(rng.sample(range(1, sizes[c]), n_hops - 1)) if n_hops > 1 else []
        bounds = [0, *split, sizes[c]]
        seq = 0
        previous = None
        for h in range(n_hops):
            hop_id += 1
            team = rng.choice(people["teams"])
            status = "transferred" if h < n_hops - 1 else last_status
            agent = rng.choice(people["members"][team]) if status != "waiting" else None
            accepted = at + timedelta(seconds=rng.uniform(10, 600)) if agent else None
            length = bounds[h + 1] - bounds[h]
            ended = (accepted or at) + timedelta(seconds=30 * length)
            hop_closed = ended if status in ("resolved", "transferred", "handed_back") else None
            summary = gen.sentence(topic) + " " + gen.sentence(topic)
            hops.append(
                (
                    hop_id,
                    uuid.uuid4().hex,
                    customer,
                    name,
                    "",
                    "tier1-bot" if h == 0 else "human:agent00",
                    f"team-{people['teams'].index(team)}",
                    team,
                    False,
                    summary,
                    "",
                    1.0,
                    "neutral",
                    0.0,
                    "bot",
                    "normal",
                    1,
                    "bot",
                    status,
                    agent,
                    "",
                    uuid.uuid4().hex,
                    chain,
                    h,
                    previous,
                    _db_datetime(started),
                    "",
                    "",
                    pk,
                    None,
                    "",
                    "Done." if status == "resolved" else "",
                    _db_datetime(at),
                    _db_datetime(accepted) if accepted else None,
                    _db_datetime(hop_closed) if hop_closed else None,
                    False,
                )
            )
            previous = hop_id
            for _ in range(length):
                seq += 1
                message_id += 1
                sender = "customer" if rng.random() < 0.55 else "agent"
                sentences = 1 if rng.random() < 0.7 else 2
                body = " ".join(gen.sentence(topic) for _ in range(sentences))
                created = (accepted or at) + timedelta(seconds=30 * (seq - bounds[h]))
                messages.append(
                    (
                        message_id,
                        pk,
                        seq,
                        f"m{seq}",
                        sender,
                        "",
                        name if sender == "customer" else "Agent",
                        body,
                        hop_id,
                        None,
                        False,
                        _db_datetime(created),
                    )
                )
            at = ended + timedelta(seconds=60)
            closed_at = hop_closed if last_status != "accepted" else None
        conversations.append(
            (
                pk,
                uuid.uuid4().hex,
                uuid.uuid4().hex + uuid.uuid4().hex[:8],
                customer,
                name,
                "web",
                last_status in ("accepted",),
                seq,
                _db_datetime(started),
                _db_datetime(closed_at) if closed_at and last_status == "resolved" else None,
                None,
                "",
                None,
            )
        )
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            for fts in ("search_message_fts", "search_handoff_fts", "search_conversation_fts"):
                for suffix in ("ai", "ad", "au"):
                    cursor.execute(f"DROP TRIGGER {fts}_{suffix}")
        else:  # one GIN build after the load instead of a million insertions into it
            for table in PG_TABLES:
                cursor.execute(f"DROP INDEX {table}_search_gin")
    _insert(
        "handoffs_conversation",
        [
            "id",
            "public_id",
            "token",
            "customer",
            "customer_name",
            "channel",
            "bot_muted",
            "last_seq",
            "created_at",
            "closed_at",
            "csat_score",
            "csat_comment",
            "csat_at",
        ],
        conversations,
    )
    _insert(
        "handoffs_handoff",
        [
            "id",
            "public_id",
            "customer",
            "customer_name",
            "source_session_id",
            "from_agent",
            "to_agent",
            "team_id",
            "misrouted",
            "summary",
            "reason",
            "importance",
            "sentiment",
            "sentiment_score",
            "sentiment_source",
            "urgency",
            "urgency_rank",
            "urgency_source",
            "status",
            "accepted_by_id",
            "memory_id",
            "dedupe_key",
            "chain_id",
            "hop_index",
            "previous_id",
            "waiting_since",
            "bounce",
            "human_session_id",
            "conversation_id",
            "assigned_to_id",
            "rating",
            "closing_note",
            "created_at",
            "accepted_at",
            "closed_at",
            "arrived_out_of_hours",
        ],
        hops,
    )
    _insert(
        "handoffs_message",
        [
            "id",
            "conversation_id",
            "seq",
            "client_id",
            "sender",
            "author",
            "author_name",
            "body",
            "handoff_id",
            "sentiment_score",
            "out_of_hours",
            "created_at",
        ],
        messages,
    )
    return {
        "conversations": len(conversations),
        "hops": len(hops),
        "messages": len(messages),
        "agent": people["agent"],
        "supervisor": people["supervisor"],
    }


# ---------------------------------------------------------------- the measurements
def _prepare(cfg: dict[str, Any], seed: int) -> tuple[dict[str, Any], float, float]:
    """Load the data into the database Django uses and build its index once; returns
    what was loaded and the seconds the load and the index took."""
    started = time.perf_counter()
    debug = settings.DEBUG
    settings.DEBUG = False  # the debug cursor would keep every bulk INSERT's parameters
    try:
        with transaction.atomic():
            loaded = _load(cfg, seed)
        loaded_s = time.perf_counter() - started
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                from handoffs.search.index import ensure_sqlite_index

                ensure_sqlite_index()  # recreates the triggers and rebuilds the index once
                cursor.execute("ANALYZE")
            else:
                for table in PG_TABLES:
                    cursor.execute(f"CREATE INDEX {table}_search_gin ON {table} USING gin (search)")
                cursor.execute("ANALYZE")
    finally:
        settings.DEBUG = debug
    return loaded, loaded_s, time.perf_counter() - started - loaded_s


def _measure(
    cfg: dict[str, Any], loaded: dict[str, Any], bare_count, bare_query, database: str
) -> list[dict[str, Any]]:
    """Time the console's search against the bare query, as an agent and a supervisor:
    plain dictionaries (the PostgreSQL variant sends them from its own process)."""
    from handoffs.search.finder import search_for_agent

    matches = {query: bare_count(query.split()) for query in QUERIES}

    def baseline(i: int) -> None:
        bare_query(QUERIES[i % len(QUERIES)].split())

    measured_rows = []
    for label, who, target in (
        ("agent of 1 of 8 teams", loaded["agent"], True),
        ("supervisor (every team)", loaded["supervisor"], False),
    ):
        hits = [search_for_agent(agent=who, query=q).count for q in QUERIES]

        def measured(i: int, who=who) -> None:
            search_for_agent(agent=who, query=QUERIES[i % len(QUERIES)])

        cpu: list[float] = []
        wall, base = time_pair(measured, baseline, cfg["samples"], cfg["warmup"], measured_cpu=cpu)
        counts = sorted(matches.values())
        measured_rows.append(
            {
                "variant": f"two-word search, {label}, {loaded['messages'] // 1000:,}k "
                f"messages, {database}",
                "wall": wall,
                "base": base,
                "cpu": cpu,
                "target": target,
                "notes": (
                    f"{loaded['messages']:,} messages, {loaded['conversations']:,} "
                    f"conversations, {loaded['hops']:,} hops; {len(QUERIES)} two-word queries "
                    f"matching {counts[0]:,}-{counts[-1]:,} messages each (median "
                    f"{counts[len(counts) // 2]:,}); results shown per query "
                    f"{min(hits)}-{max(hits)}"
                ),
            }
        )
    return measured_rows


def _fts_match(words: list[str]) -> str:
    return " AND ".join(f'"{w}"' for w in words)


def run(args: argparse.Namespace) -> list[Row]:
    cfg = _config(args)
    path = env.fresh_database(args.workdir, "search")
    loaded, loaded_s, indexed_s = _prepare(cfg, args.seed)
    _log(
        args,
        f"SQLite: loaded {loaded['messages']:,} messages in {loaded['conversations']:,} "
        f"conversations ({loaded['hops']:,} hops) in {loaded_s:.1f}s, indexed in "
        f"{indexed_s:.1f}s",
    )
    bare = sqlite3.connect(path)
    bare_sql = (
        "SELECT rowid, bm25(search_message_fts) FROM search_message_fts "
        "WHERE search_message_fts MATCH ? ORDER BY 2 LIMIT 30"
    )

    def bare_count(words: list[str]) -> int:
        sql = "SELECT count(*) FROM search_message_fts WHERE search_message_fts MATCH ?"
        return bare.execute(sql, (_fts_match(words),)).fetchone()[0]

    def bare_query(words: list[str]) -> None:
        bare.execute(bare_sql, (_fts_match(words),)).fetchall()

    measured = _measure(cfg, loaded, bare_count, bare_query, "SQLite")
    bare.close()
    _log(args, "measured SQLite")
    label = "raw FTS5 MATCH, bm25, LIMIT 30 (sqlite3, no Django, no rights)"
    rows = [_row(m, label) for m in measured]
    rows += _run_postgres(args, cfg)
    return rows


def _row(m: dict[str, Any], baseline_label: str) -> Row:
    metrics, base = latency_metrics(m["wall"]), latency_metrics(m["base"])
    metrics.update(cpu_metrics(m["cpu"]))
    return Row(
        scenario="search",
        variant=m["variant"],
        metrics=metrics,
        primary="p99_ms",
        baseline=base["p99_ms"],
        baseline_label=baseline_label,
        baseline_metrics=base,
        target=f"p99<{TARGET_P99_MS:g}ms" if m["target"] else None,
        ok=metrics["p99_ms"] < TARGET_P99_MS if m["target"] else None,
        notes=m["notes"],
    )


# ---------------------------------------------------------------- PostgreSQL
def _run_postgres(args: argparse.Namespace, cfg: dict[str, Any]) -> list[Row]:
    """The same on a throw-away PostgreSQL database ``bench_search_<pid>`` on
    ``BENCH_POSTGRES_URL`` (as ``bench/scaleout.py``), in a child process whose Django
    uses it; skipped, with the reason in the notes, without PostgreSQL."""
    from .scaleout import ADMIN_URL, _database_url

    try:
        import psycopg

        with psycopg.connect(ADMIN_URL, connect_timeout=3):
            pass
    except Exception as exc:  # noqa: BLE001 - any failure means "not available here"
        _log(args, f"PostgreSQL variant skipped: {exc}")
        return []
    name = f"bench_search_{os.getpid()}"

    def admin(sql: str) -> None:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql)

    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{name}"')
    try:
        child = {k: v for k, v in os.environ.items() if k != "SQLITE_PATH"}
        child.update(
            DATABASE_URL=_database_url(name),
            DJANGO_SETTINGS_MODULE="console.settings",
            DJANGO_DEBUG="1",
            PYTHONPATH=str(env.ROOT),
        )
        measured = env.run_driver(
            "bench.search",
            {"cfg": cfg, "seed": args.seed},
            silent=args.silent,
            what="PostgreSQL search benchmark",
            flags=("--postgres",),
            child_env=child,
        )
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    label = "raw tsvector @@ query, ts_rank_cd, LIMIT 30 (psycopg, no Django, no rights)"
    return [_row(m, label) for m in measured]


def _postgres_child() -> int:
    """``python -m bench.search --postgres``: migrate, load and measure on the database
    in ``DATABASE_URL``; the config on stdin, the measurements as JSON on stdout."""
    import json

    import django

    config = json.load(sys.stdin)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    loaded, loaded_s, indexed_s = _prepare(config["cfg"], config["seed"])
    print(
        f"  [search] PostgreSQL: loaded {loaded['messages']:,} messages in {loaded_s:.1f}s, "
        f"indexed in {indexed_s:.1f}s",
        file=sys.stderr,
        flush=True,
    )
    import psycopg

    bare = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    bare_sql = (
        "SELECT id, ts_rank_cd(search, q) FROM handoffs_message, "
        "plainto_tsquery('english', %s) q WHERE search @@ q ORDER BY 2 DESC LIMIT 30"
    )

    def bare_count(words: list[str]) -> int:
        sql = "SELECT count(*) FROM handoffs_message WHERE search @@ plainto_tsquery('english', %s)"
        return bare.execute(sql, (" ".join(words),)).fetchone()[0]

    def bare_query(words: list[str]) -> None:
        bare.execute(bare_sql, (" ".join(words),)).fetchall()

    measured = _measure(config["cfg"], loaded, bare_count, bare_query, "PostgreSQL")
    bare.close()
    print(json.dumps(measured))
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--postgres"]:
        raise SystemExit(_postgres_child())
    raise SystemExit(env.standalone("search", run, None))
