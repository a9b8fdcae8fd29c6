"""The edge of every request: what no view should have to think about.

- ``BoundaryMiddleware`` refuses a query string or form whose keys or values hold a
  NUL character (PostgreSQL can't store one; no person types one): JSON 400 in the
  wire shape on the bot API, a plain 400 page elsewhere. JSON bodies are checked by
  ``handoffs.memory.base.parse_json``.
- ``BoundaryMiddleware.process_exception`` and ``server_error`` (``handler500``, for
  what fails outside a view) answer failures: when the database or the channel layer
  is unreachable, 503 with ``Retry-After`` (JSON on the bot API, a plain
  page elsewhere); any other failure 500, in JSON on the bot API. One log line per
  outage kind and minute, not a traceback per request.
"""

from __future__ import annotations

import logging
import sys
import time

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.deprecation import MiddlewareMixin

logger = logging.getLogger("console.boundary")

API_PREFIXES = ("/v1/", "/api/", "/health")
RETRY_AFTER_SECS = 5
_last_logged: dict[str, float] = {}


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIXES)


def _error(request: HttpRequest, status: int, message: str, code: str) -> HttpResponse:
    if is_api(request):
        return JsonResponse({"error": message, "code": code}, status=status)
    return render(
        request,
        "error.html",
        {"status": status, "message": message},
        status=status,
    )


class BoundaryMiddleware(MiddlewareMixin):
    """Sync and async capable (``MiddlewareMixin``): no thread hop under Daphne."""

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        sources = [request.GET, request.POST] if request.method == "POST" else [request.GET]
        for source in sources:
            for key, values in source.lists():
                if "\x00" in key or any("\x00" in value for value in values):
                    return _error(
                        request,
                        400,
                        f"The field {key.replace(chr(0), '')!r} contains a NUL character, "
                        "which can't be stored. Remove it and try again.",
                        "INVALID_REQUEST",
                    )
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A view's exception: 503 while a service is down; JSON 500 on the bot API.

        Runs with ``DEBUG`` on too (``handler500`` does not), so the bot API keeps its
        documented shape in every mode.
        """
        kind = _unavailable_kind(exception)
        if kind is not None:
            return _unavailable(request, kind, exception)
        if is_api(request):
            logger.exception("unhandled error on %s %s", request.method, request.path)
            return JsonResponse({"error": "internal error", "code": "INTERNAL_ERROR"}, status=500)
        return None


def _unavailable(request: HttpRequest, kind: str, exc: BaseException) -> HttpResponse:
    _log_once(kind, exc)
    response = _error(
        request,
        503,
        f"The service is temporarily unavailable ({kind}); try again shortly.",
        "SERVICE_UNAVAILABLE",
    )
    response["Retry-After"] = str(RETRY_AFTER_SECS)
    return response


def _unavailable_kind(exc: BaseException | None) -> str | None:
    """'database' or 'channel layer' when ``exc`` means that service is unreachable."""
    if isinstance(exc, OperationalError | InterfaceError):
        return "database"
    if isinstance(exc, DatabaseError) and "connection" in str(exc).lower():
        return "database"
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # pragma: no cover - redis is a dependency
        return None
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | ConnectionError):
        return "channel layer"
    return None


def _log_once(kind: str, exc: BaseException) -> None:
    now = time.monotonic()
    if now - _last_logged.get(kind, -1e9) >= 60:
        _last_logged[kind] = now
        logger.error("%s unavailable: %s: %s", kind, exc.__class__.__name__, exc)


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: 503 while a backing service is down, else 500, in the right shape."""
    exc = sys.exc_info()[1]
    from handoffs.supervision.metrics import count_http_error

    count_http_error()
    kind = _unavailable_kind(exc)
    if kind is not None:
        return _unavailable(request, kind, exc)
    if is_api(request):
        return JsonResponse({"error": "internal error", "code": "INTERNAL_ERROR"}, status=500)
    try:
        return render(
            request,
            "error.html",
            {"status": 500, "message": "Something went wrong on our side."},
            status=500,
        )
    except Exception:  # noqa: BLE001 - the error page must not fail
        return HttpResponse("Server error", status=500, content_type="text/plain")


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler404``: JSON under the bot API, the console's page elsewhere."""
    message = (
        str(exception.args[0]) if exception.args and isinstance(exception.args[0], str) else ""
    )
    return _error(request, 404, message or "Page not found.", "NOT_FOUND")
