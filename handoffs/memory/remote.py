"""The remote memory store: the ``MemoryStore`` interface over httpx against a real Dakera.

Selected by ``get_store()`` when ``settings.DAKERA_URL`` is set. Every method returns the
same wire-shaped dictionaries as ``EmbeddedStore`` (``docs/memory-api.md``), so the
code above the interface never knows which one is in use.

Transport
    One pooled ``httpx.Client`` per process (created lazily under a lock, re-created
    after a fork), explicit connect / read timeouts from settings, ``Authorization:
    Bearer <DAKERA_API_KEY>``. Nothing calls the store from async code (the consumers
    touch only the database), so there is no AsyncClient.

Retries (the Dakera SDK's rules)
    * a failed connect (nothing reached the server): every call;
    * 429 / 503: every call, waiting for ``Retry-After`` when it is at most
      ``DAKERA_RETRY_AFTER_CAP`` seconds; a longer one is raised at once with
      ``retry_after`` set, so the caller (the outbox) backs off instead of a request
      thread sleeping;
    * another 5xx, a read timeout, a dropped connection: only calls that can't write
      twice (GETs, recall, search). A store, batch, start, end, touch or forget that may
      have reached the server is never repeated here.

Errors
    Statuses map to the console's own exceptions (``base.py``) with the server's
    ``code``, ``details``, ``resource`` and ``Retry-After``; an unreachable or silent
    server is ``MemoryUnavailable``. After such a failure, calls fail at once for
    ``DAKERA_FAIL_FAST_SECS`` so pages don't wait on the same timeout again and again.

Results for people
    ``search`` (what the console uses to browse: recall raises importance on a real
    server) drops derived memories (``is_derived``) and keeps session auto-summaries
    apart, under ``"summaries"``. Recall and search hits are normalised to the embedded
    shape ``{"memories": [{"memory": {...}, "score", ...}]}``.
"""

from __future__ import annotations

import email.utils
import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from django.conf import settings

from .base import (
    MAX_TOP_K,
    MemoryAuthError,
    MemoryConflict,
    MemoryError,
    MemoryForbidden,
    MemoryNotFound,
    MemoryPayloadTooLarge,
    MemoryRateLimited,
    MemoryUnavailable,
    MemoryValidationError,
    is_auto_summary,
    is_derived,
    validate_top_k,
)

logger = logging.getLogger(__name__)

USER_AGENT = "handoff-console/remote-memory"
#: Keys of a recall/search hit that describe the hit, not the memory.
RESULT_ENVELOPE_KEYS = (
    "score",
    "weighted_score",
    "smart_score",
    "rank_score",
    "vector_score",
    "text_score",
    "depth",
    "matched_text",
    "matched_ids",
    "retrieval",
    "context_of",
)
#: Extra hits asked of ``search`` so that hiding derived memories still fills ``top_k``.
SEARCH_OVERFETCH = 20
BACKOFF_BASE, BACKOFF_MAX = 0.2, 2.0

STATUS_ERRORS: dict[int, type[MemoryError]] = {
    400: MemoryValidationError,
    401: MemoryAuthError,
    403: MemoryForbidden,
    404: MemoryNotFound,
    409: MemoryConflict,
    413: MemoryPayloadTooLarge,
    422: MemoryValidationError,
    429: MemoryRateLimited,
}

# ---------------------------------------------------------------- the pooled client
_client: httpx.Client | None = None
_client_pid: int | None = None
_client_lock = threading.Lock()


def get_client() -> httpx.Client:
    """The process's pooled client (thread-safe; a forked child makes its own)."""
    global _client, _client_pid
    pid = os.getpid()
    client = _client
    if client is not None and _client_pid == pid:
        return client
    with _client_lock:
        if _client is None or _client_pid != pid:
            _client = httpx.Client(
                headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
                limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
                timeout=httpx.Timeout(10.0, connect=2.0),
                follow_redirects=False,
                trust_env=False,
            )
            _client_pid = pid
        return _client


def close_client() -> None:
    """Close the pooled client (the next call makes a new one)."""
    global _client, _client_pid
    with _client_lock:
        if _client is not None and _client_pid == os.getpid():
            _client.close()
        _client, _client_pid = None, None


# ---------------------------------------------------------------- helpers
def is_retry_safe(method: str, path: str) -> bool:
    """Whether repeating the call after it may have reached the server is harmless."""
    if method.upper() in {"GET", "HEAD"}:
        return True
    return method.upper() == "POST" and path in {"/v1/memory/recall", "/v1/memory/search"}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value.strip()).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - time.time())


def redact_url(url: str) -> str:
    """``url`` without any user:password part (safe to log and show)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def error_from_response(response: httpx.Response) -> MemoryError:
    """The console's exception for a Dakera error answer (JSON body or plain text)."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    code = details = resource = None
    if isinstance(body, dict):
        message = body.get("error")
        if message == "authentication_error" and body.get("message"):
            message = body["message"]  # the 401 shape: {"error": "authentication_error", ...}
        message = str(message or body.get("message") or response.reason_phrase)
        code = body.get("code")
        if body.get("details") is not None:
            details = str(body["details"])[:2000]
        if body.get("resource") is not None:
            resource = str(body["resource"])
    else:
        message = response.text.strip()[:500] or response.reason_phrase or f"HTTP {status}"
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    cls = STATUS_ERRORS.get(status)
    if cls is None:
        cls = MemoryUnavailable if status >= 500 else MemoryError
    error = cls(
        message,
        code=str(code) if code else None,
        details=details,
        resource=resource,
        retry_after=math.ceil(retry_after) if retry_after is not None else None,
    )
    if cls is MemoryError:
        error.status = status
    if not code and (cls is MemoryError or (status >= 500 and status != 503)):
        error.code = f"HTTP_{status}"  # say what the server (or a proxy) answered
    return error


def _compact(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None}


def _segment(value: str) -> str:
    if not isinstance(value, str) or not value:
        raise MemoryValidationError("ids must be non-empty strings")
    return quote(value, safe=":")


def normalise_hit(item: dict[str, Any]) -> dict[str, Any]:
    """A recall/search hit in the embedded shape: ``{"memory": {...}, "score", ...}``.

    Servers (and SDK versions) send either that envelope or a flat memory with the
    scores next to its fields; both come out nested, with every score present.
    """
    if isinstance(item.get("memory"), dict):
        hit = {key: value for key, value in item.items() if key != "memory"}
        hit["memory"] = dict(item["memory"])
    else:
        hit = {key: item[key] for key in RESULT_ENVELOPE_KEYS if key in item}
        hit["memory"] = {k: v for k, v in item.items() if k not in RESULT_ENVELOPE_KEYS}
    score = hit.get("score", hit.get("rank_score", 0.0))
    hit["score"] = score
    for key in ("weighted_score", "smart_score", "rank_score"):
        hit.setdefault(key, score)
    return hit


def _hits(body: Any, key: str = "memories") -> list[dict[str, Any]]:
    items = body.get(key) if isinstance(body, dict) else body
    if not isinstance(items, list):
        return []
    return [normalise_hit(item) for item in items if isinstance(item, dict)]


def _memory(body: Any) -> dict[str, Any]:
    """A memory object whether the server wrapped it (``{"memory": {...}}``) or not."""
    if isinstance(body, dict) and isinstance(body.get("memory"), dict):
        return body["memory"]
    return body


def _session(body: Any) -> dict[str, Any]:
    if isinstance(body, dict) and isinstance(body.get("session"), dict):
        return body["session"]
    return body


# ---------------------------------------------------------------- the store
class RemoteStore:
    """Memory operations on a Dakera server. Arguments left ``None`` follow settings."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        client: httpx.Client | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_retries: int | None = None,
        retry_after_cap: float | None = None,
        fail_fast_secs: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._base_url = base_url
        self._api_key = api_key
        self._client = client
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_retries = max_retries
        self._retry_after_cap = retry_after_cap
        self._fail_fast_secs = fail_fast_secs
        self._sleep = sleep
        self._down_until = 0.0
        self._down_reason = ""

    # ------------------------------------------------------------ configuration
    def _setting(self, own: Any, name: str) -> Any:
        return own if own is not None else getattr(settings, name)

    @property
    def base_url(self) -> str:
        return str(self._setting(self._base_url, "DAKERA_URL") or "").rstrip("/")

    @property
    def api_key(self) -> str:
        return str(self._setting(self._api_key, "DAKERA_API_KEY") or "")

    def _timeout(self) -> httpx.Timeout:
        connect = float(self._setting(self._connect_timeout, "DAKERA_CONNECT_TIMEOUT"))
        read = float(self._setting(self._read_timeout, "DAKERA_READ_TIMEOUT"))
        return httpx.Timeout(read, connect=connect, pool=connect)

    def _http(self) -> httpx.Client:
        return self._client if self._client is not None else get_client()

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def __repr__(self) -> str:  # never the key
        return f"RemoteStore(base_url={redact_url(self.base_url)!r})"

    # ------------------------------------------------------------ one call, with retries
    def _backoff(self, attempt: int) -> float:
        return min(BACKOFF_MAX, BACKOFF_BASE * 2**attempt) * random.uniform(0.5, 1.5)

    def _fail_fast(self) -> float:
        return float(self._setting(self._fail_fast_secs, "DAKERA_FAIL_FAST_SECS"))

    def _unavailable(self, message: str, exc: Exception) -> MemoryUnavailable:
        fail_fast = self._fail_fast()
        if fail_fast > 0:
            self._down_until = time.monotonic() + fail_fast
            self._down_reason = message
        code = "TIMEOUT" if isinstance(exc, httpx.TimeoutException) else "SERVICE_UNAVAILABLE"
        return MemoryUnavailable(
            message, code=code, details=f"{exc.__class__.__name__}: {exc}"[:500]
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """Send one call (retrying as Dakera's rules allow) and return its JSON body."""
        base = self.base_url
        if not base:
            raise MemoryUnavailable("DAKERA_URL is not set", code="NOT_CONFIGURED")
        remaining = self._down_until - time.monotonic()
        if remaining > 0 and self._fail_fast() > 0:
            raise MemoryUnavailable(
                f"{self._down_reason}; next try in {math.ceil(remaining)} s",
                retry_after=math.ceil(remaining),
            )
        safe = is_retry_safe(method, path)
        retries = max(0, int(self._setting(self._max_retries, "DAKERA_MAX_RETRIES")))
        cap = float(self._setting(self._retry_after_cap, "DAKERA_RETRY_AFTER_CAP"))
        timeout = self._timeout()
        for attempt in range(retries + 1):
            last = attempt == retries
            try:
                response = self._http().request(
                    method,
                    base + path,
                    json=json,
                    params=params,
                    headers=self._headers(),
                    timeout=timeout,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # Nothing reached the server: repeating is safe for every call.
                if last:
                    raise self._unavailable("the memory server can't be reached", exc) from exc
                logger.info("memory server %s %s: %r, retrying", method, path, exc)
                self._sleep(self._backoff(attempt))
                continue
            except httpx.TimeoutException as exc:
                if last or not safe:
                    raise self._unavailable(
                        f"the memory server did not answer within {timeout.read:g} s", exc
                    ) from exc
                logger.info("memory server %s %s: %r, retrying", method, path, exc)
                self._sleep(self._backoff(attempt))
                continue
            except httpx.TransportError as exc:  # dropped connection, protocol error
                if last or not safe:
                    raise self._unavailable(
                        "the connection to the memory server failed", exc
                    ) from exc
                logger.info("memory server %s %s: %r, retrying", method, path, exc)
                self._sleep(self._backoff(attempt))
                continue

            self._down_until = 0.0
            if response.status_code < 400:
                try:
                    return response.json()
                except ValueError:
                    raise MemoryUnavailable(
                        f"the memory server answered {method} {path} with a non-JSON body",
                        code="INVALID_RESPONSE",
                    ) from None
            error = error_from_response(response)
            if response.status_code in {429, 503}:
                wait = parse_retry_after(response.headers.get("Retry-After"))
                if last or (wait is not None and wait > cap):
                    raise error
                logger.info("memory server %s %s: %s, retrying", method, path, response.status_code)
                self._sleep(wait if wait is not None else self._backoff(attempt))
                continue
            if response.status_code >= 500 and safe and not last:
                logger.info("memory server %s %s: %s, retrying", method, path, response.status_code)
                self._sleep(self._backoff(attempt))
                continue
            raise error
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------ sessions
    def start_session(
        self,
        *,
        agent_id: str,
        metadata: dict[str, Any] | None = None,
        idle_timeout_secs: int | None = None,
    ) -> dict[str, Any]:
        body = self._request(
            "POST",
            "/v1/sessions/start",
            json=_compact(
                {"agent_id": agent_id, "metadata": metadata, "idle_timeout_secs": idle_timeout_secs}
            ),
        )
        return {"session": _session(body)}

    def end_session(self, *, session_id: str, summary: str | None = None) -> dict[str, Any]:
        body = self._request(
            "POST", f"/v1/sessions/{_segment(session_id)}/end", json=_compact({"summary": summary})
        )
        return {"memory_count": body.get("memory_count", 0), "session": body.get("session")}

    def get_session(self, *, session_id: str) -> dict[str, Any]:
        return _session(self._request("GET", f"/v1/sessions/{_segment(session_id)}"))

    def list_sessions(
        self,
        *,
        agent_id: str | None = None,
        active_only: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if agent_id is not None:
            params["agent_id"] = agent_id
        if active_only:
            params["active_only"] = "true"
        body = self._request("GET", "/v1/sessions", params=params)
        sessions = body.get("sessions", []) if isinstance(body, dict) else body
        total = body.get("total", len(sessions)) if isinstance(body, dict) else len(sessions)
        return {"sessions": sessions, "total": total}

    def session_memories(
        self, *, session_id: str, limit: int = 50, offset: int = 0
    ) -> dict[str, Any]:
        body = self._request(
            "GET",
            f"/v1/sessions/{_segment(session_id)}/memories",
            params={"limit": limit, "offset": offset},
        )
        memories = body.get("memories", [])
        return {
            "session": body.get("session"),
            "memories": memories,
            "total": body.get("total", len(memories)),
        }

    def touch_session(self, *, session_id: str) -> dict[str, Any]:
        body = self._request("POST", f"/v1/sessions/{_segment(session_id)}/touch")
        session = body.get("session") or {}
        state = body.get("session_state") or ("ended" if session.get("ended_at") else "active")
        return {
            "session": session,
            "session_state": state,
            "idle_deadline_at": body.get("idle_deadline_at"),
        }

    # ------------------------------------------------------------ memories
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
        """Store one memory. ``session_state == "ended"`` means the server had ended the
        session by itself (idle): the memory is stored; the caller starts a fresh session."""
        body = self._request(
            "POST",
            "/v1/memory/store",
            json=_compact(
                {
                    "agent_id": agent_id,
                    "content": content,
                    "memory_type": memory_type,
                    "importance": importance,
                    "metadata": metadata,
                    "session_id": session_id,
                    "tags": tags,
                    "ttl_seconds": ttl_seconds,
                    "expires_at": expires_at,
                }
            ),
        )
        if isinstance(body, dict) and isinstance(body.get("memory"), dict):
            result = dict(body)
        else:  # a flat memory with the store fields beside it
            extra = ("session_state", "embedding_time_ms")
            result = {key: body[key] for key in extra if key in body}
            result["memory"] = {k: v for k, v in body.items() if k not in extra}
        if not result.get("session_state"):
            result["session_state"] = "active"
        result.setdefault("embedding_time_ms", 0)
        return result

    def store_batch(self, *, agent_id: str, memories: list[dict[str, Any]]) -> dict[str, Any]:
        body = self._request(
            "POST", "/v1/memories/store/batch", json={"agent_id": agent_id, "memories": memories}
        )
        stored = body.get("stored", [])
        return {
            **body,
            "stored": stored,
            "stored_count": body.get("stored_count", len(stored)),
        }

    def recall(
        self, *, agent_id: str, query: str, top_k: int | None = None, **filters: Any
    ) -> dict[str, Any]:
        """Recall as a bot would (a real server raises the importance of what it returns;
        people browse with ``search``). Inline neighbourhood items move to
        ``context_memories`` so ``memories`` holds the ranked hits only."""
        body = self._request(
            "POST",
            "/v1/memory/recall",
            json=_compact({"agent_id": agent_id, "query": query, "top_k": top_k, **filters}),
        )
        hits = _hits(body)
        ranked = [hit for hit in hits if hit.get("retrieval") != "neighborhood"]
        inline = [hit for hit in hits if hit.get("retrieval") == "neighborhood"]
        result: dict[str, Any] = {
            key: value
            for key, value in (body if isinstance(body, dict) else {}).items()
            if key not in {"memories", "context_memories", "associated_memories"}
        }
        result["memories"] = ranked
        result.setdefault("query_embedding_time_ms", 0)
        result.setdefault("search_time_ms", 0)
        context = _hits(body, "context_memories") + inline
        if context or filters.get("neighborhood_mode") == "separate":
            result["context_memories"] = context
        return result

    def search(
        self,
        *,
        agent_id: str,
        query: str,
        top_k: int | None = None,
        people_only: bool = True,
        **filters: Any,
    ) -> dict[str, Any]:
        """Read-only search. For people (the default) derived memories are dropped and
        session auto-summaries are moved to ``"summaries"``, apart from the hits."""
        wanted = validate_top_k(top_k, 10)
        asked = min(wanted + SEARCH_OVERFETCH, MAX_TOP_K) if people_only else wanted
        body = self._request(
            "POST",
            "/v1/memory/search",
            json=_compact({"agent_id": agent_id, "query": query, "top_k": asked, **filters}),
        )
        hits = _hits(body)
        if not people_only:
            total = body.get("total_count", len(hits)) if isinstance(body, dict) else len(hits)
            return {"memories": hits, "total_count": total}
        visible = [h for h in hits if not is_derived(h["memory"])]
        summaries = [h for h in visible if is_auto_summary(h["memory"])]
        shown = [h for h in visible if not is_auto_summary(h["memory"])][:wanted]
        return {"memories": shown, "total_count": len(shown), "summaries": summaries}

    def get_memory(self, *, agent_id: str | None, memory_id: str) -> dict[str, Any]:
        params = {"agent_id": agent_id} if agent_id is not None else None
        return _memory(self._request("GET", f"/v1/memory/get/{_segment(memory_id)}", params=params))

    def forget(self, *, agent_id: str, memory_ids: list[str]) -> dict[str, Any]:
        body = self._request(
            "POST", "/v1/memory/forget", json={"agent_id": agent_id, "memory_ids": memory_ids}
        )
        return {"deleted_count": body.get("deleted_count", 0)}

    # ------------------------------------------------------------ health
    def check(self) -> dict[str, Any]:
        """Whether the server answers ``/health`` and accepts the key (one try each).

        Returns ``{"ok", "mode", "url", "reachable", "healthy", "server_status",
        "key_accepted", "reason"}``; ``reason`` is empty when ``ok``. Never raises and
        never contains the key.
        """
        base = self.base_url
        report: dict[str, Any] = {
            "ok": False,
            "mode": "remote",
            "url": redact_url(base) if base else "",
            "reachable": False,
            "healthy": False,
            "server_status": None,
            "key_accepted": False,
            "reason": "",
        }
        if not base:
            report["reason"] = "DAKERA_URL is not set"
            return report
        timeout = self._timeout()
        try:
            health = self._http().get(
                base + "/health", headers={"User-Agent": USER_AGENT}, timeout=timeout
            )
        except httpx.TimeoutException as exc:
            report["reason"] = (
                f"the memory server did not answer /health in time ({exc.__class__.__name__})"
            )
            return report
        except httpx.TransportError as exc:
            report["reason"] = f"the memory server can't be reached ({exc.__class__.__name__})"
            return report
        report["reachable"] = True
        try:
            body = health.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            report["server_status"] = body.get("status")
        report["healthy"] = health.status_code == 200
        reasons = []
        if not report["healthy"]:
            reasons.append(f"GET /health answered {health.status_code}")
        if not self.api_key:
            reasons.append("DAKERA_API_KEY is not set")
        else:
            try:
                probe = self._http().get(
                    base + "/v1/sessions",
                    params={"limit": 1},
                    headers=self._headers(),
                    timeout=timeout,
                )
            except httpx.HTTPError as exc:
                reasons.append(f"GET /v1/sessions failed ({exc.__class__.__name__})")
            else:
                if probe.status_code == 200:
                    report["key_accepted"] = True
                elif probe.status_code in {401, 403}:
                    error = error_from_response(probe)
                    reasons.append(
                        f"the API key was refused ({probe.status_code} {error.code}: "
                        f"{error.message})"
                    )
                else:
                    reasons.append(f"GET /v1/sessions answered {probe.status_code}")
        report["ok"] = report["healthy"] and report["key_accepted"]
        report["reason"] = "; ".join(reasons)
        if report["ok"]:
            self._down_until = 0.0
        return report


_store: RemoteStore | None = None
_store_lock = threading.Lock()


def get_remote_store() -> RemoteStore:
    """The process-wide remote store (it reads DAKERA_* settings at each call)."""
    global _store
    if _store is None:
        with _store_lock:
            if _store is None:
                _store = RemoteStore()
    return _store
