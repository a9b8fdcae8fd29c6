"""``GET /metrics``: the console's figures in the Prometheus text format.

Protected by a bearer token (``METRICS_TOKEN``; unset, the route answers 404): a
scraper sends ``Authorization: Bearer <token>``; anything else gets 401.

Every figure is read at scrape time from what all processes share, the database and
Redis, so **any one process answers for the whole deployment**: scrape one address
(behind circus, whichever Daphne takes the connection), not each process. Nothing is
kept in per-process counters except ``console_realtime_failures_total`` (labelled with
the answering process).

- ``console_waiting_handoffs{team}``, ``console_oldest_wait_seconds{team}``
- ``console_accept_latency_seconds`` (histogram, every accepted hop: created → accepted)
- ``console_open_sockets{process}`` (agents' sockets per live serving process)
- ``console_outbox_backlog{outbox}``, ``console_outbox_oldest_seconds{outbox}``,
  ``console_outbox_failed{outbox}`` (memory writes and webhooks)
- ``console_handoffs_created_total`` (intake; ``rate()`` gives intake per second)
- ``console_http_errors_total`` (5xx answers, counted in the shared cache) and
  ``console_realtime_failures_total{process}``
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..models import Handoff, MemoryWrite, OutboxStatus, Status, Team, WebhookDelivery
from ..realtime import outage, registry

ACCEPT_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1800, 3600)
HTTP_ERRORS_KEY = "metrics:http_errors_total"


def count_http_error() -> None:
    """Count one 5xx answer (``console.boundary.server_error``); never raises."""
    from django.core.cache import cache

    with contextlib.suppress(Exception):
        cache.add(HTTP_ERRORS_KEY, 0, None)
        cache.incr(HTTP_ERRORS_KEY)


class ConsoleCollector:
    def collect(self):
        now = timezone.now()
        yield from self._queues(now)
        yield self._accept_latency()
        yield from self._sockets()
        yield from self._outboxes(now)
        yield from self._counters()

    def _queues(self, now):
        waiting = GaugeMetricFamily(
            "console_waiting_handoffs", "Handoffs waiting in a team's queue", labels=["team"]
        )
        oldest = GaugeMetricFamily(
            "console_oldest_wait_seconds",
            "How long the oldest waiting handoff of a team has waited",
            labels=["team"],
        )
        rows = {
            r["team__slug"]: r
            for r in Handoff.objects.filter(status=Status.WAITING, team__isnull=False)
            .values("team__slug")
            .annotate(n=Count("pk"), first=Min("created_at"))
        }
        for slug in Team.objects.values_list("slug", flat=True):
            row = rows.get(slug)
            waiting.add_metric([slug], row["n"] if row else 0)
            oldest.add_metric([slug], (now - row["first"]).total_seconds() if row else 0)
        yield waiting
        yield oldest

    def _accept_latency(self):
        accepted = Handoff.objects.filter(accepted_at__isnull=False)
        buckets = {
            f"b{le}": Count("pk", filter=Q(accepted_at__lte=_plus(le))) for le in ACCEPT_BUCKETS
        }
        figures = accepted.aggregate(
            total=Count("pk"),
            waited=Sum(
                ExpressionWrapper(F("accepted_at") - F("created_at"), output_field=DurationField())
            ),
            **buckets,
        )
        histogram = HistogramMetricFamily(
            "console_accept_latency_seconds",
            "Time from a handoff's arrival to its acceptance by an agent",
        )
        histogram.add_metric(
            [],
            [(str(float(le)), figures[f"b{le}"]) for le in ACCEPT_BUCKETS]
            + [("+Inf", figures["total"])],
            sum_value=figures["waited"].total_seconds() if figures["waited"] else 0.0,
        )
        return histogram

    def _sockets(self):
        sockets = GaugeMetricFamily(
            "console_open_sockets",
            "Agents' open WebSockets per live serving process",
            labels=["process"],
        )
        try:
            per_process = registry.open_sockets_per_process()
        except Exception:  # noqa: BLE001 - Redis down: no figure, the scrape still answers
            per_process = {}
        for process, count in sorted(per_process.items()):
            sockets.add_metric([process], count)
        yield sockets

    def _outboxes(self, now):
        backlog = GaugeMetricFamily(
            "console_outbox_backlog", "Outbox rows waiting to be applied", labels=["outbox"]
        )
        age = GaugeMetricFamily(
            "console_outbox_oldest_seconds",
            "Age of the oldest waiting outbox row",
            labels=["outbox"],
        )
        failed = GaugeMetricFamily(
            "console_outbox_failed", "Outbox rows that gave up (see admin)", labels=["outbox"]
        )
        for name, model in (("memory", MemoryWrite), ("webhook", WebhookDelivery)):
            figures = model.objects.aggregate(
                pending=Count("pk", filter=Q(status=OutboxStatus.PENDING)),
                failed=Count("pk", filter=Q(status=OutboxStatus.FAILED)),
                first=Min("created_at", filter=Q(status=OutboxStatus.PENDING)),
            )
            backlog.add_metric([name], figures["pending"])
            failed.add_metric([name], figures["failed"])
            first = figures["first"]
            age.add_metric([name], (now - first).total_seconds() if first else 0)
        yield backlog
        yield age
        yield failed

    def _counters(self):
        from django.core.cache import cache

        created = CounterMetricFamily(
            "console_handoffs_created", "Handoffs taken in (rate() gives intake per second)"
        )
        created.add_metric([], Handoff.objects.count())
        yield created
        errors = CounterMetricFamily(
            "console_http_errors", "HTTP 5xx answers, all processes (shared cache)"
        )
        value = 0
        with contextlib.suppress(Exception):
            value = int(cache.get(HTTP_ERRORS_KEY, 0) or 0)
        errors.add_metric([], value)
        yield errors
        realtime = CounterMetricFamily(
            "console_realtime_failures",
            "Failed channel-layer calls (broadcasts, socket connects) in this process",
            labels=["process"],
        )
        realtime.add_metric([registry.PROCESS_ID], outage.failures_total)
        yield realtime


def _plus(seconds: int):
    return F("created_at") + timedelta(seconds=seconds)


def _authorized(request: HttpRequest) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return (
        scheme.lower() == "bearer"
        and bool(token)
        and constant_time_compare(token.strip(), settings.METRICS_TOKEN)
    )


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not settings.METRICS_TOKEN:
        raise Http404("metrics are off (set METRICS_TOKEN)")
    if not _authorized(request):
        response = HttpResponse(
            "a bearer token is required\n", status=401, content_type="text/plain"
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    collectors = CollectorRegistry(auto_describe=False)
    collectors.register(ConsoleCollector())
    return HttpResponse(generate_latest(collectors), content_type=CONTENT_TYPE_LATEST)
