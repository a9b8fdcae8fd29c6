"""The transfer report: a known history built through the public APIs, then checked
figure by figure (counts, chains, matrix, percentiles), in the page and in the CSV.

Bot hops arrive over HTTP (``POST /api/v1/handoffs`` with bot keys); people accept,
transfer, hand back and resolve through the console's own views; the customer writes
through the web-chat link. The clock can't be steered through HTTP, so once the history
exists each hop's timestamps are pinned to a known timeline (``T0`` + seconds).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from handoffs.api.keys import bot_create
from handoffs.lifecycle import estimate
from handoffs.models import Agent, Bot, Event, Handoff, Role, Status
from handoffs.supervision import reports

pytestmark = [pytest.mark.django_db, pytest.mark.pg]  # the SQL is vendor-specific

ANGRY, FRUSTRATED, NEUTRAL, POSITIVE = -0.9, -0.5, 0.0, 0.6  # the bots' words as scores
CUSTOMER_A_LAST_WORDS = [
    "Still waiting, this is ridiculous.",
    "Ok, thanks, that helps.",
    "Great, the refund arrived. Thank you so much!",
    "Perfect, everything works now. Wonderful support!",
]


def t0() -> datetime:
    """Yesterday 10:00 in the console's time zone: inside a yesterday..today report."""
    yesterday = timezone.localdate() - timedelta(days=1)
    return timezone.make_aware(datetime.combine(yesterday, datetime.min.time())) + timedelta(
        hours=10
    )


@dataclass
class World:
    bots: dict[str, tuple[Bot, str]]
    agents: dict[str, Agent]
    clients: dict[str, Client]
    anonymous: Client  # bots and customers (one client: each new one rescans static files)

    def post_handoff(self, bot: str, **fields) -> Handoff:
        body = {"source_session_id": "", **fields}
        response = self.anonymous.post(
            "/api/v1/handoffs",
            body,
            content_type="application/json",
            headers={"authorization": f"Bearer {self.bots[bot][1]}"},
        )
        assert response.status_code == 201, response.content
        return Handoff.objects.get(public_id=response.json()["handoff"]["id"])

    def accept(self, who: str, hop: Handoff) -> None:
        response = self.clients[who].post(f"/handoffs/{hop.pk}/accept")
        assert response.status_code == 302, response.content
        assert Handoff.objects.get(pk=hop.pk).accepted_by == self.agents[who]

    def close(self, who: str, hop: Handoff, action: str, **fields) -> Handoff | None:
        """Resolve, transfer or hand back through the endings form; returns the next hop."""
        before = set(Handoff.objects.values_list("pk", flat=True))
        confirm = {"confirm": "1"} if action == "resolve" else {}  # Resolve asks first
        response = self.clients[who].post(
            f"/conversations/{hop.pk}/close", {"action": action, **confirm, **fields}
        )
        assert response.status_code == 302 and response.url == "/", response
        assert Handoff.objects.get(pk=hop.pk).status != Status.ACCEPTED
        created = Handoff.objects.exclude(pk__in=before)
        return created.get() if created.exists() else None

    def customer_says(self, hop: Handoff, *texts: str) -> None:
        token = Handoff.objects.get(pk=hop.pk).conversation.token
        for i, text in enumerate(texts):
            response = self.anonymous.post(
                f"/c/{token}/messages", {"body": text, "client_id": f"c-{hop.pk}-{i}"}
            )
            assert response.status_code == 201, response.content


def pin(hop: Handoff, created: int, accepted: int | None = None) -> None:
    """Put a hop on the test's timeline (seconds after T0)."""
    base = t0()
    Handoff.objects.filter(pk=hop.pk).update(
        created_at=base + timedelta(seconds=created),
        accepted_at=base + timedelta(seconds=accepted) if accepted is not None else None,
    )


@pytest.fixture
def world(teams, make_agent) -> World:
    bots = {name: bot_create(name=name) for name in ("tier1-bot", "web-assistant")}
    bots["billing-bot"] = bot_create(name="billing-bot")
    billing, tech = teams["billing-specialist"], teams["tech-support"]
    agents = {
        "alice": make_agent("alice", teams=[billing]),
        "bob": make_agent("bob", teams=[tech]),
        "carol": make_agent("carol", teams=[billing]),
        "sue": make_agent("sue", role=Role.SUPERVISOR),
    }
    clients = {}
    for name, agent in agents.items():
        clients[name] = Client()
        clients[name].force_login(agent.user)
    return World(bots=bots, agents=agents, clients=clients, anonymous=Client())


@pytest.fixture
def history(world) -> dict[str, list[Handoff]]:
    """Four issues:

    A  tier1-bot → alice → (transfer) bob → (hand back) tier1-bot → carol   bot→h→h→bot→h
    B  tier1-bot → alice → (to bob) bob → (to alice) alice                  ping-pong
    C  web-assistant → billing-bot (bot-to-bot) → bob                       bot-to-bot hop
    D  tier1-bot → billing-specialist, still waiting
    """
    w = world
    a0 = w.post_handoff(
        "tier1-bot",
        customer="cust-a",
        customer_name="Ann Archer",
        from_agent="tier1-bot",
        to_agent="billing-specialist",
        summary="Charged twice for the March invoice; wants a refund.",
        sentiment="angry",
    )
    w.accept("alice", a0)
    w.customer_says(a0, CUSTOMER_A_LAST_WORDS[0])
    a1 = w.close(
        "alice",
        a0,
        "transfer",
        to="tech-support",
        note="Refund needs a ledger fix.",
        rating="accurate",
    )
    w.accept("bob", a1)
    a2 = w.close(
        "bob", a1, "handback", note="Ledger fixed; bot can confirm.", rating="missing_info"
    )
    a3 = w.post_handoff(
        "tier1-bot",
        customer="cust-a",
        from_agent="tier1-bot",
        to_agent="billing-specialist",
        summary="Customer asks for the refund receipt.",
        sentiment="frustrated",
    )
    w.accept("carol", a3)
    w.customer_says(a3, *CUSTOMER_A_LAST_WORDS[1:])
    assert w.close("carol", a3, "resolve", note="Receipt sent.", rating="accurate") is None

    b0 = w.post_handoff(
        "tier1-bot",
        customer="cust-b",
        customer_name="Ben Brooks",
        from_agent="tier1-bot",
        to_agent="billing-specialist",
        summary="Cannot change the billing address.",
        sentiment="frustrated",
    )
    w.accept("alice", b0)
    b1 = w.close(
        "alice", b0, "transfer", to="human:bob", note="Address form bug?", rating="accurate"
    )
    w.accept("bob", b1)
    b2 = w.close(
        "bob",
        b1,
        "transfer",
        to="human:alice",
        note="It is a billing question after all.",
        rating="unnecessary",
    )
    w.accept("alice", b2)
    w.close("alice", b2, "resolve", note="Address changed.")

    c0 = w.post_handoff(
        "web-assistant",
        customer="cust-c",
        from_agent="web-assistant",
        to_agent="billing-bot",
        summary="Billing question about a plan upgrade.",
        sentiment="neutral",
    )
    c1 = w.post_handoff(
        "billing-bot",
        customer="cust-c",
        from_agent="billing-bot",
        to_agent="tech-support",
        summary="The upgrade button fails with an error.",
        sentiment="positive",
    )
    w.accept("bob", c1)
    w.close("bob", c1, "resolve", note="Fixed the button.", rating="missing_info")

    d0 = w.post_handoff(
        "tier1-bot",
        customer="cust-d",
        from_agent="tier1-bot",
        to_agent="billing-specialist",
        summary="Wants an invoice copy.",
        sentiment="positive",
    )

    # The timeline (seconds after T0): time to accept and waiting are known exactly.
    pin(a0, 0, 60)
    pin(a1, 300, 420)
    pin(a2, 600)
    pin(a3, 900, 930)
    pin(b0, 100, 190)
    pin(b1, 400, 460)
    pin(b2, 700, 940)
    pin(c0, 200)
    pin(c1, 500, 680)
    pin(d0, 1000)
    return {"A": [a0, a1, a2, a3], "B": [b0, b1, b2], "C": [c0, c1], "D": [d0]}


def the_filter(**kw) -> reports.ReportFilter:
    today = timezone.localdate()
    return reports.ReportFilter(
        date_from=kw.get("date_from", today - timedelta(days=1)),
        date_to=kw.get("date_to", today),
        team=kw.get("team"),
    )


NOW = 1600  # seconds after T0 when the report is read: D has waited 600 s


def test_the_history_is_what_it_claims(history):
    a, b, c, d = history["A"], history["B"], history["C"], history["D"]
    for chain in (a, b, c, d):
        assert [h.hop_index for h in chain] == list(range(len(chain)))
        assert len({h.chain_id for h in chain}) == 1
    assert a[2].status == Status.BOT_HOP and a[2].to_agent == "tier1-bot"
    assert c[0].status == Status.BOT_HOP and c[0].to_bot.name == "billing-bot"
    assert b[1].to_agent == "human:bob" and b[2].to_agent == "human:alice"
    assert d[0].status == Status.WAITING


def test_counts_chains_matrix_and_percentiles(history):
    report = reports.transfer_report(the_filter(), now=t0() + timedelta(seconds=NOW))

    assert report.issues == 4
    assert report.hops == 10
    assert report.bot_hops == 2
    assert report.lengths == [(1, 1), (2, 1), (3, 1), (4, 1)]
    assert report.ping_pong == 1
    assert report.loops == 2

    chains = {c.customer: c for c in report.longest}
    # A one-hop issue (D) is no chain: not listed among the longest.
    assert [c.customer for c in report.longest] == ["cust-a", "cust-b", "cust-c"]
    assert chains["cust-a"].path == (
        "tier1-bot → human:alice → human:bob → tier1-bot → human:carol"
    )
    assert (chains["cust-a"].ping_pong, chains["cust-a"].loop) == (False, True)
    assert chains["cust-b"].path == "tier1-bot → human:alice → human:bob → human:alice"
    assert (chains["cust-b"].ping_pong, chains["cust-b"].loop) == (True, True)
    assert chains["cust-c"].path == "web-assistant → billing-bot → human:bob"
    assert (chains["cust-c"].ping_pong, chains["cust-c"].loop) == (False, False)
    assert chains["cust-c"].kinds == ["bot", "bot", "human"]
    # Each listed chain links to its latest hop (the card) and conversation.
    assert chains["cust-a"].last_hop_id == history["A"][-1].pk
    assert chains["cust-a"].last_conversation_id == history["A"][-1].conversation_id
    assert chains["cust-a"].customer_name == "Ann Archer"
    assert chains["cust-a"].started_at == t0()

    # Waiting for a human per issue: the sum over the chain's human-queued hops.
    assert chains["cust-a"].human_wait_secs == pytest.approx(60 + 120 + 30, abs=0.01)
    assert chains["cust-b"].human_wait_secs == pytest.approx(90 + 60 + 240, abs=0.01)
    assert chains["cust-c"].human_wait_secs == pytest.approx(180, abs=0.01)
    assert report.human_wait_issues == 4
    assert report.human_wait_p50 == pytest.approx(210, abs=0.01)  # of 180, 210, 390, 600
    assert report.human_wait_p90 == pytest.approx(600, abs=0.01)

    matrix = report.matrix
    cells = {
        (source, target): n
        for source, row in zip(matrix.nodes, matrix.rows, strict=True)
        for target, n in zip(matrix.nodes, row, strict=True)
        if n
    }
    assert cells == {
        ("tier1-bot", "human:alice"): 2,
        ("human:alice", "human:bob"): 2,
        ("human:bob", "tier1-bot"): 1,
        ("tier1-bot", "human:carol"): 1,
        ("human:bob", "human:alice"): 1,
        ("web-assistant", "billing-bot"): 1,
        ("billing-bot", "human:bob"): 1,
        ("tier1-bot", "billing-specialist"): 1,
    }
    assert matrix.total == 10 and matrix.hidden == 0

    accept = {row.team: row for row in report.accept}
    assert set(accept) == {"billing-specialist", "tech-support"}
    # billing: 30, 60, 90, 240 -> p50 60, p90 240 (nearest rank)
    assert accept["billing-specialist"].accepted == 4
    assert accept["billing-specialist"].p50 == pytest.approx(60, abs=0.01)
    assert accept["billing-specialist"].p90 == pytest.approx(240, abs=0.01)
    # tech-support: 60, 120, 180 -> p50 120, p90 180
    assert accept["tech-support"].accepted == 3
    assert accept["tech-support"].p50 == pytest.approx(120, abs=0.01)
    assert accept["tech-support"].p90 == pytest.approx(180, abs=0.01)

    ratings = {r.source: r.counts for r in report.ratings}
    assert ratings == {
        "tier1-bot": {"accurate": 3, "missing_info": 1, "unnecessary": 1},
        "web-assistant": {"accurate": 0, "missing_info": 1, "unnecessary": 0},
    }


def test_sentiment_at_handoff_vs_close(history):
    report = reports.transfer_report(the_filter(), now=t0() + timedelta(seconds=NOW))
    chains = {c.customer: c for c in report.longest}
    # A: the mean of the customer's last three messages (VADER, as the chat scores them).
    last_three = [estimate.estimate_sentiment(t)[1] for t in CUSTOMER_A_LAST_WORDS[-3:]]
    assert chains["cust-a"].sentiment_at_handoff == ANGRY
    assert chains["cust-a"].sentiment_at_close == pytest.approx(sum(last_three) / 3)
    assert chains["cust-a"].trend == "improved"
    # No customer messages: the last hop's sentiment.
    b_last = Handoff.objects.get(pk=history["B"][-1].pk).sentiment_score
    assert chains["cust-b"].sentiment_at_close == pytest.approx(b_last)
    assert chains["cust-c"].sentiment_at_handoff == NEUTRAL
    assert chains["cust-c"].sentiment_at_close == POSITIVE
    # D (one hop, no customer messages) closes where it started: steady.
    d_score = Handoff.objects.get(pk=history["D"][0].pk).sentiment_score

    shift = report.sentiment
    assert shift.issues == 4
    at_close = [c.sentiment_at_close for c in chains.values()] + [d_score]
    assert shift.mean_at_handoff == pytest.approx((ANGRY + FRUSTRATED + NEUTRAL + POSITIVE) / 4)
    assert shift.mean_at_close == pytest.approx(sum(at_close) / 4)
    trends = [c.trend for c in chains.values()] + ["steady"]
    assert (shift.improved, shift.steady, shift.worsened) == (
        trends.count("improved"),
        trends.count("steady"),
        trends.count("worsened"),
    )
    assert shift.improved >= 2  # A (angry -> thanks) and C (neutral -> positive)


def test_team_and_date_filters(history, teams):
    now = t0() + timedelta(seconds=NOW)
    tech = reports.transfer_report(the_filter(team=teams["tech-support"]), now=now)
    assert sorted(c.customer for c in tech.longest) == ["cust-a", "cust-b", "cust-c"]
    assert tech.hops == 9
    before = timezone.localdate() - timedelta(days=3)
    empty = reports.transfer_report(the_filter(date_from=before, date_to=before), now=now)
    assert empty.issues == 0 and empty.longest == [] and empty.matrix is None


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))


def test_csv_matches_the_report(history):
    now = t0() + timedelta(seconds=NOW)
    report = reports.transfer_report(the_filter(), now=now)
    out = io.StringIO()
    assert reports.write_csv(the_filter(), out, now=now) == 4
    text = out.getvalue()
    assert text.startswith("\ufeff")  # Excel reads UTF-8 ("Zoë") only with a BOM
    lines = list(csv.reader(io.StringIO(text[1:])))
    # One fixed column set: the header is CSV_COLUMNS and every row has its width.
    assert lines[0] == [header for header, _ in reports.CSV_COLUMNS]
    assert {len(line) for line in lines} == {len(reports.CSV_COLUMNS)}
    rows = read_csv(text)
    by_customer: dict[str, list[dict]] = {}
    for row in rows:
        by_customer.setdefault(row["customer"], []).append(row)
    assert set(by_customer) == {"cust-a", "cust-b", "cust-c", "cust-d"}
    for chain in report.longest:
        hops = by_customer[chain.customer]
        assert [int(h["hop"]) for h in hops] == list(range(1, chain.hops + 1))
        for row in hops:  # the issue's figures on every one of its rows
            assert row["issue"] == chain.chain_id
            assert int(row["hops"]) == chain.hops
            assert row["path"] == chain.path
            assert row["ping_pong"] == ("yes" if chain.ping_pong else "no")
            assert row["loop"] == ("yes" if chain.loop else "no")
            assert float(row["human_wait_secs"]) == pytest.approx(chain.human_wait_secs, abs=0.01)
            assert float(row["sentiment_at_handoff"]) == pytest.approx(chain.sentiment_at_handoff)
            assert float(row["sentiment_at_close"]) == pytest.approx(
                chain.sentiment_at_close, abs=0.001
            )
        # The hops, in order, rebuild the same path.
        nodes = [hops[0]["hop_from"]] + [
            f"human:{h['hop_accepted_by']}" if h["hop_accepted_by"] else h["hop_to"] for h in hops
        ]
        assert " → ".join(nodes) == chain.path
    a = by_customer["cust-a"]
    assert a[0]["source_bot"] == "tier1-bot"
    assert by_customer["cust-c"][0]["source_bot"] == "web-assistant"
    assert [h["hop_team"] for h in a] == [
        "billing-specialist",
        "tech-support",
        "",
        "billing-specialist",
    ]
    assert [h["hop_status"] for h in a] == ["transferred", "handed_back", "bot_hop", "resolved"]
    assert [h["hop_rating"] for h in a] == ["accurate", "missing_info", "", "accurate"]
    assert a[0]["hop_created_at"] == t0().isoformat()
    assert a[0]["hop_accepted_at"] == (t0() + timedelta(seconds=60)).isoformat()
    assert float(a[1]["hop_wait_secs"]) == pytest.approx(120, abs=0.01)
    assert a[2]["hop_wait_secs"] == ""  # a bot hop waits for no human


def test_csv_over_http_and_formula_injection(world, history):
    sue = world.clients["sue"]
    today = timezone.localdate()
    query = f"from={today - timedelta(days=1)}&to={today}"
    response = sue.get(f"/reports/transfers.csv?{query}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    assert response.content.startswith("\ufeff".encode())
    rows = read_csv(response.content.decode())
    assert len({row["issue"] for row in rows}) == 4
    # A hostile agent name can't become a spreadsheet formula.
    Handoff.objects.filter(pk=history["D"][0].pk).update(to_agent="=HYPERLINK(1)")
    rows = read_csv(sue.get(f"/reports/transfers.csv?{query}").content.decode())
    d = next(r for r in rows if r["customer"] == "cust-d")
    assert d["hop_to"] == "'=HYPERLINK(1)"
    assert d["path"] == "tier1-bot → =HYPERLINK(1)"  # not at the start of a cell: inert


def test_the_page_shows_the_report(world, history):
    sue = world.clients["sue"]
    today = timezone.localdate()
    response = sue.get(f"/reports/transfers/?from={today - timedelta(days=1)}&to={today}")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<span class="tile-value" id="n-issues">4</span>' in html
    assert '<span class="tile-value" id="n-hops">10</span>' in html
    assert '<span class="tile-value" id="n-ping-pong">1</span>' in html
    assert '<span class="tile-value" id="n-loops">2</span>' in html
    assert 'data-path="tier1-bot → human:alice → human:bob → human:alice"' in html
    assert "ping-pong</span>" in html
    assert "<svg" in html and 'id="lengths-chart"' in html and 'id="accept-chart"' in html
    assert "https://" not in html.split("<main")[1]  # nothing from a CDN
    assert "?from=" in html and "transfers.csv" in html
    # htmx asks for the body only.
    partial = sue.get(
        f"/reports/transfers/?from={today - timedelta(days=1)}&to={today}",
        headers={"HX-Request": "true"},
    )
    assert partial.status_code == 200
    assert "<html" not in partial.content.decode()
    assert 'id="report-body"' in partial.content.decode()


def test_hostile_names_are_escaped(world, history):
    Handoff.objects.filter(pk=history["D"][0].pk).update(
        to_agent="<img src=x onerror=alert(1)>", customer="<b>cust</b>"
    )
    today = timezone.localdate()
    html = (
        world.clients["sue"]
        .get(f"/reports/transfers/?from={today - timedelta(days=1)}&to={today}")
        .content.decode()
    )
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<b>cust</b>" not in html


@pytest.mark.parametrize(
    "query",
    ["from=yesterday", "from=2026-02-30", "from=2026-03-02&to=2026-03-01", "team=no-such-team"],
)
def test_bad_filters_get_a_clear_400(world, query):
    response = world.clients["sue"].get(f"/reports/transfers/?{query}")
    assert response.status_code == 400
    assert 'id="report-errors"' in response.content.decode()
    assert world.clients["sue"].get(f"/reports/transfers.csv?{query}").status_code == 400


def test_default_range_is_the_last_seven_days(world, history):
    response = world.clients["sue"].get("/reports/transfers/")
    assert response.status_code == 200
    assert response.context["f"] == reports.default_filter()
    assert response.context["report"].issues == 4


@pytest.mark.parametrize(
    "path",
    ["/floor/", "/reports/transfers/", "/reports/transfers.csv", "/floor/handoffs/1/reassign"],
)
def test_agents_get_403_supervisors_and_admins_get_in(world, make_agent, path):
    assert world.clients["alice"].get(path).status_code == 403
    assert Client().get(path).status_code == 302  # to the login page
    admin = make_agent("root", capacity=1)
    admin.user.is_staff = True
    admin.user.save()
    client = Client()
    client.force_login(admin.user)
    expected = 404 if "reassign" in path else 200  # no handoff 1 here
    assert client.get(path).status_code == expected
    assert world.clients["sue"].get(path).status_code == expected


def test_agents_cannot_reassign(world, history):
    hop = history["D"][0]
    response = world.clients["alice"].post(
        f"/floor/handoffs/{hop.pk}/reassign", {"to": world.agents["carol"].pk}
    )
    assert response.status_code == 403
    assert Handoff.objects.get(pk=hop.pk).assigned_to is None
    assert not Event.objects.filter(kind="handoff.reassigned").exists()


def test_supervisor_nav_links(world):
    assert 'href="/floor/"' in world.clients["sue"].get("/").content.decode()
    assert 'href="/floor/"' not in world.clients["alice"].get("/").content.decode()


def test_percentile_is_nearest_rank():
    assert reports.percentile([], 50) is None
    assert reports.percentile([30, 60, 120], 50) == 60
    assert reports.percentile([30, 60, 120], 90) == 120
    assert reports.percentile([5], 90) == 5


def test_path_flags():
    assert reports.path_flags(["a", "b", "a"]) == (True, True)
    assert reports.path_flags(["a", "b", "c", "a"]) == (False, True)
    assert reports.path_flags(["a", "b", "c"]) == (False, False)
    assert reports.path_flags(["a"]) == (False, False)


def test_an_inverted_range_is_an_error_inside_the_page(world):
    sue = world.clients["sue"]
    response = sue.get(
        "/reports/transfers/?from=2030-01-10&to=2030-01-01", headers={"HX-Request": "true"}
    )
    # 422 is swapped by htmx (base.html's htmx-config): the fragment, not a bare error.
    assert response.status_code == 422
    assert "<html" not in response.text and 'id="report-body"' in response.text
    assert "The start date is after the end date." in response.text
    page = sue.get("/reports/transfers/?from=2030-01-10&to=2030-01-01")
    assert page.status_code == 400 and "<html" in page.text
    assert "The start date is after the end date." in page.text


def test_the_matrix_leaves_out_rows_that_handed_nothing(history):
    report = reports.transfer_report(the_filter(), now=t0() + timedelta(seconds=NOW))
    matrix = report.matrix
    assert any(total == 0 for total in matrix.row_totals)  # e.g. a team that only receives
    assert all(total for _, _, _, total in matrix.lines)
    assert len(matrix.lines) == sum(1 for total in matrix.row_totals if total)
