"""What every console page shares: the htmx request type and the flash fragment."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_htmx.middleware import HtmxDetails

if TYPE_CHECKING:
    from .models import Agent

ID_RE = re.compile(r"[0-9]{1,18}")


def form_id(value: str | None) -> int | None:
    """A form field that names a row by id: ASCII digits only (``"²"`` passes
    ``str.isdigit()`` and fails ``int()``), within the database's BIGINT; else None."""
    if value is None or not ID_RE.fullmatch(value):
        return None
    return int(value)


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails
    agent: Agent


def flash(request: HttpRequest, message: str, *, status: int, level: str = "error") -> HttpResponse:
    return render(
        request, "handoffs/_flash.html", {"message": message, "level": level}, status=status
    )
