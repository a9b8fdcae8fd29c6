"""Changing stored memories: update, importance, feedback, consolidation, batch forget.

Served by the embedded server (``PUT /v1/memory/update/{id}``, ``POST /v1/memory/
importance``, ``/feedback``, ``/consolidate``, ``DELETE /v1/memories/forget/batch``).
Every function validates its whole input first and runs in one transaction, so a refused
call changes nothing.

None of these touches a handoff: the console keeps its own snapshot of every handoff, so
updating, consolidating or forgetting the memory it came from never changes the hop, and
storing ``metadata.type = "handoff"`` through an *update* does not create one (only a
store does, see ``services``). Consolidation never removes a handoff memory.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from . import lexical
from .base import (
    MAX_BATCH,
    MemoryNotFound,
    MemoryValidationError,
    validate_agent_id,
    validate_content,
    validate_importance,
    validate_memory_type,
    validate_metadata,
    validate_tags,
)
from .embedded import EmbeddedStore, batch_filter, memory_dict
from .models import Memory, MemorySession

UPDATE_FIELDS = ("content", "metadata", "memory_type", "importance", "tags", "lang")
#: The SDK's documented feedback rules (``dakera.models.FeedbackSignal``).
UPVOTE_FACTOR, DOWNVOTE_FACTOR = 1.15, 0.85
SIGNALS = {
    "upvote": "upvote",
    "positive": "upvote",
    "downvote": "downvote",
    "negative": "downvote",
    "flag": "flag",
}
#: Consolidation without ``threshold`` merges exact and near-exact duplicates (equal
#: after case folding, punctuation and whitespace); with one, also memories whose word
#: sets overlap at least that much (Jaccard), among the namespace's newest memories.
MAX_SIMILARITY_SCAN = 1000
CONSOLIDATE_SCAN_LIMIT = 100_000
_PUNCT_RE = re.compile(r"[^\w\s]|_", re.UNICODE)
_SPACE_RE = re.compile(r"\s+")


def _live(qs: QuerySet[Memory]) -> QuerySet[Memory]:
    return EmbeddedStore._live(qs)


def _owned(*, agent_id: str | None, memory_id: Any) -> QuerySet[Memory]:
    if not isinstance(memory_id, str) or not memory_id:
        raise MemoryValidationError("memory_id is required and must be a string")
    qs = _live(Memory.objects.filter(uid=memory_id, doc_id=None))
    if agent_id is not None:
        qs = qs.filter(agent_id=validate_agent_id(agent_id))
    return qs


def _get_owned(*, agent_id: str | None, memory_id: Any, for_update: bool = False) -> Memory:
    qs = _owned(agent_id=agent_id, memory_id=memory_id)
    if for_update:
        qs = qs.select_for_update()
    memory = qs.first()
    if memory is None:
        raise MemoryNotFound(f"memory {memory_id} not found", resource="memory")
    return memory


def _reindex(memories: list[Memory]) -> None:
    lexical.reindex_memories(
        [
            (
                m.pk,
                m.agent_id,
                lexical.index_text(content=m.content, tags=m.tags, metadata=m.metadata),
            )
            for m in memories
        ]
    )


# ------------------------------------------------------------------ update
def validate_update(data: dict[str, Any]) -> dict[str, Any]:
    """The fields of an update body, validated; at least one must be given."""
    changes: dict[str, Any] = {}
    if data.get("content") is not None:
        changes["content"] = validate_content(data["content"])
    if data.get("metadata") is not None:
        changes["metadata"] = validate_metadata(data["metadata"])
    if data.get("memory_type") is not None:
        changes["memory_type"] = validate_memory_type(data["memory_type"])
    if data.get("importance") is not None:
        changes["importance"] = validate_importance(data["importance"])
    if data.get("tags") is not None:
        changes["tags"] = validate_tags(data["tags"])
    if data.get("lang") is not None and not isinstance(data["lang"], str):
        raise MemoryValidationError("lang must be a string")
    if not changes:
        raise MemoryValidationError(
            "nothing to update: give content, metadata, memory_type, importance or tags"
        )
    return changes


def memory_update(*, agent_id: str | None, memory_id: str, changes: dict[str, Any]) -> dict:
    """Change a memory's fields (``tags`` and ``metadata`` are replaced); 404 if absent.

    The answer is the memory itself (what the Python SDK returns) and, for the JS SDK's
    ``StoreMemoryResponse``, the same memory under ``memory``.
    """
    with transaction.atomic():
        memory = _get_owned(agent_id=agent_id, memory_id=memory_id, for_update=True)
        for name, value in changes.items():
            setattr(memory, name, value)
        memory.save(update_fields=list(changes))
        if {"content", "tags", "metadata"} & set(changes):
            _reindex([memory])
    body = memory_dict(memory)
    return {**body, "memory": body, "embedding_time_ms": 0}


# ------------------------------------------------------------------ importance, feedback
def memory_set_importance(
    *, agent_id: str, memory_ids: list[str], importance: float
) -> dict[str, Any]:
    """Set the importance of each memory (all must exist in the namespace, else 404)."""
    validate_agent_id(agent_id)
    importance = validate_importance(importance)
    if not memory_ids:
        raise MemoryValidationError("memory_id is required")
    with transaction.atomic():
        qs = _live(Memory.objects.filter(agent_id=agent_id, uid__in=memory_ids, doc_id=None))
        found = set(qs.values_list("uid", flat=True))
        missing = [m for m in memory_ids if m not in found]
        if missing:
            raise MemoryNotFound(f"memory {missing[0]} not found", resource="memory")
        updated = qs.update(importance=importance)
    body: dict[str, Any] = {
        "status": "updated",
        "updated_count": updated,
        "importance": importance,
        "memory_ids": memory_ids,
    }
    if len(memory_ids) == 1:
        body["memory_id"] = memory_ids[0]
    return body


def validate_signal(data: dict[str, Any]) -> str:
    """The feedback signal of a body (``signal``, or the JS SDK's ``feedback``)."""
    raw = data.get("signal", data.get("feedback"))
    if not isinstance(raw, str) or raw.strip().lower() not in SIGNALS:
        raise MemoryValidationError(
            "signal must be one of upvote, downvote, flag (or positive, negative)"
        )
    return SIGNALS[raw.strip().lower()]


def memory_feedback(*, agent_id: str, memory_id: str, signal: str) -> dict[str, Any]:
    """Apply feedback as the SDK documents it: upvote ×1.15 (at most 1), downvote ×0.85,
    flag marks the memory irrelevant and leaves its importance."""
    validate_agent_id(agent_id)
    with transaction.atomic():
        memory = _get_owned(agent_id=agent_id, memory_id=memory_id, for_update=True)
        previous = memory.importance
        if signal == "upvote":
            memory.importance = min(1.0, round(previous * UPVOTE_FACTOR, 6))
        elif signal == "downvote":
            memory.importance = max(0.0, round(previous * DOWNVOTE_FACTOR, 6))
        else:
            memory.flagged_at = timezone.now()
        memory.save(update_fields=["importance", "flagged_at"])
    return {
        "memory_id": memory.uid,
        "signal": signal,
        "previous_importance": previous,
        "new_importance": memory.importance,
        # The JS SDK's MemoryFeedbackResponse names:
        "status": "ok",
        "updated_importance": memory.importance,
    }


# ------------------------------------------------------------------ consolidation
def normalized(content: str) -> str:
    """Content as near-exact duplicates share it: case-folded, punctuation and extra
    whitespace removed."""
    text = unicodedata.normalize("NFKC", content).casefold()
    return _SPACE_RE.sub(" ", _PUNCT_RE.sub(" ", text)).strip()


def _is_handoff(memory: Memory) -> bool:
    return (memory.metadata or {}).get("type") == "handoff"


def _survivor_key(memory: Memory) -> tuple:
    # A handoff memory first, then the most important, then the oldest.
    return (not _is_handoff(memory), -memory.importance, memory.created_at, memory.pk)


def _merge_into(survivor: Memory, others: list[Memory]) -> None:
    tags = list(survivor.tags)
    for other in others:
        tags.extend(t for t in other.tags if t not in tags)
    survivor.tags = tags
    survivor.importance = max([survivor.importance, *(o.importance for o in others)])
    survivor.access_count += sum(o.access_count for o in others)
    survivor.metadata = {
        **{k: v for o in reversed(others) for k, v in (o.metadata or {}).items()},
        **(survivor.metadata or {}),
    }


def _groups(memories: list[Memory], threshold: float | None) -> list[list[Memory]]:
    by_text: dict[str, list[Memory]] = {}
    for memory in memories:
        by_text.setdefault(normalized(memory.content), []).append(memory)
    groups = list(by_text.values())
    if threshold is None:
        return [g for g in groups if len(g) > 1]
    # Similar word sets, greedily: each group's first member against later groups.
    recent = sorted(groups, key=lambda g: max(m.created_at for m in g), reverse=True)
    scanned, rest = recent[:MAX_SIMILARITY_SCAN], recent[MAX_SIMILARITY_SCAN:]
    words = [set(normalized(g[0].content).split()) for g in scanned]
    merged: list[list[Memory]] = []
    taken = [False] * len(scanned)
    for i, group in enumerate(scanned):
        if taken[i]:
            continue
        cluster = list(group)
        for j in range(i + 1, len(scanned)):
            if taken[j] or not words[i] or not words[j]:
                continue
            small, large = sorted((len(words[i]), len(words[j])))
            if small / large < threshold:
                continue
            if len(words[i] & words[j]) / len(words[i] | words[j]) >= threshold:
                cluster.extend(scanned[j])
                taken[j] = True
        merged.append(cluster)
    merged.extend(rest)
    return [g for g in merged if len(g) > 1]


def validate_consolidate(data: dict[str, Any]) -> dict[str, Any]:
    """The fields of a consolidate body, validated."""
    threshold = data.get("threshold")
    if threshold is not None and (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not 0.0 < float(threshold) <= 1.0
    ):
        raise MemoryValidationError("threshold must be a number in (0, 1]")
    memory_ids = data.get("memory_ids")
    if memory_ids is not None and (
        not isinstance(memory_ids, list)
        or not all(isinstance(i, str) for i in memory_ids)
        or not 2 <= len(set(memory_ids)) <= MAX_BATCH
    ):
        raise MemoryValidationError(f"memory_ids must list 2 to {MAX_BATCH} distinct ids")
    target_type = data.get("target_type")
    if target_type is not None:
        validate_memory_type(target_type)
    if data.get("dry_run") is not None and not isinstance(data["dry_run"], bool):
        raise MemoryValidationError("dry_run must be true or false")
    return {
        "agent_id": validate_agent_id(data.get("agent_id")),
        "threshold": None if threshold is None or threshold == 1 else float(threshold),
        "memory_ids": list(dict.fromkeys(memory_ids)) if memory_ids is not None else None,
        "target_type": target_type,
        "dry_run": bool(data.get("dry_run")),
    }


def memory_consolidate(
    *,
    agent_id: str,
    threshold: float | None = None,
    memory_ids: list[str] | None = None,
    target_type: str | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Merge duplicates within one namespace and report what was done.

    Without ``memory_ids``: every group of exact / near-exact duplicates (and, with a
    ``threshold`` below 1, of similar memories) keeps one memory (a handoff memory, else
    the most important, else the oldest) with the group's tags, highest importance and
    access counts, and the others are forgotten. With ``memory_ids``: those memories
    become one group. ``dry_run`` reports the groups and changes nothing.
    """
    with transaction.atomic():
        qs = _live(Memory.objects.filter(agent_id=agent_id, doc_id=None))
        if memory_ids is not None:
            memories = list(qs.filter(uid__in=memory_ids).select_for_update())
            missing = set(memory_ids) - {m.uid for m in memories}
            if missing:
                raise MemoryNotFound(f"memory {sorted(missing)[0]} not found", resource="memory")
            groups = [memories]
        else:
            memories = list(qs.order_by("created_at", "pk")[:CONSOLIDATE_SCAN_LIMIT])
            groups = _groups(memories, threshold)
        log: list[dict[str, Any]] = []
        removed_ids: list[str] = []
        survivors: list[Memory] = []
        per_session: dict[str, int] = {}
        for group in groups:
            ordered = sorted(group, key=_survivor_key)
            survivor = ordered[0]
            # A second handoff memory is a different hop: it is never merged away.
            others = [m for m in ordered[1:] if not _is_handoff(m)]
            if not others:
                continue
            _merge_into(survivor, others)
            if target_type is not None:
                survivor.memory_type = target_type
            survivors.append(survivor)
            removed_ids.extend(m.uid for m in others)
            for other in others:
                if other.session_id is not None:
                    per_session[other.session_id] = per_session.get(other.session_id, 0) + 1
            log.append(
                {
                    "kept": survivor.uid,
                    "removed": [m.uid for m in others],
                    "reason": "exact or near-exact duplicate"
                    if memory_ids is None and len({normalized(m.content) for m in group}) == 1
                    else ("requested" if memory_ids is not None else "similar"),
                }
            )
        if not dry_run and survivors:
            for survivor in survivors:
                survivor.save(
                    update_fields=["tags", "importance", "access_count", "metadata", "memory_type"]
                )
            _reindex(survivors)
            Memory.objects.filter(agent_id=agent_id, uid__in=removed_ids).delete()
            for session_id, count in per_session.items():
                MemorySession.objects.filter(pk=session_id).update(
                    memory_count=F("memory_count") - count
                )
    return {
        "consolidated_memory": memory_dict(survivors[0]) if survivors else None,
        "consolidated_memories": [memory_dict(s) for s in survivors],
        "source_memory_ids": [entry["kept"] for entry in log] + removed_ids,
        "memories_removed": 0 if dry_run else len(removed_ids),
        "groups": len(log),
        "dry_run": dry_run,
        "log": log,
    }


# ------------------------------------------------------------------ batch forget
def memory_forget_batch(*, agent_id: str, filter: Any) -> dict[str, Any]:  # noqa: A002
    """Delete the namespace's memories matching ``filter`` (at least one predicate)."""
    validate_agent_id(agent_id)
    with transaction.atomic():
        qs, used = batch_filter(Memory.objects.filter(agent_id=agent_id, doc_id=None), filter)
        if not used:
            raise MemoryValidationError(
                "filter needs at least one predicate (a safety guard against deleting "
                "a whole namespace)"
            )
        per_session: dict[str, int] = {}
        for session_id in qs.exclude(session=None).values_list("session_id", flat=True):
            per_session[session_id] = per_session.get(session_id, 0) + 1
        deleted, _ = Memory.objects.filter(pk__in=list(qs.values_list("pk", flat=True))).delete()
        for session_id, count in per_session.items():
            MemorySession.objects.filter(pk=session_id).update(
                memory_count=F("memory_count") - count
            )
    return {"deleted_count": deleted}
