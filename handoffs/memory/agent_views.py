"""The memory API beyond store and recall: update, importance, feedback, consolidation,
batch recall / forget, agents, wake-up and export (embedded mode).

Each view reads its request in one place (the ``validate_*`` function or the lines
before the store call) and answers what the ``dakera`` SDKs read; the scope a key needs
is noted on each (read: reads, write: changes).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from ..access.bots import namespace_allowed
from . import agents, curation
from .base import MemoryValidationError, validate_agent_id
from .http import bot_api, bot_namespace, json_body, query_bool, query_int, string_field
from .models import Memory


def _agent(request: HttpRequest, value: object) -> str:
    """A valid namespace this request's key may touch (400, then 403)."""
    agent_id = validate_agent_id(value)
    bot_namespace(request, agent_id)
    return agent_id


# ------------------------------------------------------------------ write scope
@bot_api(("PUT", "PATCH"), scope="write")
def memory_update(request: HttpRequest, memory_id: str) -> JsonResponse:
    """``PUT /v1/memory/update/{id}`` (scope: write). ``agent_id`` from the query (Python
    SDK) or the body; the JS SDK sends neither, then the id alone names the memory."""
    data = json_body(request)
    agent_id = request.GET.get("agent_id") or data.get("agent_id")
    if agent_id is not None:
        agent_id = _agent(request, agent_id)
    else:
        # The JS SDK names the memory by id alone: its own namespace decides, before any
        # change is made.
        owner = Memory.objects.filter(uid=memory_id).values_list("agent_id", flat=True).first()
        if owner is not None:
            bot_namespace(request, owner)
    changes = curation.validate_update(data)
    return JsonResponse(
        curation.memory_update(agent_id=agent_id, memory_id=memory_id, changes=changes)
    )


@bot_api(("POST",), scope="write")
def memory_importance(request: HttpRequest) -> JsonResponse:
    """``POST /v1/memory/importance`` ``{agent_id, memory_id | memory_ids, importance}``
    (scope: write)."""
    data = json_body(request)
    agent_id = _agent(request, data.get("agent_id"))
    ids = data.get("memory_ids")
    if ids is None:
        single = string_field(data, "memory_id", required=True)
        ids = [single]
    elif not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise MemoryValidationError("memory_ids must be a non-empty list of strings")
    if data.get("importance") is None:
        raise MemoryValidationError("importance is required")
    return JsonResponse(
        curation.memory_set_importance(
            agent_id=agent_id, memory_ids=ids, importance=data.get("importance")
        )
    )


@bot_api(("POST",), scope="write")
def memory_feedback(request: HttpRequest) -> JsonResponse:
    """``POST /v1/memory/feedback`` ``{agent_id, memory_id, signal | feedback}`` (scope:
    write)."""
    data = json_body(request)
    agent_id = _agent(request, data.get("agent_id"))
    memory_id = string_field(data, "memory_id", required=True)
    signal = curation.validate_signal(data)
    return JsonResponse(
        curation.memory_feedback(agent_id=agent_id, memory_id=memory_id, signal=signal)
    )


@bot_api(("POST",), scope="write")
def memory_consolidate(request: HttpRequest) -> JsonResponse:
    """``POST /v1/memory/consolidate`` (scope: write)."""
    fields = curation.validate_consolidate(json_body(request))
    bot_namespace(request, fields.get("agent_id"))
    return JsonResponse(curation.memory_consolidate(**fields))


@bot_api(("DELETE", "POST"), scope="write")
def memories_forget_batch(request: HttpRequest) -> JsonResponse:
    """``DELETE /v1/memories/forget/batch`` ``{agent_id, filter}`` (scope: write)."""
    data = json_body(request)
    return JsonResponse(
        curation.memory_forget_batch(
            agent_id=_agent(request, data.get("agent_id")), filter=data.get("filter")
        )
    )


# ------------------------------------------------------------------ read scope
@bot_api(("POST",), scope="read")
def memories_recall_batch(request: HttpRequest) -> JsonResponse:
    """``POST /v1/memories/recall/batch`` ``{agent_id, filter?, limit?}`` (scope: read)."""
    data = json_body(request)
    agent_id = _agent(request, data.get("agent_id"))
    limit = data.get("limit")
    if limit is None:
        limit = 100
    if (
        isinstance(limit, bool)
        or not isinstance(limit, int)
        or not 1 <= limit <= agents.MAX_BATCH_RECALL
    ):
        raise MemoryValidationError(f"limit must be an integer from 1 to {agents.MAX_BATCH_RECALL}")
    return JsonResponse(
        agents.batch_recall(agent_id=agent_id, filter=data.get("filter"), limit=limit)
    )


@bot_api(("GET",), scope="read")
def agent_list(request: HttpRequest) -> JsonResponse:
    """``GET /v1/agents`` (scope: read): a JSON array."""
    # A key limited to some namespaces sees only those.
    listed = [a for a in agents.list_agents() if namespace_allowed(request.bot, a["agent_id"])]
    return JsonResponse(listed, safe=False)


@bot_api(("GET",), scope="read")
def agent_stats(request: HttpRequest, agent_id: str) -> JsonResponse:
    """``GET /v1/agents/{id}/stats`` (scope: read)."""
    return JsonResponse(agents.agent_stats(agent_id=_agent(request, agent_id)))


@bot_api(("GET",), scope="read")
def agent_memories(request: HttpRequest, agent_id: str) -> JsonResponse:
    """``GET /v1/agents/{id}/memories?memory_type&limit&offset&content_preview_chars``
    (scope: read): a JSON array, newest first."""
    agent_id = _agent(request, agent_id)
    memory_type = request.GET.get("memory_type") or None
    if memory_type is not None:
        from .base import validate_memory_type

        validate_memory_type(memory_type)
    preview = None
    if request.GET.get("content_preview_chars"):
        preview = query_int(request, "content_preview_chars", 0, 10_000)
        if preview < 1:
            raise MemoryValidationError("content_preview_chars must be between 1 and 10000")
    query_bool(request, "include_derived")  # no derived memories here: validated, no effect
    return JsonResponse(
        agents.agent_memories(
            agent_id=agent_id,
            memory_type=memory_type,
            limit=query_int(request, "limit", 50, agents.MAX_LISTING),
            offset=query_int(request, "offset", 0, 10**9),
            content_preview_chars=preview,
        ),
        safe=False,
    )


@bot_api(("GET",), scope="read")
def agent_sessions(request: HttpRequest, agent_id: str) -> JsonResponse:
    """``GET /v1/agents/{id}/sessions?active_only&limit`` (scope: read): a JSON array."""
    return JsonResponse(
        agents.agent_sessions(
            agent_id=_agent(request, agent_id),
            active_only=query_bool(request, "active_only"),
            limit=query_int(request, "limit", 50, agents.MAX_LISTING),
        ),
        safe=False,
    )


@bot_api(("GET",), scope="read")
def agent_wake_up(request: HttpRequest, agent_id: str) -> JsonResponse:
    """``GET /v1/agents/{id}/wake-up?top_n&min_importance`` (scope: read)."""
    agent_id = _agent(request, agent_id)
    top_n, min_importance = agents.validate_wake_up(request.GET)
    query_bool(request, "include_derived")
    return JsonResponse(
        agents.wake_up(agent_id=agent_id, top_n=top_n, min_importance=min_importance)
    )


@bot_api(("GET",), scope="read")
def export(request: HttpRequest) -> HttpResponse:
    """``GET /v1/export?agent_id&format`` (scope: read): the file itself."""
    agent_id = _agent(request, request.GET.get("agent_id"))
    fmt = request.GET.get("format") or "jsonl"
    if fmt not in agents.EXPORT_FORMATS:
        raise MemoryValidationError(f"format must be one of {', '.join(agents.EXPORT_FORMATS)}")
    text, content_type = agents.export(agent_id=agent_id, fmt=fmt)
    response = HttpResponse(text, content_type=content_type)
    response["X-Dakera-Export-Skipped"] = "0"
    extension = "json" if fmt in ("mem0", "zep") else fmt
    response["Content-Disposition"] = f'attachment; filename="{agent_id}.{extension}"'
    return response
