"""What every bot-facing JSON endpoint shares: parsing, the error shape, key auth, rights.

The memory API (``memory.views``) and the handoff API (``api``) both answer through
``bot_api``, so a bot meets one error shape, one key check and one rights check
(``access.bots``) everywhere.

How a route declares what it needs (a new route gets enforcement by declaring it):

1. **Scope**, in the decorator, required: ``@bot_api(("POST",), scope="write")``, or per
   method ``@bot_api(("GET", "POST"), scope={"GET": "read", "POST": "write"})``. Reads
   (recall, search, get, list) are ``read``; anything that changes state (store,
   forget, start / end / touch a session, hand off, post a message) is ``write``.
   ``admin`` is for calls that span or manage keys. Checked before the view runs.
2. **Namespace**: the view calls ``bot_namespace(request, agent_id)`` with every
   customer namespace it is about to touch, before touching it (for a session: the
   session's ``agent_id``). A call that spans every namespace (``agent_id`` left out)
   calls ``bot_every_namespace(request)``: refused for keys with an allowlist.
3. **Ownership** of a conversation or a hop: ``access.bots.owns_conversation`` /
   ``owns_handoff`` (another bot's is a 404 there, as if it didn't exist).

A refusal is 403 ``{"error", "code": "INSUFFICIENT_SCOPE" | "NAMESPACE_ACCESS_DENIED"}``,
which the ``dakera`` SDK raises as ``AuthorizationError``.

Errors use the Dakera shape everywhere: ``{"error": str, "code": SCREAMING_SNAKE,
"details"?: str, "resource"?: str}``; authentication failures (401) follow the wire
document: ``{"error": "authentication_error", "message": str, "code": str}``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from ..access import bots as bot_rights
from ..compiled import Compiled
from ..models import Bot
from . import key_guessing
from .base import (
    NOT_SUPPORTED,
    MemoryPayloadTooLarge,
    MemoryValidationError,
    WireError,
    parse_json,
)

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 10 * 1024 * 1024
LAST_USED_RESOLUTION_SECS = 60


class BotRequest(HttpRequest):
    bot: Bot
    bot_scope: str


def error_response(
    status: int, message: str, code: str, *, resource: str | None = None, details: str | None = None
) -> JsonResponse:
    body: dict[str, Any] = {"error": message, "code": code}
    if details is not None:
        body["details"] = details
    if resource is not None:
        body["resource"] = resource
    return JsonResponse(body, status=status)


def auth_error(message: str, code: str) -> JsonResponse:
    response = JsonResponse(
        {"error": "authentication_error", "message": message, "code": code}, status=401
    )
    response["WWW-Authenticate"] = "Bearer"
    return response


def json_body(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object (through ``base.parse_json``); 400 if bad, 413 if huge."""
    try:
        raw = request.body
    except RequestDataTooBig:
        # Past DATA_UPLOAD_MAX_MEMORY_SIZE Django refuses to read it at all.
        raise MemoryPayloadTooLarge("request body is larger than 10 MiB") from None
    if len(raw) > MAX_BODY_BYTES:
        raise MemoryPayloadTooLarge("request body is larger than 10 MiB")
    if not raw:
        return {}
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise MemoryValidationError("the JSON body must be an object")
    return data


def query_int(request: HttpRequest, name: str, default: int, maximum: int) -> int:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    # ASCII digits only: int() also reads "٣" and "３", which no client means.
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise MemoryValidationError(f"{name} must be an integer between 0 and {maximum}")
    value = int(raw)
    if value > maximum:
        raise MemoryValidationError(f"{name} must be between 0 and {maximum}")
    return value


def query_bool(request: HttpRequest, name: str) -> bool:
    raw = request.GET.get(name, "").lower()
    if raw in {"", "false", "0", "no"}:
        return False
    if raw in {"true", "1", "yes"}:
        return True
    raise MemoryValidationError(f"{name} must be true or false")


def authenticate(request: HttpRequest) -> Bot | JsonResponse:
    """The bot a request's key belongs to, or the 401 to answer with.

    ``X-API-Key`` wins over ``Authorization: Bearer``. Keys are looked up by their
    prefix and compared by SHA-256 digest in constant time. An address that sent
    ``BOT_AUTH_FAILURE_LIMIT`` wrong keys within ``BOT_AUTH_FAILURE_WINDOW`` seconds is
    answered 429 with ``Retry-After`` (any key) until that window has passed.
    """
    raw_key = request.headers.get("X-API-Key", "").strip()
    if not raw_key:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            raw_key = token.strip()
    if not raw_key:
        return auth_error(
            "missing API key: send Authorization: Bearer <key>", "AUTHENTICATION_REQUIRED"
        )
    locked_for = key_guessing.locked_for(request)
    if locked_for:
        response = error_response(
            429,
            "too many requests with a wrong API key from this address; try again later",
            "RATE_LIMIT_EXCEEDED",
        )
        response["Retry-After"] = str(locked_for)
        return response
    lookup = Bot.lookup_of(raw_key)
    bot = _bot_by_lookup(lookup) if lookup else None
    if bot is None or not bot.check_key(raw_key):
        key_guessing.failed(request)
        return auth_error("invalid API key", "INVALID_API_KEY")
    if bot.revoked_at is not None:
        return auth_error("this API key has been revoked", "API_KEY_EXPIRED")
    now = timezone.now()
    if (
        bot.last_used_at is None
        or (now - bot.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECS
    ):
        Bot.objects.filter(pk=bot.pk).update(last_used_at=now)
    return bot


# Compiled once (``handoffs.compiled``): every API request reads its key's bot fresh (a
# revoked or narrowed key must stop working at once, in every process), and compiling the
# ORM query anew cost several times running it.
_bots_with_lookup = Compiled(lambda lookups: Bot.objects.filter(key_prefix__in=lookups))


def _bot_by_lookup(lookup: str) -> Bot | None:
    """The bot whose key has this lookup prefix (``key_prefix`` is unique)."""
    return next(iter(_bots_with_lookup([lookup])), None)


def bot_namespace(request: HttpRequest, agent_id: Any) -> None:
    """Refuse (403) unless the request's key may touch namespace ``agent_id``.

    A missing or malformed ``agent_id`` is left to the store's own validation (400).
    """
    if isinstance(agent_id, str):
        bot_rights.check(request.bot, scope=request.bot_scope, namespace=agent_id)


def bot_every_namespace(request: HttpRequest) -> None:
    """Refuse (403) a call spanning every namespace to a key limited to some."""
    bot_rights.check_every_namespace(request.bot)


def _denied(exc: bot_rights.BotDenied) -> JsonResponse:
    return error_response(exc.status, exc.message, exc.code)


def bot_api(methods: tuple[str, ...], *, scope: str | dict[str, str]) -> Callable:
    """Decorate a bot endpoint: key auth (401), method (405), scope (403), errors to JSON.

    ``scope`` is the key scope the route needs (one for all methods, or per method).
    """
    scopes = scope if isinstance(scope, dict) else dict.fromkeys(methods, scope)
    if set(scopes) != set(methods) or not all(s in bot_rights.SCOPE_RANK for s in scopes.values()):
        raise TypeError(f"bot_api: declare a scope (read, write, admin) for each of {methods}")

    def decorator(view: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
            # The key first: without one, nobody learns which routes and methods exist.
            bot = authenticate(request)
            if isinstance(bot, JsonResponse):
                return bot
            if request.method not in methods:
                return method_not_allowed(request, methods)
            request.bot = bot  # type: ignore[attr-defined]
            request.bot_scope = scopes[request.method]  # type: ignore[attr-defined]
            try:
                bot_rights.check(bot, scope=request.bot_scope)
                return view(request, *args, **kwargs)
            except bot_rights.BotDenied as exc:
                return _denied(exc)
            except WireError as exc:
                response = JsonResponse(exc.as_wire(), status=exc.status)
                if exc.retry_after is not None:
                    response["Retry-After"] = str(exc.retry_after)
                return response

        wrapper.bot_scopes = scopes  # type: ignore[attr-defined]
        return wrapper

    return decorator


def string_field(
    data: dict[str, Any], name: str, *, required: bool = False, max_length: int | None = None
) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise MemoryValidationError(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise MemoryValidationError(f"{name} must be a string")
    if required and not value.strip():
        raise MemoryValidationError(f"{name} must not be empty")
    if max_length is not None and len(value) > max_length:
        raise MemoryValidationError(f"{name} is longer than {max_length} characters")
    return value


def method_not_allowed(request: HttpRequest, methods: tuple[str, ...]) -> JsonResponse:
    response = error_response(405, f"method {request.method} not allowed", "METHOD_NOT_ALLOWED")
    response["Allow"] = ", ".join(methods)
    return response


def public_json(methods: tuple[str, ...]) -> Callable:
    """Decorate a keyless JSON endpoint (the health checks): 405 in JSON, no CSRF page."""

    def decorator(view: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
            if request.method not in methods:
                return method_not_allowed(request, methods)
            return view(request, *args, **kwargs)

        wrapper.keyless = True  # type: ignore[attr-defined]  # no key asked: see tests
        return wrapper

    return decorator


ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


@bot_api(ALL_METHODS, scope="read")
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any other path under ``/v1/``: JSON 404 (after the key check), never Django's
    HTML pages (a CSRF 403 there read as a permissions problem to the SDKs)."""
    return error_response(404, f"no route for {request.method} {request.path}", "ROUTE_NOT_FOUND")


@bot_api(ALL_METHODS, scope="read")
def not_supported(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """A Dakera route the embedded server does not serve (knowledge graph, extraction,
    admin): JSON 501 naming remote mode as the way to get it."""
    return error_response(
        501,
        f"{request.method} {request.path} is not served by the console's embedded memory "
        "server; point the console at a Dakera server (remote mode: DAKERA_URL and "
        "DAKERA_API_KEY) and call that server for it",
        NOT_SUPPORTED,
    )
