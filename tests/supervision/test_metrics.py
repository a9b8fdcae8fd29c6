"""``GET /metrics``: Prometheus text format behind a bearer token."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from handoffs.models import Handoff, MemoryWrite, Status

pytestmark = pytest.mark.django_db

TOKEN = "scrape-token-for-tests"


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_TOKEN = TOKEN


def scrape(client, token: str | None = TOKEN):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    return client.get("/metrics", **headers)


def samples(response) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_refused_without_the_token(client, metrics_on):
    assert scrape(client, None).status_code == 401
    assert scrape(client, "wrong").status_code == 401
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_off_when_no_token_is_configured(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_the_figures_in_prometheus_text_format(client, metrics_on, teams, make_agent):
    team = teams["billing-specialist"]
    now = timezone.now()
    Handoff.objects.create(
        customer="c1",
        dedupe_key="c1",
        team=team,
        status=Status.WAITING,
        created_at=now - timedelta(seconds=90),
    )
    Handoff.objects.create(
        customer="c2",
        dedupe_key="c2",
        team=team,
        status=Status.WAITING,
        created_at=now - timedelta(seconds=30),
    )
    agent = make_agent("ann", teams=[team])
    Handoff.objects.create(
        customer="c3",
        dedupe_key="c3",
        team=team,
        status=Status.ACCEPTED,
        accepted_by=agent,
        created_at=now - timedelta(seconds=100),
        accepted_at=now - timedelta(seconds=80),  # 20 s to accept
    )
    MemoryWrite.objects.create(
        operation="store", payload={}, created_at=now - timedelta(seconds=40)
    )

    response = scrape(client)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert "# TYPE console_waiting_handoffs gauge" in response.content.decode()
    found = samples(response)
    slug = (("team", team.slug),)
    assert found[("console_waiting_handoffs", slug)] == 2
    assert 89 <= found[("console_oldest_wait_seconds", slug)] < 120
    assert found[("console_accept_latency_seconds_bucket", (("le", "15.0"),))] == 0
    assert found[("console_accept_latency_seconds_bucket", (("le", "30.0"),))] == 1
    assert found[("console_accept_latency_seconds_count", ())] == 1
    assert found[("console_accept_latency_seconds_sum", ())] == pytest.approx(20, abs=1)
    assert found[("console_outbox_backlog", (("outbox", "memory"),))] == 1
    assert 39 <= found[("console_outbox_oldest_seconds", (("outbox", "memory"),))] < 70
    assert found[("console_outbox_backlog", (("outbox", "webhook"),))] == 0
    assert found[("console_handoffs_created_total", ())] == 3
    assert ("console_http_errors_total", ()) in found
    assert any(name == "console_open_sockets" for name, _ in found) or (
        "# TYPE console_open_sockets gauge" in response.content.decode()
    )
