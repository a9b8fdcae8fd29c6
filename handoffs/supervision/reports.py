"""Selectors of the transfer report: how issues move between bots, teams and people.

An *issue* is a chain of hops (``chain_id``); the report covers the issues whose first
hop was created in the date range (in the console's time zone) and, with a team filter,
that went to that team at some hop. Every figure comes from the console's database (the
system of record), never from the memory server.

A chain is drawn as a path of *nodes*: the first hop's ``from_agent``, then for each hop
who received it: ``human:<username>`` where a human accepted it, else its ``to_agent``
(a team slug, or a bot's name for a bot-to-bot hop). A chain *ping-pongs* when it goes
A → B → A, and *loops* when any node is visited twice (a ping-pong is also a loop).

Cost (``bench/report.py``: 100,000 hops in 36,000 chains): the SQL does what only SQL
does cheaply in the one query that reads the hops: a range scan of a covering index
(``handoff_report``), the chain key as text and the durations (time to accept, time
waiting) as numbers, so only primitives reach Python (no converters run per row); the
closing sentiment is a window aggregate over a partial index (``message_scores``).
Everything else (hops per issue, paths and their flags, the from → to matrix, the
percentiles, waiting per issue, ratings per source bot) comes from one pass over those
rows, because the paths need whole chains in Python anyway and, measured on 100,000
rows here, each aggregate done as its own ``GROUP BY`` instead costs 0.1 to 0.5 s of
CPU (grouping by chain means sorting) while the whole pass costs about 0.15 s.
"""

from __future__ import annotations

import heapq
import math
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from operator import itemgetter
from typing import IO, Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import (
    CharField,
    DateTimeField,
    F,
    FloatField,
    Func,
    Min,
    QuerySet,
)
from django.db.models import Value as V
from django.db.models.expressions import Window
from django.db.models.functions import Cast, Coalesce, RowNumber
from django.utils import timezone

from ..lifecycle.estimate import sentiment_from_score
from ..lifecycle.intake import path_flags  # the queue rows flag chains the same way
from ..models import Agent, Bot, Handoff, Message, Team

LONGEST_SHOWN = 20
MATRIX_NODES = 24
TREND_DELTA = 0.15  # the same "improving / worsening" step as the conversation page
RATING_KEYS = ("accurate", "missing_info", "unnecessary")


class Seconds(Func):
    """Seconds from ``start`` to ``end`` as a float, computed by the database."""

    output_field = FloatField()

    def __init__(self, end: Any, start: Any) -> None:
        super().__init__(end, start)

    def _parts(self, compiler, connection) -> tuple[str, str, list[Any]]:
        end_sql, end_params = compiler.compile(self.source_expressions[0])
        start_sql, start_params = compiler.compile(self.source_expressions[1])
        return end_sql, start_sql, [*end_params, *start_params]

    def get_db_converters(self, connection) -> list:
        return []  # the database already returns a float; skip the per-row call

    def as_sqlite(self, compiler, connection, **extra):
        end, start, params = self._parts(compiler, connection)
        return f"((julianday({end}) - julianday({start})) * 86400.0)", params

    def as_postgresql(self, compiler, connection, **extra):
        end, start, params = self._parts(compiler, connection)
        return f"(EXTRACT(EPOCH FROM ({end} - {start}))::float8)", params


def percentile(ordered: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of an ascending list (p50 of 30, 60, 120 is 60)."""
    if not ordered:
        return None
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


# ---------------------------------------------------------------- the filter and scope
@dataclass(frozen=True)
class ReportFilter:
    date_from: date
    date_to: date
    team: Team | None = None

    @property
    def start(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.date_from, time.min))

    @property
    def end(self) -> datetime:
        """Exclusive: midnight after ``date_to``."""
        return timezone.make_aware(datetime.combine(self.date_to + timedelta(days=1), time.min))

    def query_string(self) -> str:
        team = f"&team={self.team.slug}" if self.team else ""
        return f"from={self.date_from.isoformat()}&to={self.date_to.isoformat()}{team}"


def default_filter(today: date | None = None) -> ReportFilter:
    """The last seven days, today included."""
    today = today or timezone.localdate()
    return ReportFilter(date_from=today - timedelta(days=6), date_to=today)


# ---------------------------------------------------------------- paths
def node_kind(node: str, bots: set[str]) -> str:
    if node.startswith("human:"):
        return "human"
    return "bot" if node in bots else "team"


@dataclass
class Chain:
    """One issue: its path, flags and the figures the report and the CSV show."""

    key: str
    nodes: list[str]
    ping_pong: bool
    loop: bool
    human_wait_secs: float | None
    sentiment_at_handoff: float
    sentiment_at_close: float
    source: str
    customer: str = ""
    customer_name: str = ""
    started_at: datetime | None = None
    kinds: list[str] = field(default_factory=list)
    last_hop_id: int | None = None  # links to the issue's latest card / conversation
    last_conversation_id: int | None = None
    csat: tuple[bool, int | None, str] | None = None  # (asked, score, comment), CSV only

    @property
    def hops(self) -> int:
        return len(self.nodes) - 1

    @property
    def path(self) -> str:
        return " → ".join(self.nodes)

    @property
    def chain_id(self) -> str:
        return str(uuid.UUID(self.key))

    @property
    def trend(self) -> str:
        delta = self.sentiment_at_close - self.sentiment_at_handoff
        return (
            "improved" if delta > TREND_DELTA else "worsened" if delta < -TREND_DELTA else "steady"
        )

    @property
    def steps(self) -> list[tuple[str, str]]:
        return list(zip(self.nodes, self.kinds or ["team"] * len(self.nodes), strict=False))


# ---------------------------------------------------------------- report dataclasses
@dataclass
class TeamAccept:
    team: str
    accepted: int
    p50: float | None
    p90: float | None


@dataclass
class SourceRatings:
    source: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def accurate_pct(self) -> int:
        return round(100 * self.counts.get("accurate", 0) / self.total) if self.total else 0


@dataclass
class SentimentShift:
    issues: int = 0
    mean_at_handoff: float | None = None
    mean_at_close: float | None = None
    improved: int = 0
    steady: int = 0
    worsened: int = 0

    @property
    def label_at_handoff(self) -> str:
        return sentiment_from_score(self.mean_at_handoff).label if self.issues else ""

    @property
    def label_at_close(self) -> str:
        return sentiment_from_score(self.mean_at_close).label if self.issues else ""


@dataclass
class Matrix:
    nodes: list[str]
    kinds: list[str]
    rows: list[list[int]]
    row_totals: list[int]
    col_totals: list[int]
    total: int
    hidden: int  # handoffs between nodes left out (beyond MATRIX_NODES)
    max_cell: int

    @property
    def lines(self) -> list[tuple[str, str, list[int], int]]:
        """(from node, its kind, counts per ``to`` node, row total) for the template;
        nodes that handed nothing to anyone shown (a team only receives) are left out."""
        return [
            line
            for line in zip(self.nodes, self.kinds, self.rows, self.row_totals, strict=True)
            if line[3]
        ]

    @property
    def columns(self) -> list[tuple[str, str]]:
        return list(zip(self.nodes, self.kinds, strict=True))


@dataclass
class TransferReport:
    filter: ReportFilter
    now: datetime
    issues: int = 0
    hops: int = 0
    bot_hops: int = 0
    lengths: list[tuple[int, int]] = field(default_factory=list)  # (hops, issues)
    longest: list[Chain] = field(default_factory=list)
    ping_pong: int = 0
    loops: int = 0
    matrix: Matrix | None = None
    accept: list[TeamAccept] = field(default_factory=list)
    human_wait_issues: int = 0
    human_wait_p50: float | None = None
    human_wait_p90: float | None = None
    human_wait_max: float | None = None
    sentiment: SentimentShift = field(default_factory=SentimentShift)
    ratings: list[SourceRatings] = field(default_factory=list)

    @property
    def mean_hops(self) -> float:
        return self.hops / self.issues if self.issues else 0.0


# ---------------------------------------------------------------- the scan
# Positions in a scanned row (``_scan``): primitives only, so the database driver's
# tuples pass through Django untouched (no UUID, datetime or number converters).
KEY, INDEX, FROM, TO, BY, TEAM, SOURCE_BOT, RATING, SENTIMENT, CONVERSATION, WAIT = range(11)
SCAN_COLUMNS = (
    "key",
    "hop_index",
    "from_agent",
    "to_agent",
    "accepted_by_id",
    "team_id",
    "created_by_bot_id",
    "rating",
    "sentiment_score",
    "conversation_id",
    "waited",
)


def _scan(f: ReportFilter, now: datetime, extra: tuple[str, ...] = ()) -> list[list[tuple]]:
    """The hops of the selected issues, grouped by chain (each in hop order).

    One range scan (``created_at >= start``) of the ``handoff_report`` covering index: an
    issue that started in the range has all its hops there; it is kept when its first
    hop is there and not after the range (and, with a team filter, when a hop went to
    the team). ``waited`` is how long a hop waited: until accepted (= the time to
    accept), closed, or ``now``. ``extra`` columns (the CSV's) make it read the table.
    """
    waited_until = Coalesce("accepted_at", "closed_at", V(now, output_field=DateTimeField()))
    key = Cast("chain_id", output_field=CharField())
    rows = (
        Handoff.objects.filter(created_at__gte=f.start)
        .annotate(key=key, waited=Seconds(waited_until, "created_at"))
        .order_by()
        .values_list(*SCAN_COLUMNS, *extra)
    )
    started_later = set(
        Handoff.objects.filter(hop_index=0, created_at__gte=f.end)
        .annotate(key=key)
        .order_by()
        .values_list("key", flat=True)
    )
    chains: dict[str, list[tuple]] = {}
    for row in _rows(rows, raw=not extra):
        hops = chains.get(row[KEY])
        if hops is None:
            chains[row[KEY]] = [row]
        else:
            hops.append(row)
    team_id = f.team.pk if f.team is not None else None
    selected = []
    for chain_key, hops in chains.items():
        if len(hops) > 1:
            hops.sort(key=itemgetter(INDEX))
        if hops[0][INDEX] != 0 or chain_key in started_later:
            continue  # started before the range (its first hop wasn't scanned) or after
        if team_id is not None and not any(hop[TEAM] == team_id for hop in hops):
            continue
        selected.append(hops)
    return selected


def _rows(rows: QuerySet, *, raw: bool) -> list[tuple]:
    """The rows of a ``values_list`` query; ``raw`` skips Django's per-row machinery
    (safe when no column needs a converter: the SQL is still the ORM's)."""
    if not raw:
        return list(rows.iterator(chunk_size=10_000))
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@dataclass
class _Lookups:
    humans: dict[int, str]  # agent pk -> "human:<username>"
    usernames: dict[int, str]
    bot_names: dict[int, str]
    bots: set[str]
    closing: dict[int, float]


def _lookups(f: ReportFilter) -> _Lookups:
    usernames = dict(Agent.objects.values_list("pk", f"user__{get_user_model().USERNAME_FIELD}"))
    bot_names = dict(Bot.objects.values_list("pk", "name"))
    return _Lookups(
        humans={pk: f"human:{name}" for pk, name in usernames.items()},
        usernames=usernames,
        bot_names=bot_names,
        bots=set(bot_names.values()),
        closing=closing_sentiment(
            first_conversation=Handoff.objects.filter(
                created_at__gte=f.start, conversation__isnull=False
            ).aggregate(first=Min("conversation"))["first"]
        ),
    )


def closing_sentiment(*, first_conversation: int | None) -> dict[int, float]:
    """Mean score of the last three scored customer messages of each conversation from
    ``first_conversation`` on (only customer messages carry a score)."""
    if first_conversation is None:
        return {}
    ranked = (
        Message.objects.filter(
            sentiment_score__isnull=False, conversation_id__gte=first_conversation
        )
        .annotate(
            recency=Window(
                RowNumber(), partition_by=[F("conversation_id")], order_by=F("seq").desc()
            )
        )
        .order_by()
        .values("conversation_id", "sentiment_score", "recency")
    )
    sql, params = ranked.query.sql_with_params()
    # Averaging over a filtered window needs one more level than the ORM expresses.
    wrapped = (
        "SELECT last3.conversation_id, AVG(last3.sentiment_score) "  # noqa: S608 - ORM SQL
        f"FROM ({sql}) last3 WHERE last3.recency <= 3 GROUP BY last3.conversation_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(wrapped, params)
        return dict(cursor.fetchall())


def _walk(
    hops: list[tuple], humans: dict[int, str]
) -> tuple[list[str], bool, bool, float | None, int | None]:
    """A chain's nodes, ping-pong and loop flags, time waiting for a human (None if it
    never queued for one) and its conversation. The report's hot loop: kept plain."""
    nodes = [hops[0][FROM]]
    wait = None
    conversation = None
    for hop in hops:
        nodes.append(humans.get(hop[BY], hop[TO]))
        if hop[TEAM] is not None and hop[WAIT] is not None:
            wait = hop[WAIT] if wait is None else wait + hop[WAIT]
        if hop[CONVERSATION] is not None:
            conversation = hop[CONVERSATION]
    loop = len(set(nodes)) < len(nodes)
    ping_pong = loop and path_flags(nodes)[0]
    return nodes, ping_pong, loop, (None if wait is None else max(0.0, wait)), conversation


def _chain(hops: list[tuple], lookups: _Lookups) -> Chain:
    nodes, ping_pong, loop, wait, conversation = _walk(hops, lookups.humans)
    first, at_close = hops[0], lookups.closing.get(conversation)
    return Chain(
        key=first[KEY],
        nodes=nodes,
        ping_pong=ping_pong,
        loop=loop,
        human_wait_secs=wait,
        sentiment_at_handoff=first[SENTIMENT],
        sentiment_at_close=hops[-1][SENTIMENT] if at_close is None else at_close,
        source=lookups.bot_names.get(first[SOURCE_BOT]) or first[FROM],
        kinds=[node_kind(node, lookups.bots) for node in nodes],
    )


def transfer_report(
    f: ReportFilter, *, now: datetime | None = None, longest: int = LONGEST_SHOWN
) -> TransferReport:
    """The transfer report for the issues ``f`` selects (see the module docstring)."""
    now = now or timezone.now()
    report = TransferReport(filter=f, now=now)
    chains = _scan(f, now)
    if not chains:
        return report
    lookups = _lookups(f)
    humans, closing, bot_names = lookups.humans, lookups.closing, lookups.bot_names

    lengths: Counter[int] = Counter()
    cells: Counter[tuple[str, str]] = Counter()
    accept: dict[int, list[float]] = defaultdict(list)
    ratings: dict[str, Counter[str]] = defaultdict(Counter)
    waits: list[float] = []
    shift = SentimentShift()
    at_handoff = at_close = 0.0
    top: list[tuple[int, float, str, list[tuple]]] = []
    bot_hops = ping_pongs = loops = 0
    for hops in chains:
        # _walk's work, inlined with the per-hop tallies (this loop is the report's cost;
        # unpacking into locals is what keeps it cheap).
        first = hops[0]
        nodes = [first[FROM]]
        source = bot_names.get(first[SOURCE_BOT]) or first[FROM]
        wait = conversation = None
        for _, _, sender, to, by, team, _, rating, _, conv, waited in hops:
            node = humans.get(by, to)
            nodes.append(node)
            cells[sender, node] += 1
            if team is None:
                bot_hops += 1
            elif waited is not None:
                wait = waited if wait is None else wait + waited
                if by is not None:
                    accept[team].append(waited)
            if rating:
                ratings[source][rating] += 1
            if conv is not None:
                conversation = conv
        lengths[len(hops)] += 1
        if len(set(nodes)) < len(nodes):
            loops += 1
            ping_pongs += path_flags(nodes)[0]
        if wait is not None:
            wait = max(0.0, wait)
            waits.append(wait)
        start = first[SENTIMENT]
        end = closing.get(conversation)
        if end is None:
            end = hops[-1][SENTIMENT]
        at_handoff += start
        at_close += end
        if end - start > TREND_DELTA:
            shift.improved += 1
        elif end - start < -TREND_DELTA:
            shift.worsened += 1
        else:
            shift.steady += 1
        item = (len(hops), wait or 0.0, first[KEY], hops)
        if len(hops) < 2:
            pass  # a one-hop issue is no chain
        elif len(top) < longest:
            heapq.heappush(top, item)
        elif item[:3] > top[0][:3]:
            heapq.heapreplace(top, item)

    teams = dict(Team.objects.values_list("pk", "slug"))
    report.bot_hops, report.ping_pong, report.loops = bot_hops, ping_pongs, loops
    report.issues = shift.issues = len(chains)
    report.lengths = sorted(lengths.items())
    report.hops = sum(length * n for length, n in report.lengths)
    report.matrix = _matrix(cells, lookups.bots)
    report.accept = []
    for team_id, secs in accept.items():
        secs = sorted(max(0.0, sec) for sec in secs)
        report.accept.append(
            TeamAccept(
                team=teams.get(team_id, "?"),
                accepted=len(secs),
                p50=percentile(secs, 50),
                p90=percentile(secs, 90),
            )
        )
    report.accept.sort(key=lambda row: row.team)
    shift.mean_at_handoff = at_handoff / shift.issues
    shift.mean_at_close = at_close / shift.issues
    report.sentiment = shift
    waits.sort()
    report.human_wait_issues = len(waits)
    report.human_wait_p50 = percentile(waits, 50)
    report.human_wait_p90 = percentile(waits, 90)
    report.human_wait_max = waits[-1] if waits else None
    report.ratings = sorted(
        (
            SourceRatings(source=source, counts={k: counts.get(k, 0) for k in RATING_KEYS})
            for source, counts in ratings.items()
        ),
        key=lambda r: (-r.total, r.source),
    )
    top.sort(key=itemgetter(0, 1, 2), reverse=True)
    report.longest = [_chain(item[3], lookups) for item in top]
    _describe(report.longest)
    return report


def _matrix(cells: Counter[tuple[str, str]], bots: set[str]) -> Matrix:
    volume: Counter[str] = Counter()
    for (source, target), n in cells.items():
        volume[source] += n
        volume[target] += n
    nodes = sorted(volume, key=lambda node: (-volume[node], node))[:MATRIX_NODES]
    index = {node: i for i, node in enumerate(nodes)}
    rows = [[0] * len(nodes) for _ in nodes]
    hidden = 0
    for (source, target), n in cells.items():
        if source in index and target in index:
            rows[index[source]][index[target]] += n
        else:
            hidden += n
    return Matrix(
        nodes=nodes,
        kinds=[node_kind(node, bots) for node in nodes],
        rows=rows,
        row_totals=[sum(row) for row in rows],
        col_totals=[sum(col) for col in zip(*rows, strict=True)] if rows else [],
        total=sum(cells.values()),
        hidden=hidden,
        max_cell=max((max(row) for row in rows if row), default=0),
    )


def _describe(chains: list[Chain]) -> None:
    """Customer, start time and latest hop of a few chains (one query)."""
    if not chains:
        return
    hops = (
        Handoff.objects.filter(chain_id__in=[uuid.UUID(c.key) for c in chains])
        .order_by("hop_index")
        .values_list(
            "chain_id",
            "hop_index",
            "pk",
            "conversation_id",
            "customer",
            "customer_name",
            "created_at",
        )
    )
    firsts: dict[str, tuple] = {}
    lasts: dict[str, tuple[int, int | None]] = {}
    for chain_id, index, pk, conversation, customer, name, created in hops:
        if index == 0:
            firsts[chain_id.hex] = (customer, name, created)
        lasts[chain_id.hex] = (pk, conversation)
    for chain in chains:
        key = uuid.UUID(chain.key).hex
        chain.customer, chain.customer_name, chain.started_at = firsts.get(key, ("", "", None))
        chain.last_hop_id, chain.last_conversation_id = lasts.get(key, (None, None))


# ---------------------------------------------------------------- CSV export
@dataclass
class CsvHop:
    """What one CSV row is about: a hop of an issue, with the issue's figures."""

    chain: Chain
    number: int  # 1 for the first hop
    hop: tuple
    teams: dict[int, str]
    usernames: dict[int, str]
    columns: dict[str, int]  # the extra scanned columns' positions

    def scanned(self, name: str) -> Any:
        return self.hop[self.columns[name]]


def _yes(value: bool) -> str:
    return "yes" if value else "no"


# The CSV's one fixed column set, in order: (header, value of a row). One row per hop,
# every row with its issue's columns first, so every export has the same header and
# every row the same width. Add a column by adding it here.
CSV_COLUMNS: list[tuple[str, Callable[[CsvHop], Any]]] = [
    ("issue", lambda r: r.chain.chain_id),
    ("customer", lambda r: r.chain.customer),
    ("customer_name", lambda r: r.chain.customer_name),
    ("started_at", lambda r: _iso(r.chain.started_at)),
    ("hops", lambda r: r.chain.hops),
    ("path", lambda r: r.chain.path),
    ("ping_pong", lambda r: _yes(r.chain.ping_pong)),
    ("loop", lambda r: _yes(r.chain.loop)),
    ("human_wait_secs", lambda r: _secs(r.chain.human_wait_secs)),
    ("sentiment_at_handoff", lambda r: round(r.chain.sentiment_at_handoff, 3)),
    ("sentiment_at_close", lambda r: round(r.chain.sentiment_at_close, 3)),
    ("source_bot", lambda r: r.chain.source),
    ("hop", lambda r: r.number),
    ("hop_from", lambda r: r.hop[FROM]),
    ("hop_to", lambda r: r.hop[TO]),
    ("hop_team", lambda r: r.teams.get(r.hop[TEAM], "")),
    ("hop_status", lambda r: r.scanned("status")),
    ("hop_accepted_by", lambda r: r.usernames.get(r.hop[BY], "")),
    ("hop_created_at", lambda r: _iso(r.scanned("created_at"))),
    ("hop_accepted_at", lambda r: _iso(r.scanned("accepted_at"))),
    ("hop_wait_secs", lambda r: _secs(r.hop[WAIT]) if r.hop[TEAM] is not None else ""),
    ("hop_rating", lambda r: r.hop[RATING]),
]
CSV_EXTRA_SCAN = ("status", "customer", "customer_name", "created_at", "accepted_at")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"  # Excel reads a CSV as UTF-8 ("Zoë") only with it


def csv_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas in text that bots or customers wrote."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _secs(value: float | None) -> float | str:
    return "" if value is None else round(value, 3)


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def write_csv(f: ReportFilter, out: IO[str], *, now: datetime | None = None) -> int:
    """The CSV export: a UTF-8 BOM, the ``CSV_COLUMNS`` header, then one row per hop of
    each issue, issues in start order; returns the number of issues.

    The figures are the report's own (the same scan and chain logic), so the two agree.
    """
    import csv

    now = now or timezone.now()
    columns = {name: len(SCAN_COLUMNS) + i for i, name in enumerate(CSV_EXTRA_SCAN)}
    chains = _scan(f, now, CSV_EXTRA_SCAN)
    lookups = _lookups(f)
    teams = dict(Team.objects.values_list("pk", "slug"))
    created_at = columns["created_at"]
    chains.sort(key=lambda hops: (hops[0][created_at], hops[0][KEY]))
    out.write(BOM)
    writer = csv.writer(out)
    writer.writerow([header for header, _ in CSV_COLUMNS])
    csat = csat_by_chain(f)
    for hops in chains:
        chain = _chain(hops, lookups)
        chain.csat = csat.get(uuid.UUID(chain.chain_id))
        first = hops[0]
        chain.customer = first[columns["customer"]]
        chain.customer_name = first[columns["customer_name"]]
        chain.started_at = first[created_at]
        for number, hop in enumerate(hops, start=1):
            row = CsvHop(chain, number, hop, teams, lookups.usernames, columns)
            writer.writerow([csv_cell(value(row)) for _, value in CSV_COLUMNS])
    return len(chains)


# ---------------------------------------------------------------- customer satisfaction
SATISFIED = 4  # a 4 or 5 of 5 counts as satisfied (the usual CSAT score)
CSV_CSAT_COLUMNS = ["csat_asked", "csat_score", "csat_comment"]
# The issue's customer rating, last on every one of its rows.
CSV_COLUMNS.extend(
    (name, lambda r, i=i: csat_cells(r.chain.csat)[i]) for i, name in enumerate(CSV_CSAT_COLUMNS)
)


@dataclass
class CsatRow:
    """CSAT figures of one agent, team or source bot (or of everything)."""

    name: str
    asked: int = 0
    rated: int = 0
    total: int = 0
    satisfied: int = 0

    def add(self, score: int | None) -> None:
        self.asked += 1
        if score is not None:
            self.rated += 1
            self.total += score
            self.satisfied += score >= SATISFIED

    @property
    def response_rate(self) -> int | None:
        """Percent of the customers asked who answered."""
        return round(100 * self.rated / self.asked) if self.asked else None

    @property
    def score(self) -> int | None:
        """The CSAT score: percent of answers that were 4 or 5."""
        return round(100 * self.satisfied / self.rated) if self.rated else None

    @property
    def mean(self) -> float | None:
        return self.total / self.rated if self.rated else None


@dataclass
class CsatReport:
    overall: CsatRow
    by_agent: list[CsatRow] = field(default_factory=list)
    by_team: list[CsatRow] = field(default_factory=list)
    by_source: list[CsatRow] = field(default_factory=list)


def _csat_hops(f: ReportFilter) -> list[tuple[uuid.UUID, int | None, int | None, int | None, str]]:
    """The asked hops of the issues ``f`` selects: (chain, agent, team, score, source).

    The issues are the report's own: first hop in the range and, with a team filter,
    a hop that went to the team. Reads the ``handoff_csat`` partial index.
    """
    asked = list(
        Handoff.objects.filter(created_at__gte=f.start, csat_asked_at__isnull=False)
        .order_by("created_at", "pk")
        .values_list("chain_id", "accepted_by_id", "team_id", "csat_score")
    )
    if not asked:
        return []
    chain_ids = {row[0] for row in asked}
    bot_names = dict(Bot.objects.values_list("pk", "name"))
    sources = {
        chain_id: bot_names.get(bot_id) or from_agent
        for chain_id, bot_id, from_agent in Handoff.objects.filter(
            chain_id__in=chain_ids, hop_index=0, created_at__gte=f.start, created_at__lt=f.end
        ).values_list("chain_id", "created_by_bot_id", "from_agent")
    }
    if f.team is not None:
        touched = set(
            Handoff.objects.filter(chain_id__in=chain_ids, team=f.team).values_list(
                "chain_id", flat=True
            )
        )
        sources = {chain_id: s for chain_id, s in sources.items() if chain_id in touched}
    return [
        (chain_id, agent, team, score, sources[chain_id])
        for chain_id, agent, team, score in asked
        if chain_id in sources
    ]


def csat_report(f: ReportFilter) -> CsatReport:
    """CSAT score and response rate overall and per agent, team and source bot.

    Each asked hop (the last hop of a conversation when its customer was asked) counts
    once: for the agent who had it, its team and the bot that started the issue.
    """
    usernames = dict(Agent.objects.values_list("pk", f"user__{get_user_model().USERNAME_FIELD}"))
    teams = dict(Team.objects.values_list("pk", "slug"))
    overall = CsatRow(name="all")
    groups: dict[str, dict[str, CsatRow]] = {"agent": {}, "team": {}, "source": {}}
    for _chain, agent, team, score, source in _csat_hops(f):
        overall.add(score)
        keys = {
            "agent": usernames.get(agent, "(no agent)") if agent else "(no agent)",
            "team": teams.get(team, "(no team)") if team else "(no team)",
            "source": source,
        }
        for kind, key in keys.items():
            groups[kind].setdefault(key, CsatRow(name=key)).add(score)

    def ordered(rows: dict[str, CsatRow]) -> list[CsatRow]:
        return sorted(rows.values(), key=lambda row: (-row.asked, row.name))

    return CsatReport(
        overall=overall,
        by_agent=ordered(groups["agent"]),
        by_team=ordered(groups["team"]),
        by_source=ordered(groups["source"]),
    )


def csat_by_chain(f: ReportFilter) -> dict[uuid.UUID, tuple[bool, int | None, str]]:
    """Per issue: asked?, the latest score and the conversation's comment (the CSV)."""
    found: dict[uuid.UUID, tuple[bool, int | None, str]] = {}
    for chain_id, _agent, _team, score, _source in _csat_hops(f):
        previous = found.get(chain_id)
        found[chain_id] = (True, score if score is not None else (previous or (0, None))[1], "")
    if found:
        comments = dict(
            Handoff.objects.filter(chain_id__in=found, conversation__csat_at__isnull=False)
            .values_list("chain_id", "conversation__csat_comment")
            .distinct()
        )
        for chain_id, (asked, score, _) in found.items():
            found[chain_id] = (asked, score, comments.get(chain_id, ""))
    return found


def csat_cells(csat: tuple[bool, int | None, str] | None) -> list[Any]:
    if csat is None:
        return ["no", "", ""]
    asked, score, comment = csat
    return ["yes" if asked else "no", "" if score is None else score, comment]
