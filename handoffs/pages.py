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


def attachment_response(attachment, variant: str = "file"):
    """Stream one attachment (or its thumbnail) after the caller checked the right to it.

    Images are shown inline, PDFs always downloaded; the response may not be sniffed,
    run scripts or be embedded elsewhere, and is cached by the browser only."""
    from django.http import FileResponse, Http404

    field = attachment.thumbnail if variant == "thumb" and attachment.thumbnail else attachment.file
    try:
        handle = field.storage.open(field.name, "rb")
    except (FileNotFoundError, OSError):
        raise Http404("This file is no longer stored.") from None
    response = FileResponse(
        handle,
        content_type=attachment.content_type,
        as_attachment=not attachment.is_image,
        filename=attachment.name,
    )
    response["X-Content-Type-Options"] = "nosniff"
    # Nothing in a file may run or load anything. An image opened in its own tab is
    # shown by the browser's image viewer, which styles itself inline: only that is let
    # through (a sandboxed document with no scripts, holding one image).
    response["Content-Security-Policy"] = (
        "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox; "
        "frame-ancestors 'none'"
        if attachment.is_image
        else "default-src 'none'; sandbox; frame-ancestors 'none'"
    )
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["Cache-Control"] = "private, max-age=300"
    response["Referrer-Policy"] = "no-referrer"
    return response
