"""Reading an agent's namespace as a whole: agents, stats, listings, wake-up, batch
recall and export (``GET /v1/agents...``, ``POST /v1/memories/recall/batch``,
``GET /v1/export``). Read-only: nothing here bumps access counts.

Text namespaces' documents live in reserved ``_dakera_ns_…`` namespaces (``documents``)
and never appear as agents.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from typing import Any

from django.db.models import Avg, Count, Max, Min, Q, QuerySet

from .base import (
    MemoryValidationError,
    validate_agent_id,
    validate_bounded_int,
    validate_importance,
)
from .embedded import EmbeddedStore, batch_filter, memory_dict
from .models import Memory, MemorySession

WAKE_UP_HALF_LIFE_DAYS = 14.0
MAX_WAKE_UP = 100
MAX_BATCH_RECALL = 1000
MAX_LISTING = 1000
EXPORT_FORMATS = ("jsonl", "csv", "mem0", "zep")
CSV_COLUMNS = (
    "id",
    "agent_id",
    "session_id",
    "memory_type",
    "importance",
    "content",
    "tags",
    "metadata",
    "created_at",
    "access_count",
)


def _memories(agent_id: str) -> QuerySet[Memory]:
    return EmbeddedStore._live(Memory.objects.filter(agent_id=validate_agent_id(agent_id)))


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def list_agents() -> list[dict[str, Any]]:
    """Every agent namespace with memories or sessions, by name."""
    agents: dict[str, dict[str, Any]] = {}
    memory_counts = (
        EmbeddedStore._live(Memory.objects.exclude(agent_id__startswith="_dakera_"))
        .order_by()
        .values("agent_id")
        .annotate(n=Count("pk"))
    )
    for row in memory_counts:
        agents[row["agent_id"]] = {
            "agent_id": row["agent_id"],
            "memory_count": row["n"],
            "session_count": 0,
            "active_sessions": 0,
        }
    session_counts = (
        MemorySession.objects.order_by()
        .values("agent_id")
        .annotate(n=Count("pk"), active=Count("pk", filter=Q(ended_at=None)))
    )
    for row in session_counts:
        entry = agents.setdefault(
            row["agent_id"],
            {"agent_id": row["agent_id"], "memory_count": 0, "session_count": 0},
        )
        entry["session_count"] = row["n"]
        entry["active_sessions"] = row["active"]
    return [agents[name] for name in sorted(agents)]


def agent_stats(*, agent_id: str) -> dict[str, Any]:
    """Counts by type, sessions, average importance, oldest and newest memory."""
    qs = _memories(agent_id)
    by_type = dict(
        qs.order_by()
        .values_list("memory_type")
        .annotate(n=Count("pk"))
        .values_list("memory_type", "n")
    )
    summary = qs.aggregate(
        avg=Avg("importance"), oldest=Min("created_at"), newest=Max("created_at")
    )
    sessions = MemorySession.objects.filter(agent_id=agent_id).aggregate(
        total=Count("pk"), active=Count("pk", filter=Q(ended_at=None))
    )
    return {
        "agent_id": agent_id,
        "total_memories": sum(by_type.values()),
        "memories_by_type": by_type,
        "total_sessions": sessions["total"],
        "active_sessions": sessions["active"],
        "avg_importance": round(summary["avg"], 6) if summary["avg"] is not None else None,
        "oldest_memory_at": _iso(summary["oldest"]),
        "newest_memory_at": _iso(summary["newest"]),
    }


def agent_memories(
    *,
    agent_id: str,
    memory_type: str | None,
    limit: int,
    offset: int,
    content_preview_chars: int | None,
) -> list[dict[str, Any]]:
    """The namespace's memories, newest first; optionally with content cut short."""
    qs = _memories(agent_id)
    if memory_type is not None:
        qs = qs.filter(memory_type=memory_type)
    page = qs.order_by("-created_at", "-pk")[offset : offset + limit]
    out = []
    for memory in page:
        body = memory_dict(memory)
        if content_preview_chars is not None:
            body["content_len"] = len(memory.content)
            body["content_truncated"] = len(memory.content) > content_preview_chars
            body["content"] = memory.content[:content_preview_chars]
        out.append(body)
    return out


def agent_sessions(*, agent_id: str, active_only: bool, limit: int) -> list[dict[str, Any]]:
    """The agent's sessions, newest first (idle ones are ended first, as everywhere)."""
    validate_agent_id(agent_id)
    return EmbeddedStore().list_sessions(agent_id=agent_id, active_only=active_only, limit=limit)[
        "sessions"
    ]


def wake_up(*, agent_id: str, top_n: int, min_importance: float) -> dict[str, Any]:
    """The ``top_n`` memories by ``importance × 2^(-age / 14 days)``, as the SDK documents.

    Ranks a projection of three columns and builds only the returned memories.
    """
    qs = _memories(agent_id)
    if min_importance > 0:
        qs = qs.filter(importance__gte=min_importance)
    now = dt.datetime.now(tz=dt.UTC)
    scored = []
    for pk, importance, created_at in qs.order_by().values_list("pk", "importance", "created_at"):
        age_days = max((now - created_at).total_seconds(), 0.0) / 86400
        scored.append((importance * math.pow(0.5, age_days / WAKE_UP_HALF_LIFE_DAYS), pk))
    scored.sort(key=lambda item: (-item[0], -item[1]))
    top = [pk for _, pk in scored[:top_n]]
    objects = Memory.objects.in_bulk(top)
    return {
        "agent_id": agent_id,
        "memories": [memory_dict(objects[pk]) for pk in top if pk in objects],
        "total_available": len(scored),
    }


def batch_recall(*, agent_id: str, filter: Any, limit: int) -> dict[str, Any]:  # noqa: A002
    """Memories matching ``filter``, most important first, then newest."""
    base = _memories(agent_id)
    qs, _ = batch_filter(base, filter)
    matched = qs.count()
    page = list(qs.order_by("-importance", "-created_at", "-pk")[:limit])
    return {
        "memories": [memory_dict(m) for m in page],
        "total": base.count(),
        "filtered": matched,
        "truncated": matched > len(page),
    }


def export(*, agent_id: str, fmt: str) -> tuple[str, str]:
    """The namespace as a file: ``(text, content type)``; oldest first, expired left out.

    CSV cells are written as stored (this is a data file for importers, not a
    spreadsheet download: no formula escaping).
    """
    memories = [memory_dict(m) for m in _memories(agent_id).order_by("created_at", "pk")]
    if fmt == "jsonl":
        return "".join(json.dumps(m) + "\n" for m in memories), "application/x-ndjson"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for m in memories:
            writer.writerow(
                {**m, "tags": json.dumps(m["tags"]), "metadata": json.dumps(m["metadata"])}
            )
        return out.getvalue(), "text/csv; charset=utf-8"
    if fmt == "mem0":
        items = [
            {
                "id": m["id"],
                "memory": m["content"],
                "user_id": agent_id,
                "metadata": {**m["metadata"], "memory_type": m["memory_type"], "tags": m["tags"]},
                "importance": m["importance"],
                "created_at": _iso(dt.datetime.fromtimestamp(m["created_at"], tz=dt.UTC)),
            }
            for m in memories
        ]
        return json.dumps({"memories": items}), "application/json"
    items = [
        {
            "uuid": m["id"],
            "role": "memory",
            "content": m["content"],
            "metadata": {**m["metadata"], "memory_type": m["memory_type"], "tags": m["tags"]},
            "created_at": _iso(dt.datetime.fromtimestamp(m["created_at"], tz=dt.UTC)),
        }
        for m in memories
    ]
    return json.dumps({"session_id": agent_id, "messages": items}), "application/json"


def validate_wake_up(query: dict[str, str]) -> tuple[int, float]:
    """``top_n`` (1–100, default 20) and ``min_importance`` (0–1) of a wake-up query."""
    try:
        top_n = int(query.get("top_n") or 20)
    except ValueError:
        raise MemoryValidationError("top_n must be an integer") from None
    top_n = validate_bounded_int(top_n, "top_n", default=20, low=1, high=MAX_WAKE_UP)
    raw = query.get("min_importance") or "0"
    try:
        value = float(raw)
    except ValueError:
        raise MemoryValidationError("min_importance must be a number between 0 and 1") from None
    return top_n, validate_importance(value, "min_importance")
