"""The narrow memory interface shared by the embedded store and the remote client.

Both implementations take keyword arguments and return dictionaries shaped exactly like
the Dakera wire format (``docs/memory-api.md``), so the code above this interface
(intake, the handoff card, chat, transfer) never knows which one is in use.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Protocol

MAX_CONTENT_BYTES = 100_000
MAX_METADATA_KEYS = 100
MAX_TOP_K = 10_000
MAX_BATCH = 1000
MAX_AGENT_ID_BYTES = 241
MEMORY_TYPES = ("episodic", "semantic", "procedural", "working")
AGENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MAX_NAMESPACE_BYTES = 200
#: The reserved memory namespace holding a text namespace's documents (``documents``).
DOCUMENT_NAMESPACE_PREFIX = "_dakera_ns_"
NOT_SUPPORTED = "NOT_SUPPORTED_IN_EMBEDDED_MODE"


class WireError(Exception):
    """A refused or failed call, with the status, code and body of its answer on the wire.

    Every bot-facing endpoint answers these in Dakera's error shape (``memory.http``);
    the lifecycle's ``HandoffError`` is one too.
    """

    status = 500
    code = "INTERNAL_ERROR"

    def __init__(
        self,
        message: str,
        *,
        resource: str | None = None,
        details: str | None = None,
        code: str | None = None,
        status: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.resource = resource
        self.details = details
        self.retry_after = retry_after
        if code:
            self.code = code
        if status:
            self.status = status

    def as_wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        if self.resource is not None:
            body["resource"] = self.resource
        return body


class MemoryError(WireError):  # noqa: A001 - the domain's own name, shadowing is intended
    """A memory operation failed; carries the wire status, code and resource."""


class MemoryValidationError(MemoryError):
    status = 400
    code = "INVALID_REQUEST"


class MemoryNotFound(MemoryError):
    status = 404
    code = "NOT_FOUND"


class MemoryPayloadTooLarge(MemoryError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


class MemoryAuthError(MemoryError):
    status = 401
    code = "INVALID_API_KEY"


class MemoryForbidden(MemoryError):
    status = 403
    code = "INSUFFICIENT_SCOPE"


class MemoryConflict(MemoryError):
    status = 409
    code = "CONFLICT"


class MemoryRateLimited(MemoryError):
    status = 429
    code = "RATE_LIMIT_EXCEEDED"


class MemoryNotSupported(MemoryError):
    """A call the embedded server does not serve; a real Dakera (``DAKERA_URL``) does."""

    status = 501
    code = NOT_SUPPORTED


class MemoryUnavailable(MemoryError):
    """The memory server can't be reached or answered 5xx; the caller may queue."""

    status = 503
    code = "SERVICE_UNAVAILABLE"


MAX_JSON_DEPTH = 64
MAX_JSON_INT = 2**63 - 1  # the database's BIGINT; no field of the API needs more


def check_text(value: str, field: str) -> str:
    """``value`` unless it holds a NUL or a lone UTF-16 surrogate (400 naming ``field``).

    Neither can be stored (PostgreSQL refuses NUL in text; a lone surrogate is not
    UTF-8), so both are refused at the boundary instead of failing in the database.
    """
    if "\x00" in value:
        raise MemoryValidationError(f"{field} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise MemoryValidationError(
            f"{field} contains a lone UTF-16 surrogate (not valid Unicode text)"
        ) from None
    return value


def parse_json(raw: bytes | str) -> Any:
    """Parse a request body: the one JSON boundary of every bot-facing endpoint.

    Refuses, with a 400 naming the place: malformed JSON, nesting deeper than
    ``MAX_JSON_DEPTH``, non-finite numbers (``NaN``, ``Infinity``, ``1e999``), integers
    beyond 64 bits, and NUL or lone surrogates in any string or key.
    """
    try:
        data = json.loads(raw)
    except RecursionError:
        raise MemoryValidationError(
            f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MemoryValidationError("malformed JSON body", details=str(exc)[:200]) from None
    stack: list[tuple[Any, str, int]] = [(data, "body", 0)]
    while stack:
        value, where, depth = stack.pop()
        if isinstance(value, str):
            check_text(value, where)
        elif isinstance(value, float) and not math.isfinite(value):
            raise MemoryValidationError(f"{where} is {value}: numbers must be finite")
        elif isinstance(value, int) and not -MAX_JSON_INT <= value <= MAX_JSON_INT:
            raise MemoryValidationError(f"{where} is out of range (at most 64-bit integers)")
        elif isinstance(value, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise MemoryValidationError(
                    f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels"
                )
            if isinstance(value, dict):
                for key, item in value.items():
                    check_text(key, f"a key in {where}")
                    stack.append((item, key if where == "body" else f"{where}.{key}", depth + 1))
            else:
                stack.extend((item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value))
    return data


def validate_agent_id(agent_id: Any, field: str = "agent_id") -> str:
    """Return ``agent_id`` if it is a valid Dakera agent id, else raise 400."""
    if not isinstance(agent_id, str) or not agent_id:
        raise MemoryValidationError(f"{field} is required and must be a string")
    if len(agent_id.encode()) > MAX_AGENT_ID_BYTES:
        raise MemoryValidationError(f"{field} is longer than {MAX_AGENT_ID_BYTES} bytes")
    if not AGENT_ID_RE.match(agent_id) or agent_id.startswith("_dakera_"):
        raise MemoryValidationError(
            f"invalid {field} {agent_id[:60]!r}: use letters, digits, '_', '.', '-' "
            "and start with a letter or digit"
        )
    return agent_id


def validate_namespace(name: Any) -> str:
    """Return ``name`` if it is a valid text namespace name, else raise 400."""
    if not isinstance(name, str) or not name:
        raise MemoryValidationError("namespace is required and must be a string")
    if len(name.encode()) > MAX_NAMESPACE_BYTES:
        raise MemoryValidationError(f"namespace is longer than {MAX_NAMESPACE_BYTES} bytes")
    if not AGENT_ID_RE.match(name) or name.startswith("_dakera_"):
        raise MemoryValidationError(
            f"invalid namespace {name[:60]!r}: use letters, digits, '_', '.', '-' "
            "and start with a letter or digit"
        )
    return name


def validate_bounded_int(value: Any, field: str, *, default: int, low: int, high: int) -> int:
    """An integer field in ``[low, high]`` (``default`` when absent), else 400."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise MemoryValidationError(f"{field} must be an integer from {low} to {high}")
    return value


def validate_content(content: Any) -> str:
    if not isinstance(content, str) or not content.strip():
        raise MemoryValidationError("content is required and must be a non-empty string")
    size = len(content.encode())
    if size > MAX_CONTENT_BYTES:
        raise MemoryPayloadTooLarge(
            f"content is {size} bytes; the limit is {MAX_CONTENT_BYTES} bytes",
            details="content",
        )
    return content


def validate_metadata(metadata: Any) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise MemoryValidationError("metadata must be an object")
    if len(metadata) > MAX_METADATA_KEYS:
        raise MemoryValidationError(
            f"metadata has {len(metadata)} keys; at most {MAX_METADATA_KEYS} are allowed"
        )
    return metadata


def validate_importance(importance: Any, field: str = "importance") -> float:
    if importance is None:
        return 0.5
    if isinstance(importance, bool) or not isinstance(importance, int | float):
        raise MemoryValidationError(f"{field} must be a number between 0 and 1")
    if not 0.0 <= float(importance) <= 1.0:
        raise MemoryValidationError(f"{field} must be between 0 and 1")
    return float(importance)


def validate_memory_type(memory_type: Any) -> str:
    if memory_type is None:
        return "episodic"
    if memory_type not in MEMORY_TYPES:
        raise MemoryValidationError(f"memory_type must be one of {', '.join(MEMORY_TYPES)}")
    return memory_type


def validate_tags(tags: Any) -> list[str]:
    if tags is None:
        return []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise MemoryValidationError("tags must be a list of strings")
    return tags


def validate_top_k(top_k: Any, default: int) -> int:
    if top_k is None:
        return default
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise MemoryValidationError("top_k must be a positive integer")
    if top_k > MAX_TOP_K:
        raise MemoryValidationError(f"top_k must be at most {MAX_TOP_K}")
    return top_k


def is_derived(memory: dict[str, Any]) -> bool:
    """True for memories a real server derives itself (hidden from people)."""
    tags = memory.get("tags") or []
    metadata = memory.get("metadata") or {}
    return "dakera-curated" in tags or "source_memory_id" in metadata


def is_auto_summary(memory: dict[str, Any]) -> bool:
    """True for session auto-summaries a real server adds when a session ends."""
    tags = memory.get("tags") or []
    metadata = memory.get("metadata") or {}
    return (
        "session-summary" in tags
        or "auto-summary" in tags
        or metadata.get("type") in {"session_summary", "auto_summary"}
        or bool(metadata.get("auto_summary"))
    )


class MemoryStore(Protocol):
    """What the console needs from a memory server; every method returns wire dicts."""

    def start_session(
        self,
        *,
        agent_id: str,
        metadata: dict[str, Any] | None = None,
        idle_timeout_secs: int | None = None,
    ) -> dict[str, Any]: ...

    def end_session(self, *, session_id: str, summary: str | None = None) -> dict[str, Any]: ...

    def get_session(self, *, session_id: str) -> dict[str, Any]: ...

    def list_sessions(
        self,
        *,
        agent_id: str | None = None,
        active_only: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> dict[str, Any]: ...

    def session_memories(
        self, *, session_id: str, limit: int = 50, offset: int = 0
    ) -> dict[str, Any]: ...

    def touch_session(self, *, session_id: str) -> dict[str, Any]: ...

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
    ) -> dict[str, Any]: ...

    def recall(self, *, agent_id: str, query: str, **filters: Any) -> dict[str, Any]: ...

    def search(self, *, agent_id: str, query: str, **filters: Any) -> dict[str, Any]: ...

    def get_memory(self, *, agent_id: str | None, memory_id: str) -> dict[str, Any]: ...

    def forget(self, *, agent_id: str, memory_ids: list[str]) -> dict[str, Any]: ...
