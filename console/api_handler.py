"""The bot API's own ASGI handler: the same Django views, a shorter way to them.

A bot's call (``/v1/...``, ``/api/v1/...``, ``/health...``) needs none of what a
person's page needs: no session, no signed-in user, no CSRF token (every bot view is
``csrf_exempt``), no messages, no htmx, no time zone, no login lockout. Under ASGI
each of those ``MiddlewareMixin`` middlewares costs two thread hops per request
(``process_request`` and ``process_response`` each run through ``sync_to_async``),
and Django runs every request in a thread made for it, which opens its own database
connection. On the reference machine that was most of a memory store's cost
(``bench.sustained_intake``, ``bench.store``; README, "Half the cost per request").

``ApiASGIHandler`` differs from Django's ``ASGIHandler`` in three ways:

- **Middleware**: ``settings.API_MIDDLEWARE`` instead of ``MIDDLEWARE``. By default
  one middleware, ``ApiEdgeMiddleware``, which calls the request/response hooks of the
  middlewares that still apply to an API answer (security headers, the boundary's NUL
  check and its 503/500 answers, allowed hosts, frame and content security policy
  headers) one after the other.
- **One thread hop**: the request signals, the middleware, the view and closing the
  response run in one call on a thread (``handle``), instead of a hop to a thread and
  back for each of them.
- **Threads**: a request's synchronous parts (the view, the request signals) run on
  one of ``API_THREADS`` long-lived threads instead of a new thread per request, so
  with SQLite each keeps its connection between requests (``CONN_MAX_AGE``;
  PostgreSQL connections still go back to the pool at the end of each request).
  Which thread, and when, is the ``TurnGate``'s call: with ``API_SPILL_MS`` (SQLite)
  requests take turns, one at a time in arrival order, and a call that has run that
  long alone lets the next start beside it on another thread.

Everything else (URL resolution, the views, their errors) is Django's own.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import FileResponse, HttpRequest, HttpResponseBase
from django.urls import set_script_prefix
from django.utils.module_loading import import_string

from console.db.sqlite3.base import keep_connection_on_this_thread

API_PREFIXES = ("/v1/", "/api/v1/", "/health")


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


class ApiEdgeMiddleware:
    """``API_EDGE_MIDDLEWARE``'s hooks, called one after the other in one function.

    Same order and short-circuit rules as Django's chain: ``process_request`` top
    down (a response stops it, and only the middlewares already entered see it on
    the way out), ``process_response`` bottom up, ``process_exception`` bottom up
    until one answers. Only for middlewares whose hooks these are (no ``__call__``
    of their own, no ``process_view``).
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        self.parts = [import_string(path)(get_response) for path in settings.API_EDGE_MIDDLEWARE]

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        entered = 0
        response = None
        for part in self.parts:
            entered += 1
            hook = getattr(part, "process_request", None)
            response = hook(request) if hook else None
            if response is not None:
                break
        if response is None:
            response = self.get_response(request)
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


# django-csp's per-response overrides (its decorators); the bot API's views set none.
_CSP_OVERRIDES = (
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
)
_csp_built: dict[bool, tuple[str, tuple[str, ...]]] = {}


@receiver(setting_changed)
def _forget_csp(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _csp_built.clear()


class ApiCSPMiddleware(CSPMiddleware):
    """django-csp's ``CSPMiddleware`` with the policy built once instead of per answer.

    A bot API answer uses no nonce and sets no per-response policy, so every answer gets
    the same header from settings; django-csp rebuilt that string on each one (about a
    tenth of a small store's cost in Python). An answer with a nonce or an override goes
    through django-csp unchanged.
    """

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if getattr(request, "_csp_nonce", None) is not None or any(
            getattr(response, name, None) is not None for name in _CSP_OVERRIDES
        ):
            return super().process_response(request, response)
        if response.status_code in (404, 500) and settings.DEBUG:
            return super().process_response(request, response)
        for report_only, header, exempt in (
            (False, HEADER, "_csp_exempt"),
            (True, HEADER_REPORT_ONLY, "_csp_exempt_ro"),
        ):
            if report_only not in _csp_built:
                name = "CONTENT_SECURITY_POLICY" + ("_REPORT_ONLY" if report_only else "")
                policy = getattr(settings, name, None) or {}
                _csp_built[report_only] = (
                    build_policy(report_only=report_only),
                    tuple(policy.get("EXCLUDE_URL_PREFIXES", None) or ()),
                )
            value, excluded = _csp_built[report_only]
            if (
                value
                and header not in response
                and not getattr(response, exempt, False)
                and not request.path_info.startswith(excluded)
            ):
                response[header] = value
        # As django-csp: a nonce asked for after the header was written is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)  # type: ignore[attr-defined]
        return response


class TurnGate:
    """Which of ``threads`` kept threads runs the next request's synchronous part, and when.

    Without ``spill_after`` (seconds) a request starts at once on any free thread, as
    a thread pool would. With it, requests take turns: one runs at a time, the others
    wait in arrival order, until the running one has run ``spill_after`` seconds; then
    the next may start on another thread (and so on up to ``threads``), so a slow call
    (an export, a consolidation) holds the others up for that long only.

    Why turns: the API's work is Python under one GIL (and on SQLite one writer), so two
    threads running at once don't finish sooner, they pass the GIL back and forth: each
    SQLite call releases it, and getting it back means waiting out the other thread's
    switch interval. On the reference machine 16 bots' seed flow did 57-61 handoffs/s
    (POST p99 99-136 ms) on two free-running threads, 67-74 on one thread and 64-72 in
    turns (p99 95-130 ms; README, "Half the cost per request").

    Used from event loops (Daphne runs one); a lock keeps it right when tests drive
    one handler from several.
    """

    def __init__(self, threads: int, spill_after: float | None) -> None:
        self.free = list(range(threads))
        self.started: dict[int, float] = {}  # running: thread -> when it started
        self.waiting: collections.deque[asyncio.Future] = collections.deque()
        self.spill_after = spill_after or None
        self._lock = threading.Lock()

    def _may_start(self, now: float) -> bool:
        if not self.free:
            return False
        if self.spill_after is None:
            return True
        return all(now - started >= self.spill_after for started in self.started.values())

    def _take(self) -> int:
        """A free thread, marked running from now (under the lock)."""
        index = self.free.pop(0)
        self.started[index] = time.monotonic()
        return index

    def _look_again(self, loop: asyncio.AbstractEventLoop) -> None:
        """Once the request just started has run its turn, see whether the next may start."""
        if self.spill_after is not None:
            loop.call_later(self.spill_after, self._wake)

    async def enter(self) -> int:
        """Wait for a turn; the thread to run on (give it back with ``leave``)."""
        with self._lock:
            loop = asyncio.get_running_loop()
            if not self.waiting and self._may_start(time.monotonic()):
                index = self._take()
                self._look_again(loop)
                return index
            turn = loop.create_future()
            self.waiting.append(turn)
        try:
            return await turn
        except asyncio.CancelledError:
            with self._lock:
                still_waiting = turn in self.waiting
                if still_waiting:
                    self.waiting.remove(turn)
            if not still_waiting and turn.done() and not turn.cancelled():
                self.leave(turn.result())  # given a thread as it was cancelled
            raise

    def leave(self, index: int) -> None:
        with self._lock:
            del self.started[index]
            self.free.append(index)
            self.free.sort()
        self._wake()

    def _wake(self) -> None:
        with self._lock:
            while self.waiting and self._may_start(time.monotonic()):
                turn = self.waiting.popleft()
                index = self._take()
                turn.get_loop().call_soon_threadsafe(self._give, turn, index)

    def _give(self, turn: asyncio.Future, index: int) -> None:
        if turn.done():  # cancelled before it could start: the thread goes back
            self.leave(index)
            return
        turn.set_result(index)
        self._look_again(turn.get_loop())


class ApiASGIHandler(ASGIHandler):
    """Django's ASGI handler with ``API_MIDDLEWARE`` and a pool of kept threads."""

    def __init__(self, threads: int | None = None, spill_ms: int | None = None) -> None:
        self.threads = threads or settings.API_THREADS
        self.executors = [
            ThreadPoolExecutor(
                max_workers=1,
                thread_name_prefix=f"api-{i}",
                initializer=keep_connection_on_this_thread,
            )
            for i in range(self.threads)
        ]
        spill_ms = settings.API_SPILL_MS if spill_ms is None else spill_ms
        self.gate = TurnGate(self.threads, spill_ms / 1000 if spill_ms else None)
        super().__init__()

    def load_middleware(self, is_async: bool = False) -> None:
        # A synchronous chain (``handle`` runs it on a thread in one go). Django reads
        # settings.MIDDLEWARE: swap in the API's list while it builds the chain (once,
        # at start-up).
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.API_MIDDLEWARE
        try:
            super().load_middleware(is_async=False)
        finally:
            settings.MIDDLEWARE = full

    async def handle(self, scope: dict, receive: Any, send: Any) -> None:
        """Django's ``ASGIHandler.handle`` with the synchronous part in one thread hop.

        Django hops to a thread and back for ``request_started``, for the view, for
        ``request_finished`` and to close the response, and watches for a disconnect
        in a second task; here the signals, the middleware, the view and (for a
        response already in memory) its closing run in one call on the request's
        thread, as under WSGI. A client that disconnects meanwhile gets nothing
        sent; the view still runs to its end, as it does once it has started anyway.
        """
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        try:
            response = await sync_to_async(self._respond, thread_sensitive=True)(scope, body_file)
            # CancelledError: the client went away while the answer was being sent.
            with contextlib.suppress(asyncio.CancelledError):
                await self.send_response(response, send)
            if response.streaming:
                await sync_to_async(response.close, thread_sensitive=True)()
        finally:
            body_file.close()

    def _respond(self, scope: dict, body_file: Any) -> HttpResponseBase:
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
            response._handler_class = self.__class__
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        if not response.streaming:
            # Sends request_finished (and closes what the request opened); the body
            # is already in memory, so it can still be sent afterwards.
            response.close()
        return response

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        index = await self.gate.enter()
        try:
            # Django's own per-request ThreadSensitiveContext, inside, then reuses this
            # one: the request's synchronous parts run on this pool thread.
            async with ThreadSensitiveContext(executor=self.executors[index]):
                await super().__call__(scope, receive, send)
        finally:
            self.gate.leave(index)


class SplitHttp:
    """HTTP to the API handler for the bot API's paths, to Django's for the rest."""

    def __init__(self, pages: Any, api: Any) -> None:
        self.pages = pages
        self.api = api

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        app = self.api if is_api_path(scope.get("path", "")) else self.pages
        await app(scope, receive, send)
