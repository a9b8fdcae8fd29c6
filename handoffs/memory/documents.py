"""Text namespaces: the documents the LangChain and LlamaIndex vector stores keep.

``/v1/namespaces`` and ``/v1/namespaces/{ns}/upsert-text | query-text | batch-query-text
| hybrid | fulltext/...`` on the embedded server. **No embeddings in embedded mode:**
documents are ranked by the store's lexical engine (FTS5 / tsvector, see ``lexical``),
the same relevance recall uses: the share of the query's terms a document matches, with
BM25 breaking ties, in [0, 1]. A ``vector`` in a request is refused (501) rather than
silently ignored; ``dimension`` and ``distance`` are recorded and echoed, nothing more.

A namespace's documents are ``Memory`` rows in the reserved memory namespace
``_dakera_ns_<name>`` with ``doc_id`` set: one text index, one expiry rule, and no bot can
reach them through the agent routes (agent ids may not start with ``_dakera_``).
"""

from __future__ import annotations

import time
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import lexical
from .base import (
    DOCUMENT_NAMESPACE_PREFIX,
    MAX_BATCH,
    MemoryConflict,
    MemoryNotFound,
    MemoryNotSupported,
    MemoryValidationError,
    validate_bounded_int,
    validate_content,
    validate_metadata,
    validate_namespace,
    validate_top_k,
)
from .embedded import EmbeddedStore, _expiry, unix
from .models import Memory, TextNamespace

MAX_DOC_ID = 255
MAX_QUERIES = 100
FILTERED_CANDIDATES = 2000
DISTANCES = ("cosine", "euclidean", "dot_product", "dotproduct", "manhattan")
COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$contains")


def storage_namespace(name: str) -> str:
    return DOCUMENT_NAMESPACE_PREFIX + name


def namespace_dict(ns: TextNamespace, count: int | None = None) -> dict[str, Any]:
    if count is None:
        count = _documents(ns.name).count()
    return {
        "name": ns.name,
        "namespace": ns.name,
        "kind": "data",
        "dimension": ns.dimension,
        "distance": ns.distance,
        "index_type": ns.index_type or None,
        "vector_count": count,
        "document_count": count,
        "metadata": ns.metadata,
        "created_at": ns.created_at.isoformat(),
        "updated_at": ns.updated_at.isoformat(),
        "embedding": "none (embedded mode ranks lexically)",
    }


def _documents(name: str):
    return EmbeddedStore._live(Memory.objects.filter(agent_id=storage_namespace(name)))


def _get(name: Any) -> TextNamespace:
    name = validate_namespace(name)
    try:
        return TextNamespace.objects.get(name=name)
    except TextNamespace.DoesNotExist:
        raise MemoryNotFound(f"namespace {name} not found", resource="namespace") from None


# ------------------------------------------------------------------ validation
def _dimension(value: Any) -> int | None:
    if value is None:
        return None
    return validate_bounded_int(value, "dimension", default=0, low=1, high=65_536)


def _distance(value: Any) -> str | None:
    if value is None:
        return None
    if value not in DISTANCES:
        raise MemoryValidationError(f"distance must be one of {', '.join(DISTANCES[:3])}")
    return value


def validate_filter(value: Any) -> dict[str, Any] | None:
    """A metadata filter: ``{field: value}``, ``{field: {"$op": value}}``, ``$and``/``$or``."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MemoryValidationError("filter must be an object")
    for key, condition in value.items():
        if key in ("$and", "$or"):
            if not isinstance(condition, list) or not condition:
                raise MemoryValidationError(f"{key} must be a non-empty list of filters")
            for part in condition:
                validate_filter(part)
        elif key.startswith("$"):
            raise MemoryValidationError(f"unknown filter operator {key[:40]}")
        elif isinstance(condition, dict):
            for op, operand in condition.items():
                if op not in COMPARISONS:
                    raise MemoryValidationError(
                        f"unknown filter operator {op[:40]}; use {', '.join(COMPARISONS)}"
                    )
                if op in ("$in", "$nin") and not isinstance(operand, list):
                    raise MemoryValidationError(f"{op} needs a list")
    return value


def _compare(actual: Any, op: str, operand: Any) -> bool:
    if op == "$exists":
        return (actual is not None) == bool(operand)
    if op == "$eq":
        return actual == operand
    if op == "$ne":
        return actual != operand
    if op == "$in":
        return actual in operand
    if op == "$nin":
        return actual not in operand
    if op == "$contains":
        return isinstance(actual, list | str) and operand in actual
    try:
        if op == "$gt":
            return actual > operand
        if op == "$gte":
            return actual >= operand
        if op == "$lt":
            return actual < operand
        return actual <= operand
    except TypeError:
        return False


def matches(metadata: dict[str, Any], condition: dict[str, Any] | None) -> bool:
    """Whether a document's metadata satisfies a validated filter."""
    if not condition:
        return True
    for key, value in condition.items():
        if key == "$and":
            if not all(matches(metadata, part) for part in value):
                return False
        elif key == "$or":
            if not any(matches(metadata, part) for part in value):
                return False
        elif isinstance(value, dict):
            if not all(_compare(metadata.get(key), op, arg) for op, arg in value.items()):
                return False
        elif metadata.get(key) != value:
            return False
    return True


def validate_documents(raw: Any) -> list[dict[str, Any]]:
    """``documents``: 1–1000 objects ``{id, text (or content), metadata?, ttl_seconds?}``."""
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_BATCH:
        raise MemoryValidationError(f"documents must be a list of 1 to {MAX_BATCH} items")
    docs: dict[str, dict[str, Any]] = {}
    for item in raw:
        if not isinstance(item, dict):
            raise MemoryValidationError("each document must be an object")
        doc_id = item.get("id")
        if not isinstance(doc_id, str) or not doc_id or len(doc_id) > MAX_DOC_ID:
            raise MemoryValidationError(
                f"each document needs an id: a string of 1 to {MAX_DOC_ID} characters"
            )
        text = item.get("text", item.get("content"))
        ttl = item.get("ttl_seconds")
        docs[doc_id] = {  # the last of a repeated id wins, as an upsert does
            "id": doc_id,
            "text": validate_content(text),
            "metadata": validate_metadata(item.get("metadata")),
            "ttl_seconds": ttl,
        }
        _expiry(ttl, None, timezone.now())
    return list(docs.values())


def validate_ids(raw: Any) -> list[str]:
    if (
        not isinstance(raw, list)
        or not all(isinstance(i, str) for i in raw)
        or not 1 <= len(raw) <= MAX_BATCH
    ):
        raise MemoryValidationError(f"ids must be a list of 1 to {MAX_BATCH} strings")
    return raw


def validate_query(data: dict[str, Any], field: str = "text") -> dict[str, Any]:
    """A text query body: ``text`` (or ``query``), ``top_k``, ``filter``; no vectors."""
    if data.get("vector") is not None:
        raise MemoryNotSupported(
            "vectors are not stored in embedded mode (documents are ranked lexically); "
            "set DAKERA_URL to use a Dakera server with embeddings"
        )
    text = data.get(field, data.get("query"))
    if not isinstance(text, str) or not text.strip():
        raise MemoryValidationError(f"{field} is required and must be a non-empty string")
    return {
        "text": text,
        "top_k": validate_top_k(data.get("top_k"), 10),
        "filter": validate_filter(data.get("filter")),
        "include_text": data.get("include_text", True) is not False,
    }


# ------------------------------------------------------------------ namespaces
def list_namespaces() -> dict[str, Any]:
    names = list(TextNamespace.objects.order_by("name").values_list("name", flat=True))
    return {"namespaces": names, "kinds": dict.fromkeys(names, "data")}


def get_namespace(*, name: str) -> dict[str, Any]:
    return namespace_dict(_get(name))


def create_namespace(
    *,
    name: Any,
    dimension: Any = None,
    distance: Any = None,
    index_type: Any = None,
    metadata: Any = None,
) -> dict[str, Any]:
    """Create a namespace; 409 if it exists."""
    name = validate_namespace(name)
    if index_type is not None and not isinstance(index_type, str):
        raise MemoryValidationError("index_type must be a string")
    fields = {
        "dimension": _dimension(dimension),
        "distance": _distance(distance) or "cosine",
        "index_type": (index_type or "")[:40],
        "metadata": validate_metadata(metadata),
    }
    try:
        with transaction.atomic():
            ns = TextNamespace.objects.create(name=name, **fields)
    except IntegrityError:
        raise MemoryConflict(f"namespace {name} already exists", resource="namespace") from None
    return namespace_dict(ns, 0)


def configure_namespace(*, name: str, dimension: Any, distance: Any) -> dict[str, Any]:
    """Create or update (``PUT``); a different dimension than recorded is a 400."""
    name = validate_namespace(name)
    dimension, distance = _dimension(dimension), _distance(distance)
    with transaction.atomic():
        ns, created = TextNamespace.objects.get_or_create(
            name=name, defaults={"dimension": dimension, "distance": distance or "cosine"}
        )
        if not created:
            if dimension is not None and ns.dimension not in (None, dimension):
                raise MemoryValidationError(
                    f"namespace {name} has dimension {ns.dimension}, not {dimension}",
                    code="DIMENSION_MISMATCH",
                )
            ns.dimension = dimension or ns.dimension
            ns.distance = distance or ns.distance
            ns.updated_at = timezone.now()
            ns.save(update_fields=["dimension", "distance", "updated_at"])
    return {
        "namespace": ns.name,
        "dimension": ns.dimension,
        "distance": ns.distance,
        "created": created,
    }


def delete_namespace(*, name: str) -> dict[str, Any]:
    """Delete a namespace and every document in it; 404 if absent."""
    with transaction.atomic():
        ns = _get(name)
        deleted, _ = Memory.objects.filter(agent_id=storage_namespace(ns.name)).delete()
        ns.delete()
    return {"deleted": True, "namespace": ns.name, "deleted_count": deleted}


# ------------------------------------------------------------------ documents
def upsert_documents(*, name: str, documents: list[dict[str, Any]]) -> dict[str, Any]:
    """Insert or replace documents by id; creates the namespace on first use."""
    name = validate_namespace(name)
    started = time.perf_counter()
    now = timezone.now()
    agent_id = storage_namespace(name)
    with transaction.atomic():
        TextNamespace.objects.get_or_create(name=name)
        ids = [doc["id"] for doc in documents]
        Memory.objects.filter(agent_id=agent_id, doc_id__in=ids).delete()
        rows = [
            Memory(
                agent_id=agent_id,
                doc_id=doc["id"],
                content=doc["text"],
                memory_type="semantic",
                metadata=doc["metadata"],
                created_at=now,
                last_accessed_at=now,
                expires_at=_expiry(doc["ttl_seconds"], None, now),
            )
            for doc in documents
        ]
        EmbeddedStore()._save(rows, now)
        TextNamespace.objects.filter(name=name).update(updated_at=now)
    return {
        "upserted_count": len(rows),
        "indexed_count": len(rows),
        "tokens_processed": sum(len(lexical.TOKEN_RE.findall(doc["text"])) for doc in documents),
        "embedding_time_ms": 0,
        "index_time_ms": int((time.perf_counter() - started) * 1000),
    }


def delete_documents(*, name: str, ids: list[str] | None = None, filter: Any = None) -> dict:  # noqa: A002
    """Delete documents by id, or those whose metadata matches ``filter``."""
    ns = _get(name)
    with transaction.atomic():
        qs = Memory.objects.filter(agent_id=storage_namespace(ns.name))
        if ids is not None:
            deleted, _ = qs.filter(doc_id__in=ids).delete()
        else:
            condition = validate_filter(filter)
            if not condition:
                raise MemoryValidationError("filter needs at least one condition")
            doomed = [
                pk for pk, meta in qs.values_list("pk", "metadata") if matches(meta, condition)
            ]
            deleted, _ = Memory.objects.filter(pk__in=doomed).delete()
    return {"deleted_count": deleted}


def rank(*, name: str, text: str, top_k: int, filter: dict | None) -> list[dict[str, Any]]:  # noqa: A002
    """The namespace's best documents for ``text``: ``score`` in [0, 1], best first."""
    ns = _get(name)
    agent_id = storage_namespace(ns.name)
    terms = lexical.query_terms(text)
    hits = lexical.lexical_candidates(
        agent_id=agent_id,
        terms=terms,
        base_sql=None,
        limit=FILTERED_CANDIDATES if filter else max(lexical.CANDIDATES, top_k),
    )
    if not hits:
        return []
    candidates = {pk: score for pk, score, _count in hits}
    # Terms matched: counted by the SQLite index, by ``term_matcher`` on PostgreSQL.
    counted = {pk: count for pk, _score, count in hits if count is not None}
    rows = (
        EmbeddedStore._live(Memory.objects.filter(pk__in=list(candidates), agent_id=agent_id))
        .order_by()
        .values_list("pk", "doc_id", "content", "metadata", "tags", "created_at")
    )
    best = max(candidates.values()) or 1.0
    matched_terms = lexical.term_matcher(terms)
    scored = []
    for pk, doc_id, content, metadata, tags, created_at in rows:
        if not matches(metadata, filter):
            continue
        coverage = counted.get(pk)
        if coverage is None:
            indexed = lexical.index_text(content=content, tags=tags, metadata=metadata)
            coverage = len(matched_terms(indexed))
        score = 0.8 * coverage / len(terms) + 0.2 * candidates[pk] / best
        scored.append((round(score, 6), candidates[pk], doc_id, content, metadata, created_at))
    scored.sort(key=lambda r: (-r[0], -r[1], r[2]))
    return [
        {
            "id": doc_id,
            "score": score,
            "text_score": round(bm25, 6),
            "content": content,
            "text": content,
            "metadata": metadata,
            "created_at": unix(created_at),
        }
        for score, bm25, doc_id, content, metadata, created_at in scored[:top_k]
    ]


def query_text(*, name: str, query: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    results = rank(name=name, text=query["text"], top_k=query["top_k"], filter=query["filter"])
    out = []
    for r in results:
        item = {"id": r["id"], "score": r["score"], "metadata": r["metadata"]}
        if query["include_text"]:
            item["text"] = r["text"]
        out.append(item)
    return {
        "results": out,
        "embedding_time_ms": 0,
        "search_time_ms": int((time.perf_counter() - started) * 1000),
    }


def batch_query_text(
    *,
    name: str,
    queries: Any,
    top_k: Any,
    filter: Any,  # noqa: A002
) -> dict[str, Any]:
    if (
        not isinstance(queries, list)
        or not 1 <= len(queries) <= MAX_QUERIES
        or not all(isinstance(q, str) and q.strip() for q in queries)
    ):
        raise MemoryValidationError(
            f"queries must be a list of 1 to {MAX_QUERIES} non-empty strings"
        )
    top_k, condition = validate_top_k(top_k, 10), validate_filter(filter)
    started = time.perf_counter()
    results = [
        [
            {"id": r["id"], "score": r["score"], "text": r["text"], "metadata": r["metadata"]}
            for r in rank(name=name, text=q, top_k=top_k, filter=condition)
        ]
        for q in queries
    ]
    return {
        "results": results,
        "embedding_time_ms": 0,
        "search_time_ms": int((time.perf_counter() - started) * 1000),
    }


def hybrid(*, name: str, query: dict[str, Any]) -> dict[str, Any]:
    """BM25-only hybrid search (the SDK's answer when no vector is given)."""
    results = rank(name=name, text=query["text"], top_k=query["top_k"], filter=query["filter"])
    return {
        "results": [
            {
                "id": r["id"],
                "score": r["score"],
                "text_score": r["text_score"],
                "content": r["content"],
                "metadata": r["metadata"],
            }
            for r in results
        ]
    }


def fulltext_search(*, name: str, query: dict[str, Any]) -> dict[str, Any]:
    results = rank(name=name, text=query["text"], top_k=query["top_k"], filter=query["filter"])
    return {
        "results": [
            {"id": r["id"], "score": r["score"], "content": r["content"], "metadata": r["metadata"]}
            for r in results
        ]
    }


def fulltext_stats(*, name: str) -> dict[str, Any]:
    ns = _get(name)
    terms: set[str] = set()
    count = total = 0
    for content in _documents(ns.name).values_list("content", flat=True).iterator():
        words = lexical.TOKEN_RE.findall(content.lower())
        terms.update(words)
        count += 1
        total += len(words)
    return {
        "document_count": count,
        "unique_terms": len(terms),
        "avg_doc_length": round(total / count, 3) if count else 0.0,
    }
