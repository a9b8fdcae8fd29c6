"""The bot API's own ASGI handler: the same Django views, a shorter way to them.

A bot's call (``/v1/...``, ``/api/v1/...``, ``/health...``) needs none of what a
person's page needs: no session, no signed-in user, no CSRF token (every bot view is
``csrf_exempt``), no messages, no htmx, no time zone, no login lockout. Under ASGI
each of those ``MiddlewareMixin`` middlewares costs two thread hops per request
(``process_request`` and ``process_response`` each run through ``sync_to_async``),
and Django runs every request in a thread made for it, which opens its own database
connection. On the reference machine that was most of a memory store's cost
(``bench.sustained_intake``, ``bench.store``).

``ApiASGIHandler`` differs from Django's ``ASGIHandler`` in two ways:

- **Middleware**: ``settings.API_MIDDLEWARE`` instead of ``MIDDLEWARE``. By default
  one async middleware, ``ApiEdgeMiddleware``, which calls the request/response hooks
  of the middlewares that still apply to an API answer (security headers, the
  boundary's NUL check and its 503/500 answers, allowed hosts, frame and content
  security policy headers) directly on the event loop: they are pure CPU, no I/O.
- **Threads**: a request's synchronous parts (the view, the request signals) run on
  one of ``API_THREADS`` long-lived threads (the least busy one) instead of a new
  thread per request, so with SQLite each keeps its connection between requests
  (``CONN_MAX_AGE``; PostgreSQL connections still go back to the pool at the end of
  each request).

Everything else (URL resolution, the views, their errors) is Django's own.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, markcoroutinefunction
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase
from django.utils.module_loading import import_string

from console.db.sqlite3.base import keep_connection_on_this_thread

API_PREFIXES = ("/v1/", "/api/v1/", "/health")


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


class ApiEdgeMiddleware:
    """``API_EDGE_MIDDLEWARE``'s hooks, called inline on the event loop.

    Same order and short-circuit rules as Django's chain: ``process_request`` top
    down (a response stops it, and only the middlewares already entered see it on
    the way out), ``process_response`` bottom up, ``process_exception`` bottom up
    until one answers. Only for middlewares that do no I/O in those hooks.
    """

    sync_capable = False
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        self.parts = [import_string(path)(get_response) for path in settings.API_EDGE_MIDDLEWARE]
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        entered = 0
        response = None
        for part in self.parts:
            entered += 1
            hook = getattr(part, "process_request", None)
            response = hook(request) if hook else None
            if response is not None:
                break
        if response is None:
            response = await self.get_response(request)
        for part in reversed(self.parts[:entered]):
            hook = getattr(part, "process_response", None)
            if hook:
                response = hook(request, response)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> Any:
        for part in reversed(self.parts):
            hook = getattr(part, "process_exception", None)
            response = hook(request, exception) if hook else None
            if response is not None:
                return response
        return None


class ApiASGIHandler(ASGIHandler):
    """Django's ASGI handler with ``API_MIDDLEWARE`` and a pool of kept threads."""

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads or settings.API_THREADS
        self.executors = [
            ThreadPoolExecutor(
                max_workers=1,
                thread_name_prefix=f"api-{i}",
                initializer=keep_connection_on_this_thread,
            )
            for i in range(self.threads)
        ]
        self.in_flight = [0] * self.threads
        self._lock = threading.Lock()
        super().__init__()

    def load_middleware(self, is_async: bool = False) -> None:
        # Django reads settings.MIDDLEWARE; swap in the API's list while it builds the
        # chain (once, at start-up).
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.API_MIDDLEWARE
        try:
            super().load_middleware(is_async=is_async)
        finally:
            settings.MIDDLEWARE = full

    def _pick(self) -> int:
        with self._lock:
            index = min(range(self.threads), key=self.in_flight.__getitem__)
            self.in_flight[index] += 1
        return index

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        index = self._pick()
        try:
            # Django's own per-request ThreadSensitiveContext, inside, then reuses this
            # one: the request's synchronous parts run on this pool thread.
            async with ThreadSensitiveContext(executor=self.executors[index]):
                await super().__call__(scope, receive, send)
        finally:
            with self._lock:
                self.in_flight[index] -= 1


class SplitHttp:
    """HTTP to the API handler for the bot API's paths, to Django's for the rest."""

    def __init__(self, pages: Any, api: Any) -> None:
        self.pages = pages
        self.api = api

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        app = self.api if is_api_path(scope.get("path", "")) else self.pages
        await app(scope, receive, send)
