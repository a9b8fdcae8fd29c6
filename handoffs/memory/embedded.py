"""The embedded memory server: the Dakera API subset served from the console's database.

Recall ranks like a memory server should: lexical relevance (FTS5 / tsvector, see
``lexical``) blended with importance and recency. Relevance is mostly *coverage* (the
share of the query's terms a memory matches, as Lucene's coord factor does) with the
lexical score breaking ties (SQLite: the matched terms' IDF sum, BM25 with ``k1 = 0``;
PostgreSQL: ``ts_rank_cd``), so a short memory does not outrank a more important one
that matches the same words: ``relevance = 0.8 coverage + 0.2 lexical / best lexical``.
``rank_score = 0.5 relevance + 0.4 importance + 0.1 recency``, with recency halving
every 30 days; results are sorted by it, best first.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import time
from collections.abc import Callable
from typing import Any

from django.db import connection, transaction
from django.db.models import BooleanField, F, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from ..compiled import Compiled
from . import lexical
from .base import (
    MAX_BATCH,
    MAX_CONTENT_BYTES,
    MemoryNotFound,
    MemoryValidationError,
    is_auto_summary,
    validate_agent_id,
    validate_content,
    validate_importance,
    validate_memory_type,
    validate_metadata,
    validate_tags,
    validate_top_k,
)
from .models import Memory, MemorySession

DEFAULT_IDLE_TIMEOUT_SECS = 4 * 3600
MAX_IDLE_TIMEOUT_SECS = 30 * 24 * 3600
RELEVANCE_WEIGHT, IMPORTANCE_WEIGHT, RECENCY_WEIGHT = 0.5, 0.4, 0.1
RECENCY_HALF_LIFE_DAYS = 30.0
FILLER = 20


def unix(value: dt.datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def session_dict(session: MemorySession) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": session.id,
        "agent_id": session.agent_id,
        "started_at": unix(session.started_at),
        "metadata": session.metadata,
        "memory_count": session.memory_count,
        "last_activity_at": unix(session.last_activity_at),
    }
    if session.ended_at is not None:
        data.update(
            ended_at=unix(session.ended_at),
            summary=session.summary or None,
            ended_reason=session.ended_reason,
        )
    return data


def memory_dict(memory: Memory) -> dict[str, Any]:
    data = {
        "id": memory.uid,
        "memory_type": memory.memory_type,
        "content": memory.content,
        "agent_id": memory.agent_id,
        "session_id": memory.session_id,
        "importance": memory.importance,
        "tags": memory.tags,
        "metadata": memory.metadata,
        "created_at": unix(memory.created_at),
        "last_accessed_at": unix(memory.last_accessed_at),
        "access_count": memory.access_count,
    }
    if memory.expires_at is not None:
        data["expires_at"] = unix(memory.expires_at)
    return data


BATCH_FILTER_FIELDS = (
    "tags",
    "min_importance",
    "max_importance",
    "created_after",
    "created_before",
    "memory_type",
    "session_id",
)


def _unix_field(value: Any, field: str) -> dt.datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MemoryValidationError(f"{field} must be a Unix timestamp in seconds")
    try:
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise MemoryValidationError(f"{field} is out of range") from None


def batch_filter(qs: QuerySet[Memory], raw: Any) -> tuple[QuerySet[Memory], int]:
    """Apply a ``BatchMemoryFilter`` (recall/forget batch); returns the set and how many
    predicates it had. Unknown keys are a 400 (a typo must not widen a delete)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise MemoryValidationError("filter must be an object")
    unknown = sorted(set(raw) - set(BATCH_FILTER_FIELDS))
    if unknown:
        raise MemoryValidationError(
            f"unknown filter field(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(BATCH_FILTER_FIELDS)}"
        )
    used = 0
    for name in BATCH_FILTER_FIELDS:
        value = raw.get(name)
        if value is None:
            continue
        used += 1
        if name == "tags":
            for tag in validate_tags(value):
                # All listed tags (AND), as the SDK documents.
                qs = qs.filter(EmbeddedStore._any_tag([tag]))
        elif name == "min_importance":
            qs = qs.filter(importance__gte=validate_importance(value, name))
        elif name == "max_importance":
            qs = qs.filter(importance__lte=validate_importance(value, name))
        elif name == "created_after":
            qs = qs.filter(created_at__gte=_unix_field(value, name))
        elif name == "created_before":
            qs = qs.filter(created_at__lte=_unix_field(value, name))
        elif name == "memory_type":
            qs = qs.filter(memory_type=validate_memory_type(value))
        elif name == "session_id":
            if not isinstance(value, str):
                raise MemoryValidationError("session_id must be a string")
            qs = qs.filter(session_id=value)
    return qs, used


def _parse_iso(value: Any, field: str) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise MemoryValidationError(f"{field} must be an ISO-8601 string")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MemoryValidationError(f"{field} is not an ISO-8601 timestamp") from None
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


MAX_EXPIRES_AT = 253_402_300_799  # 9999-12-31T23:59:59Z
MAX_TTL_SECONDS = 100 * 365 * 24 * 3600


def _expiry(ttl_seconds: Any, expires_at: Any, now: dt.datetime) -> dt.datetime | None:
    if expires_at is not None:
        if isinstance(expires_at, bool) or not isinstance(expires_at, int):
            raise MemoryValidationError("expires_at must be a Unix timestamp in seconds")
        if not 0 <= expires_at <= MAX_EXPIRES_AT:
            raise MemoryValidationError(
                f"expires_at must be between 0 and {MAX_EXPIRES_AT} (the year 9999)"
            )
        return dt.datetime.fromtimestamp(expires_at, tz=dt.UTC)
    if ttl_seconds is not None:
        if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or ttl_seconds < 1:
            raise MemoryValidationError("ttl_seconds must be a positive integer")
        if ttl_seconds > MAX_TTL_SECONDS:
            raise MemoryValidationError(
                f"ttl_seconds must be at most {MAX_TTL_SECONDS} (100 years)"
            )
        return now + dt.timedelta(seconds=ttl_seconds)
    return None


def _sqlite_datetime(value: str | dt.datetime) -> dt.datetime:
    """A ``DateTimeField`` as SQLite returns it, as Django converts it (UTC, aware)."""
    if isinstance(value, dt.datetime):
        return value if timezone.is_aware(value) else value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)


_COUNT_SESSION_MEMORIES = (
    f"UPDATE {MemorySession._meta.db_table} SET memory_count = memory_count + %s, "  # noqa: S608
    "last_activity_at = CASE WHEN ended_at IS NULL THEN %s ELSE last_activity_at END "
    "WHERE id = %s"
)


# Compiled once (``handoffs.compiled``): every store in a session and every end reads
# its session, and compiling ``get()`` cost more than running it. ``locked``: FOR UPDATE
# (PostgreSQL; SQLite's writer already holds the database).
_sessions_by_id = Compiled(
    lambda session_ids, locked: (
        MemorySession.objects.select_for_update() if locked else MemorySession.objects
    ).filter(pk__in=session_ids)
)


class EmbeddedStore:
    """Memory operations on the console's own database (SQLite or PostgreSQL)."""

    # ---------------------------------------------------------------- sessions
    def _session(self, session_id: Any, *, for_update: bool = False) -> MemorySession:
        if not isinstance(session_id, str) or not session_id:
            raise MemoryValidationError("session_id must be a string")
        locked = for_update and connection.vendor == "postgresql"
        found = _sessions_by_id([session_id], locked=locked)
        if not found:
            raise MemoryNotFound(f"session {session_id} not found", resource="session")
        session = found[0]
        self._end_if_idle(session)
        return session

    @staticmethod
    def _end_if_idle(session: MemorySession, now: dt.datetime | None = None) -> None:
        """End a session whose idle deadline passed, as a real server does by itself."""
        if session.ended_at is not None:
            return
        timeout = session.idle_timeout_secs
        if timeout is None:
            timeout = DEFAULT_IDLE_TIMEOUT_SECS
        if timeout == 0:
            return
        now = now or timezone.now()
        deadline = session.last_activity_at + dt.timedelta(seconds=timeout)
        if deadline < now:
            updated = MemorySession.objects.filter(pk=session.pk, ended_at=None).update(
                ended_at=deadline, ended_reason="idle"
            )
            if updated:
                session.ended_at, session.ended_reason = deadline, "idle"
            else:
                session.refresh_from_db()

    def start_session(
        self,
        *,
        agent_id: str,
        metadata: dict[str, Any] | None = None,
        idle_timeout_secs: int | None = None,
    ) -> dict[str, Any]:
        validate_agent_id(agent_id)
        metadata = validate_metadata(metadata)
        if idle_timeout_secs is not None and (
            isinstance(idle_timeout_secs, bool)
            or not isinstance(idle_timeout_secs, int)
            or not 0 <= idle_timeout_secs <= MAX_IDLE_TIMEOUT_SECS
        ):
            raise MemoryValidationError(
                f"idle_timeout_secs must be an integer from 0 to {MAX_IDLE_TIMEOUT_SECS}"
            )
        session = MemorySession.objects.create(
            agent_id=agent_id, metadata=metadata, idle_timeout_secs=idle_timeout_secs
        )
        return {"session": session_dict(session)}

    def end_session(
        self,
        *,
        session_id: str,
        summary: str | None = None,
        allow: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """End a session. ``allow(agent_id)``, when given, is called with the session's
        namespace before anything else is checked and may raise to refuse (the API's
        rights check, done on the row this call reads instead of a read of its own)."""
        with transaction.atomic():  # select_for_update needs one (PostgreSQL)
            try:
                session: MemorySession | None = self._session(session_id, for_update=True)
            except MemoryNotFound:
                session = None
            if session is not None and allow is not None:
                allow(session.agent_id)
            if summary is not None:
                if not isinstance(summary, str):
                    raise MemoryValidationError("summary must be a string")
                if len(summary.encode()) > MAX_CONTENT_BYTES:
                    # A 400, not a 413, on a real server (SDK 0.14.1 ``end_session``).
                    raise MemoryValidationError(
                        f"summary is longer than {MAX_CONTENT_BYTES} bytes", details="summary"
                    )
            if session is None:
                # Ending an unknown session is idempotent on the wire: 200, nothing ended.
                return {"memory_count": 0, "session": None}
            if session.ended_at is None:
                now = timezone.now()
                ended = MemorySession.objects.filter(pk=session.pk, ended_at=None).update(
                    ended_at=now, ended_reason="client", summary=summary or ""
                )
                if ended:
                    # The row is this transaction's (IMMEDIATE on SQLite, FOR UPDATE on
                    # PostgreSQL): nothing else changed it since it was read.
                    session.ended_at, session.ended_reason = now, "client"
                    session.summary = summary or ""
                else:
                    session.refresh_from_db()
        return {"memory_count": session.memory_count, "session": session_dict(session)}

    def get_session(self, *, session_id: str) -> dict[str, Any]:
        return session_dict(self._session(session_id))

    def list_sessions(
        self,
        *,
        agent_id: str | None = None,
        active_only: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> dict[str, Any]:
        qs = MemorySession.objects.all()
        if agent_id is not None:
            validate_agent_id(agent_id)
            qs = qs.filter(agent_id=agent_id)
        now = timezone.now()
        for session in qs.filter(ended_at=None).exclude(idle_timeout_secs=0)[:1000]:
            self._end_if_idle(session, now)
        if active_only:
            qs = qs.filter(ended_at=None)
        total = qs.count()
        page = qs.order_by("-started_at", "-pk")[offset : offset + limit]
        return {"sessions": [session_dict(s) for s in page], "total": total}

    def session_memories(
        self, *, session_id: str, limit: int = 50, offset: int = 0
    ) -> dict[str, Any]:
        session = self._session(session_id)
        qs = self._live(Memory.objects.filter(session=session)).order_by("created_at", "pk")
        total = qs.count()
        return {
            "session": session_dict(session),
            "memories": [memory_dict(m) for m in qs[offset : offset + limit]],
            "total": total,
        }

    def touch_session(self, *, session_id: str) -> dict[str, Any]:
        session = self._session(session_id)
        deadline = None
        if session.ended_at is None:
            now = timezone.now()
            MemorySession.objects.filter(pk=session.pk).update(last_activity_at=now)
            session.last_activity_at = now
            timeout = session.idle_timeout_secs
            if timeout is None:
                timeout = DEFAULT_IDLE_TIMEOUT_SECS
            if timeout:
                deadline = unix(now + dt.timedelta(seconds=timeout))
        return {
            "session": session_dict(session),
            "session_state": "active" if session.ended_at is None else "ended",
            "idle_deadline_at": deadline,
        }

    # ---------------------------------------------------------------- memories
    @staticmethod
    def _live(qs: QuerySet[Memory]) -> QuerySet[Memory]:
        return qs.filter(Q(expires_at=None) | Q(expires_at__gt=timezone.now()))

    def _prepare(self, agent_id: str, item: dict[str, Any], now: dt.datetime) -> Memory:
        content = validate_content(item.get("content"))
        tags = validate_tags(item.get("tags"))
        metadata = validate_metadata(item.get("metadata"))
        memory = Memory(
            agent_id=agent_id,
            content=content,
            memory_type=validate_memory_type(item.get("memory_type")),
            importance=validate_importance(item.get("importance")),
            tags=tags,
            metadata=metadata,
            created_at=now,
            last_accessed_at=now,
            expires_at=_expiry(item.get("ttl_seconds"), item.get("expires_at"), now),
        )
        session_id = item.get("session_id")
        if session_id is not None:
            session = self._session(session_id, for_update=True)
            if session.agent_id != agent_id:
                raise MemoryNotFound(
                    f"session {session_id} not found for agent {agent_id}",
                    resource="session",
                )
            memory.session = session
        return memory

    def _save(self, memories: list[Memory], now: dt.datetime) -> None:
        Memory.objects.bulk_create(memories)
        if connection.vendor == "sqlite" and any(m.pk is None for m in memories):
            # Older SQLite builds don't return ids from bulk inserts.
            uids = {m.uid: m for m in memories}
            for pk, uid in Memory.objects.filter(uid__in=uids).values_list("pk", "uid"):
                uids[uid].pk = pk
        lexical.index_memories(
            [
                (
                    m.pk,
                    m.agent_id,
                    lexical.index_text(content=m.content, tags=m.tags, metadata=m.metadata),
                )
                for m in memories
            ]
        )
        counts: dict[str, int] = {}
        for m in memories:
            if m.session_id is not None:
                counts[m.session_id] = counts.get(m.session_id, 0) + 1
        if counts:
            # One statement per session: the count always, the activity clock only while
            # it's open. Written out: every store runs it, and compiling the ORM's
            # F()/Case() update cost more than the insert it follows.
            stamp = connection.ops.adapt_datetimefield_value(now)
            with connection.cursor() as cursor:
                cursor.executemany(
                    _COUNT_SESSION_MEMORIES,
                    [(count, stamp, session_id) for session_id, count in counts.items()],
                )

    def store(
        self,
        *,
        agent_id: str,
        content: str,
        memory_type: str | None = None,
        importance: float | None = None,
        metadata: dict[str, Any] | None = None,
        session_id: str | None = None,
        tags: list[str] | None = None,
        ttl_seconds: int | None = None,
        expires_at: int | None = None,
    ) -> dict[str, Any]:
        validate_agent_id(agent_id)
        started = time.perf_counter()
        now = timezone.now()
        with transaction.atomic():
            memory = self._prepare(
                agent_id,
                {
                    "content": content,
                    "memory_type": memory_type,
                    "importance": importance,
                    "metadata": metadata,
                    "session_id": session_id,
                    "tags": tags,
                    "ttl_seconds": ttl_seconds,
                    "expires_at": expires_at,
                },
                now,
            )
            self._save([memory], now)
        state = "active"
        if memory.session is not None and memory.session.ended_at is not None:
            state = "ended"
        return {
            "memory": memory_dict(memory),
            "session_state": state,
            "embedding_time_ms": int((time.perf_counter() - started) * 1000),
        }

    def store_batch(self, *, agent_id: str, memories: list[dict[str, Any]]) -> dict[str, Any]:
        validate_agent_id(agent_id)
        if not isinstance(memories, list) or not 1 <= len(memories) <= MAX_BATCH:
            raise MemoryValidationError(f"memories must be a list of 1 to {MAX_BATCH} items")
        if not all(isinstance(item, dict) for item in memories):
            raise MemoryValidationError("each item of memories must be an object")
        started = time.perf_counter()
        now = timezone.now()
        with transaction.atomic():
            prepared = [self._prepare(agent_id, item, now) for item in memories]
            self._save(prepared, now)
        ended = sorted(
            {m.session_id for m in prepared if m.session and m.session.ended_at is not None}
        )
        body: dict[str, Any] = {
            "stored": [memory_dict(m) for m in prepared],
            "stored_count": len(prepared),
            "total_embedding_time_ms": int((time.perf_counter() - started) * 1000),
        }
        if ended:
            body["ended_sessions"] = ended
        return body

    def get_memory(self, *, agent_id: str | None, memory_id: str) -> dict[str, Any]:
        qs = self._live(Memory.objects.filter(uid=memory_id))
        if agent_id is not None:
            validate_agent_id(agent_id)
            qs = qs.filter(agent_id=agent_id)
        memory = qs.first()
        if memory is None:
            raise MemoryNotFound(f"memory {memory_id} not found", resource="memory")
        return memory_dict(memory)

    def forget(self, *, agent_id: str, memory_ids: list[str]) -> dict[str, Any]:
        validate_agent_id(agent_id)
        if not isinstance(memory_ids, list) or not all(isinstance(i, str) for i in memory_ids):
            raise MemoryValidationError("memory_ids must be a list of strings")
        with transaction.atomic():
            doomed = Memory.objects.filter(agent_id=agent_id, uid__in=memory_ids)
            per_session: dict[str, int] = {}
            for session_id in doomed.exclude(session=None).values_list("session_id", flat=True):
                per_session[session_id] = per_session.get(session_id, 0) + 1
            deleted, _ = doomed.delete()
            for session_id, count in per_session.items():
                MemorySession.objects.filter(pk=session_id).update(
                    memory_count=F("memory_count") - count
                )
        return {"deleted_count": deleted}

    # ---------------------------------------------------------------- ranking
    def _filtered(self, agent_id: str, filters: dict[str, Any]) -> tuple[QuerySet[Memory], bool]:
        qs = self._live(Memory.objects.filter(agent_id=agent_id))
        narrowed = False
        session_id = filters.get("session_id")
        if session_id is not None:
            if not isinstance(session_id, str):
                raise MemoryValidationError("session_id must be a string")
            qs, narrowed = qs.filter(session_id=session_id), True
        memory_type = filters.get("memory_type")
        if memory_type is not None:
            qs, narrowed = qs.filter(memory_type=validate_memory_type(memory_type)), True
        min_importance = filters.get("min_importance")
        if min_importance is not None:
            qs = qs.filter(importance__gte=validate_importance(min_importance))
            narrowed = True
        since = _parse_iso(filters.get("since"), "since")
        if since is not None:
            qs, narrowed = qs.filter(created_at__gte=since), True
        until = _parse_iso(filters.get("until"), "until")
        if until is not None:
            qs, narrowed = qs.filter(created_at__lte=until), True
        tags = filters.get("tags")
        if tags is not None:
            tags = validate_tags(tags)
            qs, narrowed = qs.filter(self._any_tag(tags)), True
        if filters.get("include_summaries") is False:
            narrowed = True  # applied after ranking; summaries are rare
        return qs, narrowed

    @staticmethod
    def _any_tag(tags: list[str]) -> RawSQL:
        if not tags:
            return RawSQL("1 = 0", [], output_field=BooleanField())
        # Only placeholders are interpolated; the tags themselves are parameters.
        marks = ", ".join(["%s"] * len(tags))
        if connection.vendor == "postgresql":
            return RawSQL(  # noqa: S611
                f'"memory_memory"."tags" ?| ARRAY[{marks}]::text[]',
                tags,
                output_field=BooleanField(),
            )
        return RawSQL(  # noqa: S611
            'EXISTS (SELECT 1 FROM json_each("memory_memory"."tags") '  # noqa: S608
            f"WHERE json_each.value IN ({marks}))",
            tags,
            output_field=BooleanField(),
        )

    def _rank(
        self, *, agent_id: str, query: Any, top_k: int, filters: dict[str, Any]
    ) -> list[tuple[Memory, dict[str, float]]]:
        validate_agent_id(agent_id)
        if not isinstance(query, str):
            raise MemoryValidationError("query is required and must be a string")
        qs, narrowed = self._filtered(agent_id, filters)
        terms = lexical.query_terms(query)
        base_sql = qs.values("pk").query.sql_with_params() if narrowed else None
        hits = lexical.lexical_candidates(agent_id=agent_id, terms=terms, base_sql=base_sql)
        lexical_scores = {pk: score for pk, score, _count in hits}
        # How many terms each lexical candidate matches: counted by the SQLite index;
        # on PostgreSQL by ``term_matcher`` on the candidate's indexed text.
        matched = {pk: count for pk, _score, count in hits if count is not None}
        matcher = lexical.term_matcher(terms) if len(matched) < len(hits) else None
        ids = set(lexical_scores) | set(self._filler(qs, agent_id, narrowed, max(top_k, FILLER)))
        # Rank on a projection of the candidates (up to CANDIDATES + FILLER rows) and
        # build model instances only for the top_k returned: materialising ~220 Memory
        # objects (13 fields, three datetime and two JSON conversions each) was over
        # half of a recall's time. The ids are looked up by primary key alone: with
        # ``agent_id = %s`` in the same WHERE clause SQLite's planner walks the whole
        # namespace through mem_agent_created instead. Every id already satisfies the
        # filters (lexical candidates are restricted by base_sql, the filler comes from
        # qs); only liveness and the namespace are re-checked.
        now = timezone.now()
        if connection.vendor == "sqlite" and filters.get("include_summaries") is not False:
            # (pk, importance, created_at) without the ORM.
            candidates = self._sqlite_candidates(agent_id, ids, now)
        else:
            candidates = self._orm_candidates(agent_id, ids, filters)
        best_lexical = max(lexical_scores.values(), default=0.0) or 1.0
        scored = []
        for pk, importance, created_at, text_of in candidates:
            lexical_score = lexical_scores.get(pk, 0.0)
            relevance = 0.0
            if lexical_score > 0 and terms:
                count = matched.get(pk)
                if count is None and matcher is not None and text_of is not None:
                    count = len(matcher(text_of()))
                relevance = 0.8 * (count or 0) / len(terms)
                relevance += 0.2 * (lexical_score / best_lexical)
            age_days = max((now - created_at).total_seconds(), 0) / 86400
            recency = math.pow(0.5, age_days / RECENCY_HALF_LIFE_DAYS)
            weighted = RELEVANCE_WEIGHT * relevance + IMPORTANCE_WEIGHT * importance
            rank = weighted + RECENCY_WEIGHT * recency
            scored.append((round(rank, 6), importance, pk, relevance, weighted))
        # Best first: rank_score (as answered, rounded), then importance, then newest id.
        scored.sort(key=lambda r: (-r[0], -r[1], -r[2]))
        top = scored[:top_k]
        # By primary key in one raw statement (the ids are this database's integers):
        # the same instances as ``in_bulk`` without compiling a query.
        listed = ", ".join(str(int(r[2])) for r in top)
        objects = (
            {
                m.pk: m
                for m in Memory.objects.raw(
                    f"SELECT * FROM {Memory._meta.db_table} WHERE id IN ({listed})"  # noqa: S608
                )
            }
            if top
            else {}
        )
        return [
            (
                objects[pk],
                {
                    "score": round(relevance, 6),
                    "weighted_score": round(weighted, 6),
                    "smart_score": rank,
                    "rank_score": rank,
                },
            )
            for rank, _importance, pk, relevance, weighted in top
            if pk in objects
        ]

    @staticmethod
    def _filler(qs: QuerySet[Memory], agent_id: str, narrowed: bool, count: int) -> list[int]:
        """The namespace's most important (then newest) live memories, ``count`` of them:
        candidates even when no word matches. Without filters, on SQLite, the statement
        Django would compile for ``qs``, written out once."""
        if narrowed or connection.vendor != "sqlite":
            ordered = qs.order_by("-importance", "-created_at").values_list("pk", flat=True)
            return list(ordered[:count])
        sql = (
            f"SELECT id FROM {Memory._meta.db_table} WHERE agent_id = %s "  # noqa: S608
            "AND (expires_at IS NULL OR expires_at > %s) "
            "ORDER BY importance DESC, created_at DESC LIMIT %s"
        )
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        with connection.cursor() as cursor:
            cursor.execute(sql, [agent_id, now, count])
            return [pk for (pk,) in cursor.fetchall()]

    @staticmethod
    def _orm_candidates(
        agent_id: str, ids: set[int], filters: dict[str, Any]
    ) -> list[tuple[int, float, dt.datetime, Callable[[], str] | None]]:
        """``(pk, importance, created_at, indexed text)`` of the live candidates in the
        namespace, through the ORM (PostgreSQL; ``include_summaries=false`` drops the
        automatic session summaries)."""
        fields = ("pk", "agent_id", "content", "tags", "metadata", "importance", "created_at")
        rows = (
            EmbeddedStore._live(Memory.objects.filter(pk__in=ids)).order_by().values_list(*fields)
            if ids
            else []
        )
        candidates = [row for row in rows if row[1] == agent_id]
        if filters.get("include_summaries") is False:
            candidates = [
                row
                for row in candidates
                if not is_auto_summary({"tags": row[3], "metadata": row[4]})
            ]
        return [
            (
                pk,
                importance,
                created_at,
                functools.partial(
                    lexical.index_text, content=content, tags=tags, metadata=metadata
                ),
            )
            for pk, _agent, content, tags, metadata, importance, created_at in candidates
        ]

    @staticmethod
    def _sqlite_candidates(
        agent_id: str, ids: set[int], now: dt.datetime
    ) -> list[tuple[int, float, dt.datetime, Callable[[], str] | None]]:
        """The live candidates' ranking inputs in one raw query, as ``_orm_candidates``
        gives them but without the text: on SQLite the index itself counts the terms
        each candidate matches (``lexical.lexical_candidates``)."""
        if not ids:
            return []
        # The ids are this database's own integer keys, written into the statement: 220
        # bound parameters cost more than the query (and, with DEBUG, a second query
        # to quote them for the log).
        listed = ", ".join(str(int(pk)) for pk in ids)
        sql = (
            # created_at as text (an expression has no declared type): the driver's
            # converter would parse each row's twice as slowly as fromisoformat.
            "SELECT id, agent_id, importance, CAST(created_at AS TEXT) "  # noqa: S608
            "FROM memory_memory "
            f"WHERE id IN ({listed}) AND (expires_at IS NULL OR expires_at > %s)"
        )
        params = [connection.ops.adapt_datetimefield_value(now)]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return [
            (pk, importance, _sqlite_datetime(created_at), None)
            for pk, row_agent, importance, created_at in rows
            if row_agent == agent_id
        ]

    def recall(
        self, *, agent_id: str, query: str, top_k: int | None = None, **filters: Any
    ) -> dict[str, Any]:
        started = time.perf_counter()
        top_k = validate_top_k(top_k, 5)
        ranked = self._rank(agent_id=agent_id, query=query, top_k=top_k, filters=filters)
        if ranked:
            now = timezone.now()
            # The statement ``filter(pk__in=...).update(access_count=F(...) + 1, ...)``
            # compiles to, written out once (the ids are this database's integers).
            listed = ", ".join(str(int(m.pk)) for m, _ in ranked)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {Memory._meta.db_table} SET access_count = access_count + 1, "  # noqa: S608
                    f"last_accessed_at = %s WHERE id IN ({listed})",
                    [connection.ops.adapt_datetimefield_value(now)],
                )
            for memory, _ in ranked:
                memory.access_count += 1
                memory.last_accessed_at = now
        body: dict[str, Any] = {
            "memories": [{"memory": memory_dict(m), **scores} for m, scores in ranked],
            "query_embedding_time_ms": 0,
            "search_time_ms": int((time.perf_counter() - started) * 1000),
        }
        if filters.get("neighborhood_mode") == "separate":
            body["context_memories"] = []
        return body

    def search(
        self, *, agent_id: str, query: str, top_k: int | None = None, **filters: Any
    ) -> dict[str, Any]:
        top_k = validate_top_k(top_k, 10)
        ranked = self._rank(agent_id=agent_id, query=query, top_k=top_k, filters=filters)
        return {
            "memories": [{"memory": memory_dict(m), **scores} for m, scores in ranked],
            "total_count": len(ranked),
        }
