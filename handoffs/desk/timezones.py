"""Times in the viewer's zone.

Agents: ``AgentTimeZoneMiddleware`` activates the zone stored on their profile
(``Agent.time_zone``) for the whole request, so every ``date``/``time`` filter and the
``when`` filter render in it. The browser detects the zone on the first visit and
stores it (``profile`` view, ``static/handoffs/localtime.js``); the agent changes it
in their profile. Until one is stored the site's ``TIME_ZONE`` renders and the
browser rewrites each ``<time data-fmt>`` in its own zone.

Customers have no account: their chat page writes ``<time datetime>`` in UTC and
``localtime.js`` rewrites each in the browser's zone (no cookie; live-pushed messages,
rendered once for everyone, get the same treatment).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from ..lifecycle.reading import known_zones
from ..models import Agent


def agent_zone(user) -> str:
    if user is None or not user.is_authenticated:
        return ""
    zone = Agent.objects.filter(user=user).values_list("time_zone", flat=True).first()
    return zone if zone in known_zones() else ""


class AgentTimeZoneMiddleware:
    """Sync and async capable (like ``console.middleware.StaticFilesMiddleware`` above
    it), so under ASGI the chain stays on the event loop: only the zone's lookup (the
    lazy user, one query) runs in a thread."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if self.async_mode:
            return self.__acall__(request)
        zone = agent_zone(getattr(request, "user", None))
        request.time_zone = zone
        if not zone:
            return self.get_response(request)
        timezone.activate(zoneinfo.ZoneInfo(zone))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        zone = await sync_to_async(agent_zone)(getattr(request, "user", None))
        request.time_zone = zone
        if not zone:
            return await self.get_response(request)
        timezone.activate(zoneinfo.ZoneInfo(zone))
        try:
            return await self.get_response(request)
        finally:
            timezone.deactivate()
