"""The Dakera memory API subset, served by the console (embedded mode), and the health checks.

Wire-compatible with Dakera (``docs/memory-api.md``) so the unmodified ``dakera`` SDK works
against ``http://<console>/``. Unknown request fields are ignored, as Dakera does.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from . import services
from .base import MemoryNotFound, MemoryValidationError
from .embedded import EmbeddedStore
from .http import (
    bot_api,
    bot_every_namespace,
    bot_namespace,
    json_body,
    public_json,
    query_bool,
    query_int,
    string_field,
)

STORE_FIELDS = (
    "agent_id",
    "content",
    "memory_type",
    "importance",
    "metadata",
    "session_id",
    "tags",
    "ttl_seconds",
    "expires_at",
)
RECALL_FILTERS = (
    "session_id",
    "tags",
    "memory_type",
    "min_importance",
    "since",
    "until",
    "neighborhood_mode",
    "include_summaries",
)


def store() -> EmbeddedStore:
    return EmbeddedStore()


@public_json(("GET",))
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "healthy", "version": "handoff-console", "mode": "embedded"})


@public_json(("GET",))
def health_live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "alive"})


@public_json(("GET",))
def health_ready(request: HttpRequest) -> JsonResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any database failure means not ready
        response = JsonResponse(
            {"status": "not_ready", "checks": {"database": f"error: {exc.__class__.__name__}"}},
            status=503,
        )
        response["Retry-After"] = "5"
        return response
    checks: dict[str, Any] = {"database": "ok"}
    if settings.REDIS_URL:
        # Scale-out: without the channel layer no socket can connect (they are refused
        # with 4013) and nothing is pushed live, so this process is not ready.
        problem = _channel_layer_problem()
        if problem:
            checks["channel_layer"] = f"error: {problem}"
            response = JsonResponse(
                {"status": "not_ready", "reason": "channel layer (Redis)", "checks": checks},
                status=503,
            )
            response["Retry-After"] = "5"
            return response
        checks["channel_layer"] = "ok"
    if settings.DAKERA_URL:
        # Remote mode: is the configured Dakera answering, and does it accept our key?
        from .remote import get_remote_store

        report = get_remote_store().check()
        checks["memory"] = {
            key: report[key] for key in ("mode", "reachable", "healthy", "key_accepted")
        }
        if not report["ok"]:
            checks["memory"]["error"] = report["reason"]
            response = JsonResponse(
                {
                    "status": "not_ready",
                    "reason": f"memory server: {report['reason']}",
                    "checks": checks,
                },
                status=503,
            )
            response["Retry-After"] = "5"
            return response
    return JsonResponse({"status": "ready", "checks": checks})


def _channel_layer_problem(timeout: float = 2.0) -> str:
    """Empty when the channel layer answers a group send within ``timeout`` s; else why.

    A send to a group with no members: the same Redis round trips as a broadcast (the
    layer's own pool and connection), nothing left behind."""
    import asyncio

    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return "no channel layer configured"

    async def probe() -> None:
        await asyncio.wait_for(
            layer.group_send("health.ready", {"type": "health.probe"}), timeout=timeout
        )

    try:
        async_to_sync(probe)()
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return f"{exc.__class__.__name__}"
    return ""


def _session_namespace(request: HttpRequest, session_id: str) -> None:
    """Refuse (403) a session call on a session in a namespace the key may not touch.

    An unknown session passes: the store answers it (404, or 200 for an idempotent end).
    """
    try:
        agent_id = store().get_session(session_id=session_id)["agent_id"]
    except MemoryNotFound:
        return
    bot_namespace(request, agent_id)


# ------------------------------------------------------------------ sessions
@bot_api(("POST",), scope="write")
def session_start(request: HttpRequest) -> JsonResponse:
    data = json_body(request)
    bot_namespace(request, data.get("agent_id"))
    return JsonResponse(
        store().start_session(
            agent_id=data.get("agent_id"),
            metadata=data.get("metadata"),
            idle_timeout_secs=data.get("idle_timeout_secs"),
        )
    )


@bot_api(("POST",), scope="write")
def session_end(request: HttpRequest, session_id: str) -> JsonResponse:
    data = json_body(request)
    return JsonResponse(
        store().end_session(
            session_id=session_id,
            summary=data.get("summary"),
            allow=lambda agent_id: bot_namespace(request, agent_id),
        )
    )


@bot_api(("GET",), scope="read")
def session_detail(request: HttpRequest, session_id: str) -> JsonResponse:
    _session_namespace(request, session_id)
    return JsonResponse(store().get_session(session_id=session_id))


@bot_api(("GET",), scope="read")
def session_list(request: HttpRequest) -> JsonResponse:
    agent_id = request.GET.get("agent_id") or None
    if agent_id is None:
        bot_every_namespace(request)
    bot_namespace(request, agent_id)
    return JsonResponse(
        store().list_sessions(
            agent_id=agent_id,
            active_only=query_bool(request, "active_only"),
            limit=query_int(request, "limit", 50, 1000),
            offset=query_int(request, "offset", 0, 10**9),
        )
    )


@bot_api(("GET",), scope="read")
def session_memories(request: HttpRequest, session_id: str) -> JsonResponse:
    _session_namespace(request, session_id)
    return JsonResponse(
        store().session_memories(
            session_id=session_id,
            limit=query_int(request, "limit", 50, 500),
            offset=query_int(request, "offset", 0, 10**9),
        )
    )


@bot_api(("POST",), scope="write")
def session_touch(request: HttpRequest, session_id: str) -> JsonResponse:
    _session_namespace(request, session_id)
    return JsonResponse(store().touch_session(session_id=session_id))


# ------------------------------------------------------------------ memories
@bot_api(("POST",), scope="write")
def memory_store(request: HttpRequest) -> JsonResponse:
    data = json_body(request)
    bot_namespace(request, data.get("agent_id"))
    fields = {name: data.get(name) for name in STORE_FIELDS}
    string_field(data, "session_id")
    return JsonResponse(services.memory_store(bot=request.bot, **fields))


@bot_api(("POST",), scope="write")
def memory_store_batch(request: HttpRequest) -> JsonResponse:
    data = json_body(request)
    bot_namespace(request, data.get("agent_id"))
    return JsonResponse(
        services.memory_store_batch(
            bot=request.bot, agent_id=data.get("agent_id"), memories=data.get("memories")
        )
    )


def _ranked(request: HttpRequest, method: str) -> JsonResponse:
    data = json_body(request)
    bot_namespace(request, data.get("agent_id"))
    filters = {name: data[name] for name in RECALL_FILTERS if data.get(name) is not None}
    query = data.get("query")
    if not isinstance(query, str):
        raise MemoryValidationError("query is required and must be a string")
    return JsonResponse(
        getattr(store(), method)(
            agent_id=data.get("agent_id"), query=query, top_k=data.get("top_k"), **filters
        )
    )


@bot_api(("POST",), scope="read")
def memory_recall(request: HttpRequest) -> JsonResponse:
    return _ranked(request, "recall")


@bot_api(("POST",), scope="read")
def memory_search(request: HttpRequest) -> JsonResponse:
    return _ranked(request, "search")


@bot_api(("GET",), scope="read")
def memory_get(request: HttpRequest, memory_id: str) -> JsonResponse:
    agent_id = request.GET.get("agent_id") or None
    bot_namespace(request, agent_id)
    memory = store().get_memory(agent_id=agent_id, memory_id=memory_id)
    # Without agent_id the memory's own namespace decides.
    bot_namespace(request, memory["agent_id"])
    return JsonResponse(memory)


@bot_api(("POST",), scope="write")
def memory_forget(request: HttpRequest) -> JsonResponse:
    data = json_body(request)
    bot_namespace(request, data.get("agent_id"))
    return JsonResponse(
        store().forget(agent_id=data.get("agent_id"), memory_ids=data.get("memory_ids"))
    )
