"""Reads for supervising offer routing and shift handovers: the floor's live offers and
recent answers, and the routing report (offers by outcome, declines by reason, time to
accept; per shift: conversations handed over, picked up, time to pick up)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.utils import timezone

from ..models import Handoff, Offer, OfferStatus, ShiftHandover

RECENT_ANSWERS = 10


@dataclass
class FloorRouting:
    live: list[Offer] = field(default_factory=list)
    answered: list[Offer] = field(default_factory=list)  # declined / timed out, newest first
    offer_teams: int = 0


def floor_routing(*, now: datetime | None = None) -> FloorRouting:
    """Live offers (who holds what, how long left) and the latest declines and timeouts."""
    from ..models import Team

    return FloorRouting(
        live=list(
            Offer.objects.filter(status=OfferStatus.LIVE)
            .select_related("handoff", "agent__user")
            .order_by("expires_at", "pk")[:50]
        ),
        answered=list(
            Offer.objects.filter(status__in=(OfferStatus.DECLINED, OfferStatus.EXPIRED))
            .select_related("handoff", "agent__user")
            .order_by("-answered_at", "-pk")[:RECENT_ANSWERS]
        ),
        offer_teams=Team.objects.filter(routing_mode="offer").count(),
    )


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _p90(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


@dataclass
class AgentOffers:
    name: str
    offered: int = 0
    accepted: int = 0
    declined: int = 0
    expired: int = 0
    seconds: list[float] = field(default_factory=list)

    @property
    def median_secs(self) -> float | None:
        return _median(self.seconds)


@dataclass
class ShiftRow:
    shift: ShiftHandover
    handed_over: int
    picked_up: int
    median_pickup_secs: float | None
    max_pickup_secs: float | None
    still_waiting: int


@dataclass
class RoutingReport:
    since: datetime
    until: datetime
    offered: int = 0
    accepted: int = 0
    declined: int = 0
    expired: int = 0
    withdrawn: int = 0
    skill_fallbacks: int = 0
    accept_p50: float | None = None
    accept_p90: float | None = None
    reasons: list[tuple[str, int]] = field(default_factory=list)
    agents: list[AgentOffers] = field(default_factory=list)
    shifts: list[ShiftRow] = field(default_factory=list)

    @property
    def accept_rate(self) -> int:
        answered = self.accepted + self.declined + self.expired
        return round(100 * self.accepted / answered) if answered else 0


def routing_report(*, since: datetime, until: datetime) -> RoutingReport:
    """Offers made and shifts ended in [since, until)."""
    report = RoutingReport(since=since, until=until)
    rows = list(
        Offer.objects.filter(created_at__gte=since, created_at__lt=until)
        .select_related("agent__user")
        .order_by("created_at", "pk")
    )
    per_agent: dict[int, AgentOffers] = {}
    accept_secs: list[float] = []
    reasons: dict[str, int] = {}
    for offer in rows:
        report.offered += 1
        report.skill_fallbacks += offer.skill_fallback
        row = per_agent.setdefault(offer.agent_id, AgentOffers(name=offer.agent.display_name))
        row.offered += 1
        if offer.status == OfferStatus.ACCEPTED and offer.answered_at:
            secs = (offer.answered_at - offer.created_at).total_seconds()
            report.accepted += 1
            row.accepted += 1
            row.seconds.append(secs)
            accept_secs.append(secs)
        elif offer.status == OfferStatus.DECLINED:
            report.declined += 1
            row.declined += 1
            reason = offer.reason.split(":", 1)[0] or "No reason"
            reasons[reason] = reasons.get(reason, 0) + 1
        elif offer.status == OfferStatus.EXPIRED:
            report.expired += 1
            row.expired += 1
        elif offer.status == OfferStatus.WITHDRAWN:
            report.withdrawn += 1
    report.accept_p50 = _median(accept_secs)
    report.accept_p90 = _p90(accept_secs)
    report.reasons = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    report.agents = sorted(per_agent.values(), key=lambda a: (-a.offered, a.name))

    shifts = (
        ShiftHandover.objects.filter(ended_at__gte=since, ended_at__lt=until)
        .select_related("agent__user")
        .annotate(
            handed=Count("hops"),
            waiting=Count("hops", filter=Q(hops__accepted_at__isnull=True)),
        )
        .order_by("-ended_at", "-pk")
    )
    for shift in shifts:
        pickups = [
            (accepted - created).total_seconds()
            for created, accepted in Handoff.objects.filter(
                shift_handover=shift, accepted_at__isnull=False
            ).values_list("created_at", "accepted_at")
        ]
        report.shifts.append(
            ShiftRow(
                shift=shift,
                handed_over=shift.handed,
                picked_up=len(pickups),
                median_pickup_secs=_median(pickups),
                max_pickup_secs=max(pickups) if pickups else None,
                still_waiting=shift.waiting,
            )
        )
    return report


def default_range(now: datetime | None = None) -> tuple[datetime, datetime]:
    now = now or timezone.now()
    return now - timedelta(days=7), now + timedelta(seconds=1)
