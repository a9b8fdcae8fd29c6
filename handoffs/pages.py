"""What every console page shares: the htmx request type and the flash fragment."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_htmx.middleware import HtmxDetails

if TYPE_CHECKING:
    from .models import Agent


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails
    agent: Agent


def flash(request: HttpRequest, message: str, *, status: int, level: str = "error") -> HttpResponse:
    return render(
        request, "handoffs/_flash.html", {"message": message, "level": level}, status=status
    )
