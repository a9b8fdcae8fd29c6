"""The OpenAPI 3.1 description of everything a bot calls: the memory API, the handoff and
conversation API, and the webhooks the console sends.

Served at ``/api/schema/`` and rendered at ``/api/docs/`` (Swagger UI from the
``drf-spectacular-sidecar`` package, nothing from a CDN). It describes the validation
the views do (``memory.base`` validators behind ``memory.http``'s one JSON boundary); a
test checks that every ``/v1/`` and ``/api/`` route is in it, and Schemathesis fuzzes
every operation against a live console on SQLite and PostgreSQL (tests/api/).
"""

from __future__ import annotations

from typing import Any

from ..lifecycle.attachments import ACCEPTED, max_bytes
from ..lifecycle.messages import max_message_chars
from ..memory.base import (
    MAX_AGENT_ID_BYTES,
    MAX_BATCH,
    MAX_CONTENT_BYTES,
    MAX_JSON_DEPTH,
    MAX_METADATA_KEYS,
    MAX_TOP_K,
    MEMORY_TYPES,
)

JSON = "application/json"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def body(schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"description": description or "OK", "content": {JSON: {"schema": schema}}}


ERRORS = {
    "400": body(ref("Error"), "Invalid request: the message names the field"),
    "401": body(ref("AuthError"), "Missing, wrong or revoked API key"),
    "403": body(ref("Error"), "The key's scope or namespace allowlist does not cover this"),
    "404": body(ref("Error"), "Unknown resource (or one that belongs to another bot)"),
    "405": body(ref("Error"), "Method not allowed (see the Allow header)"),
    "413": body(ref("Error"), "Payload too large"),
    "429": body(ref("Error"), "Too many wrong keys from this address (see Retry-After)"),
    "503": body(ref("Error"), "The database or the memory server is unavailable"),
}


def errors(*extra: str) -> dict[str, Any]:
    codes = ["400", "401", "403", "404", "405", "413", "429", "503", *extra]
    responses = {code: ERRORS[code] for code in codes if code in ERRORS}
    for code in extra:
        responses.setdefault(code, body(ref("Error"), "See the error code"))
    return responses


def operation(
    summary: str,
    response: dict[str, Any],
    *,
    request: dict[str, Any] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    status: str = "200",
    extra_statuses: tuple[str, ...] = (),
    tag: str = "memory",
    more: dict[str, Any] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "security": [{"bearer": []}, {"apiKey": []}],
        "responses": {status: body(response), **(more or {}), **errors(*extra_statuses)},
    }
    if request is not None:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": request}}}
    if parameters:
        op["parameters"] = parameters
    return op


def path_param(name: str, description: str, fmt: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "minLength": 1}
    if fmt:
        schema["format"] = fmt
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema,
        "description": description,
    }


def query_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


TEXT = {"type": "string", "description": "Unicode text without NUL characters"}
AGENT_ID = {
    "type": "string",
    "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
    "minLength": 1,
    "maxLength": MAX_AGENT_ID_BYTES,
    "description": "The customer's namespace (Dakera agent id)",
}
METADATA = {
    "type": "object",
    "maxProperties": MAX_METADATA_KEYS,
    "description": f"Free-form JSON, nested at most {MAX_JSON_DEPTH} levels, finite numbers",
}
TIMESTAMP = {"type": ["integer", "null"], "description": "Unix seconds"}
LIMIT = query_param("limit", {"type": "integer", "minimum": 0, "maximum": 1000}, "Page size")
OFFSET = query_param("offset", {"type": "integer", "minimum": 0}, "Rows to skip")

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "code"],
        "properties": {
            "error": {"type": "string"},
            "code": {"type": "string", "pattern": "^[A-Z_]+$"},
            "details": {"type": "string"},
            "resource": {"type": "string"},
        },
    },
    "AuthError": {
        "type": "object",
        "required": ["error", "code"],
        "properties": {
            "error": {"type": "string"},
            "message": {"type": "string"},
            "code": {"type": "string"},
        },
    },
    "Session": {
        "type": "object",
        "required": ["id", "agent_id", "started_at", "metadata", "memory_count"],
        "properties": {
            "id": {"type": "string"},
            "agent_id": {"type": "string"},
            "started_at": TIMESTAMP,
            "last_activity_at": TIMESTAMP,
            "metadata": {"type": "object"},
            "memory_count": {"type": "integer"},
            "ended_at": TIMESTAMP,
            "summary": {"type": ["string", "null"]},
            "ended_reason": {"type": ["string", "null"]},
        },
    },
    "Memory": {
        "type": "object",
        "required": ["id", "content", "agent_id", "importance", "tags", "metadata"],
        "properties": {
            "id": {"type": "string"},
            "memory_type": {"type": "string", "enum": list(MEMORY_TYPES)},
            "content": {"type": "string"},
            "agent_id": {"type": "string"},
            "session_id": {"type": ["string", "null"]},
            "importance": {"type": "number"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "metadata": {"type": "object"},
            "created_at": TIMESTAMP,
            "last_accessed_at": TIMESTAMP,
            "access_count": {"type": "integer"},
            "expires_at": TIMESTAMP,
        },
    },
    "Hit": {
        "type": "object",
        "required": ["memory", "score"],
        "properties": {
            "memory": ref("Memory"),
            "score": {"type": "number"},
            "weighted_score": {"type": "number"},
            "smart_score": {"type": "number"},
            "rank_score": {"type": "number"},
        },
    },
    "MemoryInput": {
        "type": "object",
        "required": ["content"],
        "properties": {
            "content": {
                **TEXT,
                "minLength": 1,
                "description": f"At most {MAX_CONTENT_BYTES} bytes",
            },
            "memory_type": {"type": "string", "enum": list(MEMORY_TYPES)},
            "importance": {"type": "number", "minimum": 0, "maximum": 1},
            "metadata": METADATA,
            "session_id": {"type": "string"},
            "tags": {"type": "array", "items": TEXT},
            "ttl_seconds": {"type": "integer", "minimum": 1, "maximum": 3_153_600_000},
            "expires_at": {"type": "integer", "minimum": 0, "maximum": 253_402_300_799},
        },
    },
    "Handoff": {
        "type": "object",
        "required": ["id", "customer", "status", "summary", "sentiment", "urgency"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "customer": {"type": "string"},
            "customer_name": {"type": "string"},
            "source_session_id": {"type": "string"},
            "from_agent": {"type": "string"},
            "to_agent": {"type": "string"},
            "team": {"type": ["string", "null"]},
            "misrouted": {"type": "boolean"},
            "status": {
                "type": "string",
                "enum": [
                    "waiting",
                    "accepted",
                    "resolved",
                    "transferred",
                    "handed_back",
                    "bot_hop",
                ],
            },
            "summary": {"type": "string"},
            "reason": {"type": "string"},
            "importance": {"type": "number"},
            "sentiment": {"type": "string"},
            "sentiment_source": {"type": "string"},
            "urgency": {"type": "string"},
            "urgency_source": {"type": "string"},
            "chain_id": {"type": "string"},
            "hop_index": {"type": "integer"},
            "memory_id": {"type": ["string", "null"]},
            "accepted_by": {"type": ["string", "null"]},
            "created_at": {"type": "string"},
            "accepted_at": {"type": ["string", "null"]},
            "conversation": {"oneOf": [ref("Conversation"), {"type": "null"}]},
            "required_skills": {"type": "array", "items": {"type": "string"}},
            "offered_to": {"type": ["string", "null"]},
        },
    },
    "Conversation": {
        "type": "object",
        "required": ["id", "customer_url", "bot_muted", "closed", "last_seq"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "channel": {"type": "string", "enum": ["web", "api"]},
            "customer_url": {"type": "string"},
            "bot_muted": {"type": "boolean"},
            "closed": {"type": "boolean"},
            "last_seq": {"type": "integer"},
        },
    },
    "Message": {
        "type": "object",
        "required": ["seq", "client_id", "sender", "body", "created_at"],
        "properties": {
            "seq": {"type": "integer"},
            "client_id": {"type": "string"},
            "sender": {"type": "string", "enum": ["customer", "agent", "bot", "system"]},
            "author": {"type": "string"},
            "author_name": {"type": "string"},
            "body": {
                "type": "string",
                "description": "The text (a file's caption: may be empty when attachment is set)",
            },
            "created_at": {"type": "string"},
            "attachment": {"oneOf": [ref("Attachment"), {"type": "null"}]},
        },
    },
    "Attachment": {
        "type": "object",
        "description": (
            "A file sent in the chat. url and thumbnail_url are signed links anyone holding "
            "them may open until url_expires_at (ATTACHMENT_LINK_MAX_AGE seconds), then they "
            "answer 403; api_url works with the bot's key for as long as the conversation "
            "is the bot's."
        ),
        "required": ["id", "kind", "name", "content_type", "size", "url", "api_url"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "kind": {"type": "string", "enum": ["image", "pdf"]},
            "name": {"type": "string", "description": "File name; its extension is the content's"},
            "content_type": {
                "type": "string",
                "enum": ["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"],
            },
            "size": {"type": "integer", "description": "Bytes, as stored"},
            "width": {"type": ["integer", "null"]},
            "height": {"type": ["integer", "null"]},
            "url": {"type": "string", "format": "uri"},
            "thumbnail_url": {"type": ["string", "null"], "format": "uri"},
            "url_expires_at": {"type": "string", "format": "date-time"},
            "api_url": {"type": "string", "format": "uri"},
        },
    },
    "WebhookEvent": {
        "type": "object",
        "description": (
            "POSTed to the bot's callback URL with X-Handoff-Event, X-Handoff-Delivery and "
            "X-Handoff-Signature: t=<unix>,v1=<hex>, v1 = HMAC-SHA256(webhook_secret, "
            "'<t>.' + body)."
        ),
        "required": ["event", "conversation_id", "customer", "sent_at"],
        "properties": {
            "event": {
                "type": "string",
                "enum": [
                    "agent.joined",
                    "message.created",
                    "conversation.resolved",
                    "conversation.transferred",
                    "conversation.handed_back",
                ],
            },
            "conversation_id": {"type": "string", "format": "uuid"},
            "customer": {"type": "string"},
            "sent_at": {"type": "string"},
            "message": ref("Message"),
        },
    },
}

RECALL_REQUEST = {
    "type": "object",
    "required": ["agent_id", "query"],
    "properties": {
        "agent_id": AGENT_ID,
        "query": TEXT,
        "top_k": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K},
        "session_id": {"type": "string"},
        "tags": {"type": "array", "items": TEXT},
        "memory_type": {"type": "string", "enum": list(MEMORY_TYPES)},
        "min_importance": {"type": "number", "minimum": 0, "maximum": 1},
        "since": {"type": "string", "description": "ISO-8601"},
        "until": {"type": "string", "description": "ISO-8601"},
    },
}
SESSION_ID = path_param("session_id", "A session id from /v1/sessions/start")
HANDOFF_PARAMS = {
    "customer": AGENT_ID,
    "source_session_id": {"type": "string", "maxLength": 64},
    "from_agent": {**TEXT, "minLength": 1, "maxLength": 241},
    "to_agent": {
        **TEXT,
        "minLength": 1,
        "maxLength": 241,
        "description": "A team slug, a registered bot's name, or human:<username>",
    },
    "summary": {**TEXT, "minLength": 1},
    "sentiment": {
        "description": "positive, neutral, frustrated, angry, or a score from -1 to 1",
        "oneOf": [
            {"type": "string", "enum": ["positive", "neutral", "frustrated", "angry"]},
            {"type": "number", "minimum": -1, "maximum": 1},
        ],
    },
    "urgency": {"type": "string", "enum": ["low", "normal", "high", "critical"]},
    "reason": {**TEXT, "maxLength": 500},
    "customer_name": {**TEXT, "maxLength": 200},
    "importance": {"type": "number", "minimum": 0, "maximum": 1},
    "channel": {
        "type": "string",
        "enum": ["web", "api"],
        "description": "web: the console's chat link; api: the bot relays (default by callback)",
    },
    "skills": {
        "type": "array",
        "maxItems": 10,
        "items": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,39}$"},
        "description": 'Skills the receiving agent needs (offer routing), e.g. ["refunds"]',
    },
    "language": {
        "type": "string",
        "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,39}$",
        "description": "The customer's language code, e.g. de: a required skill",
    },
}

BATCH_FILTER = {
    "type": "object",
    "properties": {
        "tags": {"type": "array", "items": TEXT},
        "min_importance": {"type": "number"},
        "max_importance": {"type": "number"},
        "created_after": {"type": "integer"},
        "created_before": {"type": "integer"},
        "memory_type": {"type": "string", "enum": list(MEMORY_TYPES)},
        "session_id": {"type": "string"},
    },
    "additionalProperties": False,
}
NAMESPACE = {"type": "string", "minLength": 1, "maxLength": 200}
NS = path_param("namespace", "A text namespace")
UPSERT = operation(
    "Add or replace text documents (creates the namespace)",
    {"type": "object", "required": ["upserted_count"]},
    request={
        "type": "object",
        "required": ["documents"],
        "properties": {
            "documents": {
                "type": "array",
                "minItems": 1,
                "maxItems": 1000,
                "items": {
                    "type": "object",
                    "required": ["id"],
                    "properties": {
                        "id": {"type": "string", "minLength": 1, "maxLength": 255},
                        "text": TEXT,
                        "content": TEXT,
                        "metadata": METADATA,
                        "ttl_seconds": {"type": "integer", "minimum": 1},
                    },
                },
            },
            "model": {"type": "string"},
        },
    },
    parameters=[NS],
    tag="namespaces",
)
DELETE_IDS = operation(
    "Delete documents by id",
    {"type": "object", "required": ["deleted_count"]},
    request={
        "type": "object",
        "required": ["ids"],
        "properties": {"ids": {"type": "array", "items": {"type": "string"}}},
    },
    parameters=[NS],
    tag="namespaces",
)


def exported(op: dict[str, Any]) -> dict[str, Any]:
    """The export answers the file itself, in the format asked for."""
    op["responses"]["200"] = {
        "description": "The file",
        "content": {
            "application/x-ndjson": {},
            "text/csv": {},
            JSON: {"schema": {"description": "mem0 / zep formats"}},
        },
    }
    return op


def text_query(summary: str, field: str) -> dict[str, Any]:
    return operation(
        summary,
        {"type": "object", "required": ["results"]},
        request={
            "type": "object",
            "required": [field],
            "properties": {
                field: TEXT,
                "top_k": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K},
                "filter": {"type": "object"},
                "include_text": {"type": "boolean"},
                "vector_weight": {"type": "number", "minimum": 0, "maximum": 1},
            },
        },
        parameters=[NS],
        tag="namespaces",
        extra_statuses=("501",),
    )


PATHS: dict[str, Any] = {
    "/health": {
        "get": {
            "summary": "Liveness and mode (no key)",
            "tags": ["health"],
            "security": [],
            "responses": {"200": body({"type": "object"}), "405": ERRORS["405"]},
        }
    },
    "/health/live": {
        "get": {
            "summary": "The process answers (no key)",
            "tags": ["health"],
            "security": [],
            "responses": {"200": body({"type": "object"}), "405": ERRORS["405"]},
        }
    },
    "/health/ready": {
        "get": {
            "summary": "The database (and in remote mode the memory server) answers (no key)",
            "tags": ["health"],
            "security": [],
            "responses": {
                "200": body({"type": "object"}),
                "405": ERRORS["405"],
                "503": body({"type": "object"}, "Not ready (see Retry-After)"),
            },
        }
    },
    "/api/schema/": {
        "get": {
            "summary": "This document (no key)",
            "tags": ["health"],
            "security": [],
            "responses": {"200": body({"type": "object"}), "405": ERRORS["405"]},
        }
    },
    "/api/docs/": {
        "get": {
            "summary": "This document rendered by Swagger UI (no key)",
            "tags": ["health"],
            "security": [],
            "responses": {
                "200": {"description": "HTML", "content": {"text/html": {}}},
                "405": ERRORS["405"],
            },
        }
    },
    "/v1/sessions/start": {
        "post": operation(
            "Start a memory session in a namespace",
            {"type": "object", "required": ["session"], "properties": {"session": ref("Session")}},
            request={
                "type": "object",
                "required": ["agent_id"],
                "properties": {
                    "agent_id": AGENT_ID,
                    "metadata": METADATA,
                    "idle_timeout_secs": {"type": "integer", "minimum": 0, "maximum": 2_592_000},
                },
            },
        )
    },
    "/v1/sessions": {
        "get": operation(
            "List sessions",
            {
                "type": "object",
                "required": ["sessions", "total"],
                "properties": {
                    "sessions": {"type": "array", "items": ref("Session")},
                    "total": {"type": "integer"},
                },
            },
            parameters=[
                query_param("agent_id", AGENT_ID, "Only this namespace"),
                query_param("active_only", {"type": "boolean"}, "Only sessions not ended"),
                LIMIT,
                OFFSET,
            ],
        )
    },
    "/v1/sessions/{session_id}": {
        "get": operation("A session", ref("Session"), parameters=[SESSION_ID])
    },
    "/v1/sessions/{session_id}/end": {
        "post": operation(
            "End a session (idempotent)",
            {"type": "object", "properties": {"session": {}, "memory_count": {"type": "integer"}}},
            request={"type": "object", "properties": {"summary": TEXT}},
            parameters=[SESSION_ID],
        )
    },
    "/v1/sessions/{session_id}/memories": {
        "get": operation(
            "A session's memories, oldest first",
            {
                "type": "object",
                "required": ["memories", "total"],
                "properties": {
                    "session": ref("Session"),
                    "memories": {"type": "array", "items": ref("Memory")},
                    "total": {"type": "integer"},
                },
            },
            parameters=[SESSION_ID, LIMIT, OFFSET],
        )
    },
    "/v1/sessions/{session_id}/touch": {
        "post": operation(
            "Keep a session alive",
            {"type": "object", "properties": {"session": ref("Session")}},
            parameters=[SESSION_ID],
        )
    },
    "/v1/memory/store": {
        "post": operation(
            "Store a memory; one with metadata.type = handoff is an escalation",
            {"type": "object", "required": ["memory"], "properties": {"memory": ref("Memory")}},
            request={
                "allOf": [
                    ref("MemoryInput"),
                    {
                        "type": "object",
                        "required": ["agent_id"],
                        "properties": {"agent_id": AGENT_ID},
                    },
                ]
            },
        )
    },
    "/v1/memories/store/batch": {
        "post": operation(
            "Store up to 1000 memories, all or nothing",
            {
                "type": "object",
                "required": ["stored", "stored_count"],
                "properties": {
                    "stored": {"type": "array", "items": ref("Memory")},
                    "stored_count": {"type": "integer"},
                },
            },
            request={
                "type": "object",
                "required": ["agent_id", "memories"],
                "properties": {
                    "agent_id": AGENT_ID,
                    "memories": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": MAX_BATCH,
                        "items": ref("MemoryInput"),
                    },
                },
            },
        )
    },
    "/v1/memory/recall": {
        "post": operation(
            "Ranked recall (relevance, importance, recency); bumps access counts",
            {
                "type": "object",
                "required": ["memories"],
                "properties": {"memories": {"type": "array", "items": ref("Hit")}},
            },
            request=RECALL_REQUEST,
        )
    },
    "/v1/memory/search": {
        "post": operation(
            "Ranked search, read-only",
            {
                "type": "object",
                "required": ["memories"],
                "properties": {"memories": {"type": "array", "items": ref("Hit")}},
            },
            request=RECALL_REQUEST,
        )
    },
    "/v1/memory/get/{memory_id}": {
        "get": operation(
            "One memory",
            ref("Memory"),
            parameters=[
                path_param("memory_id", "A memory id"),
                query_param("agent_id", AGENT_ID, "Its namespace"),
            ],
        )
    },
    "/v1/memory/forget": {
        "post": operation(
            "Delete memories by id",
            {
                "type": "object",
                "required": ["deleted_count"],
                "properties": {"deleted_count": {"type": "integer"}},
            },
            request={
                "type": "object",
                "required": ["agent_id", "memory_ids"],
                "properties": {
                    "agent_id": AGENT_ID,
                    "memory_ids": {"type": "array", "items": {"type": "string"}},
                },
            },
        )
    },
    "/v1/memory/update/{memory_id}": {
        "put": operation(
            "Change a memory's content, metadata, type, importance or tags",
            {
                "type": "object",
                "required": ["id", "memory"],
                "properties": {"memory": ref("Memory")},
            },
            request={
                "type": "object",
                "minProperties": 1,
                "properties": {
                    "agent_id": AGENT_ID,
                    "content": {**TEXT, "minLength": 1},
                    "metadata": METADATA,
                    "memory_type": {"type": "string", "enum": list(MEMORY_TYPES)},
                    "importance": {"type": "number", "minimum": 0, "maximum": 1},
                    "tags": {"type": "array", "items": TEXT},
                },
            },
            parameters=[
                path_param("memory_id", "A memory id"),
                query_param("agent_id", AGENT_ID, "Its namespace (optional)"),
            ],
        )
    },
    "/v1/memory/importance": {
        "post": operation(
            "Set the importance of memories",
            {"type": "object", "required": ["updated_count"]},
            request={
                "type": "object",
                "required": ["agent_id", "importance"],
                "properties": {
                    "agent_id": AGENT_ID,
                    "memory_id": {"type": "string"},
                    "memory_ids": {"type": "array", "items": {"type": "string"}},
                    "importance": {"type": "number", "minimum": 0, "maximum": 1},
                },
            },
        )
    },
    "/v1/memory/feedback": {
        "post": operation(
            "Feedback on a recalled memory: upvote x1.15, downvote x0.85, flag",
            {"type": "object", "required": ["memory_id", "new_importance"]},
            request={
                "type": "object",
                "required": ["agent_id", "memory_id"],
                "properties": {
                    "agent_id": AGENT_ID,
                    "memory_id": {"type": "string"},
                    "signal": {
                        "type": "string",
                        "enum": ["upvote", "downvote", "flag", "positive", "negative"],
                    },
                    "feedback": {"type": "string"},
                },
            },
        )
    },
    "/v1/memory/consolidate": {
        "post": operation(
            "Merge exact and near-exact duplicates in a namespace (or the given memories)",
            {"type": "object", "required": ["memories_removed", "groups", "dry_run"]},
            request={
                "type": "object",
                "required": ["agent_id"],
                "properties": {
                    "agent_id": AGENT_ID,
                    "memory_ids": {"type": "array", "items": {"type": "string"}, "maxItems": 1000},
                    "threshold": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                    "target_type": {"type": "string", "enum": list(MEMORY_TYPES)},
                    "dry_run": {"type": "boolean"},
                },
            },
        )
    },
    "/v1/memories/recall/batch": {
        "post": operation(
            "Memories matching a filter, most important first (read-only)",
            {"type": "object", "required": ["memories", "total"]},
            request={
                "type": "object",
                "required": ["agent_id"],
                "properties": {
                    "agent_id": AGENT_ID,
                    "filter": BATCH_FILTER,
                    "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
                },
            },
        )
    },
    "/v1/memories/forget/batch": {
        "delete": operation(
            "Delete the memories matching a filter (at least one predicate)",
            {"type": "object", "required": ["deleted_count"]},
            request={
                "type": "object",
                "required": ["agent_id", "filter"],
                "properties": {"agent_id": AGENT_ID, "filter": BATCH_FILTER},
            },
        )
    },
    "/v1/agents": {
        "get": operation("Namespaces with memories or sessions", {"type": "array"}, tag="agents")
    },
    "/v1/agents/{agent_id}/stats": {
        "get": operation(
            "A namespace's counts",
            {"type": "object", "required": ["agent_id", "total_memories"]},
            parameters=[path_param("agent_id", "The namespace")],
            tag="agents",
        )
    },
    "/v1/agents/{agent_id}/memories": {
        "get": operation(
            "A namespace's memories, newest first",
            {"type": "array", "items": ref("Memory")},
            parameters=[
                path_param("agent_id", "The namespace"),
                query_param("memory_type", {"type": "string", "enum": list(MEMORY_TYPES)}, "Type"),
                LIMIT,
                OFFSET,
                query_param(
                    "content_preview_chars",
                    {"type": "integer", "minimum": 1, "maximum": 10000},
                    "Cut content to this length",
                ),
            ],
            tag="agents",
        )
    },
    "/v1/agents/{agent_id}/sessions": {
        "get": operation(
            "A namespace's sessions, newest first",
            {"type": "array", "items": ref("Session")},
            parameters=[
                path_param("agent_id", "The namespace"),
                query_param("active_only", {"type": "boolean"}, "Only sessions not ended"),
                LIMIT,
            ],
            tag="agents",
        )
    },
    "/v1/agents/{agent_id}/wake-up": {
        "get": operation(
            "The memories to start a session with: importance x recency",
            {"type": "object", "required": ["agent_id", "memories"]},
            parameters=[
                path_param("agent_id", "The namespace"),
                query_param("top_n", {"type": "integer", "minimum": 1, "maximum": 100}, "How many"),
                query_param(
                    "min_importance", {"type": "number", "minimum": 0, "maximum": 1}, "Floor"
                ),
            ],
            tag="agents",
        )
    },
    "/v1/export": {
        "get": exported(
            operation(
                "A namespace's memories as a file",
                {"type": "array"},
                parameters=[
                    query_param("agent_id", AGENT_ID, "The namespace"),
                    query_param(
                        "format",
                        {"type": "string", "enum": ["jsonl", "csv", "mem0", "zep"]},
                        "File format (jsonl by default)",
                    ),
                ],
            )
        )
    },
    "/v1/namespaces": {
        "get": operation("Text namespaces", {"type": "object"}, tag="namespaces"),
        "post": operation(
            "Create a text namespace",
            {"type": "object"},
            request={
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": NAMESPACE,
                    "dimension": {"type": "integer", "minimum": 1, "maximum": 65536},
                    "distance": {"type": "string"},
                    "index_type": {"type": "string"},
                    "metadata": METADATA,
                },
            },
            status="201",
            extra_statuses=("409",),
            tag="namespaces",
        ),
    },
    "/v1/namespaces/{namespace}": {
        "get": operation("A text namespace", {"type": "object"}, parameters=[NS], tag="namespaces"),
        "put": operation(
            "Create or check a text namespace",
            {"type": "object"},
            request={
                "type": "object",
                "properties": {
                    "dimension": {"type": "integer", "minimum": 1, "maximum": 65536},
                    "distance": {"type": "string"},
                },
            },
            parameters=[NS],
            tag="namespaces",
        ),
        "delete": operation(
            "Delete a text namespace and its documents",
            {"type": "object"},
            parameters=[NS],
            tag="namespaces",
        ),
    },
    "/v1/namespaces/{namespace}/upsert-text": {"post": UPSERT},
    "/v1/namespaces/{namespace}/fulltext/index": {"post": UPSERT},
    "/v1/namespaces/{namespace}/query-text": {
        "post": text_query("Rank documents for a text (lexical)", "text")
    },
    "/v1/namespaces/{namespace}/batch-query-text": {
        "post": operation(
            "Rank documents for several texts",
            {"type": "object", "required": ["results"]},
            request={
                "type": "object",
                "required": ["queries"],
                "properties": {
                    "queries": {"type": "array", "items": TEXT, "minItems": 1, "maxItems": 100},
                    "top_k": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K},
                    "filter": {"type": "object"},
                },
            },
            parameters=[NS],
            tag="namespaces",
            extra_statuses=("501",),
        )
    },
    "/v1/namespaces/{namespace}/hybrid": {
        "post": text_query("Hybrid query (lexical only in embedded mode)", "text")
    },
    "/v1/namespaces/{namespace}/fulltext/search": {"post": text_query("Full-text search", "query")},
    "/v1/namespaces/{namespace}/fulltext/stats": {
        "get": operation("Index statistics", {"type": "object"}, parameters=[NS], tag="namespaces")
    },
    "/v1/namespaces/{namespace}/fulltext/delete": {"post": DELETE_IDS},
    "/v1/namespaces/{namespace}/vectors/delete": {"post": DELETE_IDS},
    "/v1/namespaces/{namespace}/vectors/bulk-delete": {
        "post": operation(
            "Delete the documents matching a metadata filter",
            {"type": "object", "required": ["deleted_count"]},
            request={
                "type": "object",
                "required": ["filter"],
                "properties": {"filter": {"type": "object", "minProperties": 1}},
            },
            parameters=[NS],
            tag="namespaces",
        )
    },
    "/api/v1/handoffs": {
        "post": operation(
            "Record a handoff (idempotent by content, or by Idempotency-Key)",
            {
                "type": "object",
                "required": ["handoff", "created"],
                "properties": {"handoff": ref("Handoff"), "created": {"type": "boolean"}},
            },
            request={
                "type": "object",
                "required": ["customer", "from_agent", "to_agent", "summary"],
                "properties": HANDOFF_PARAMS,
                "additionalProperties": False,
            },
            parameters=[
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "maxLength": 255},
                }
            ],
            status="201",
            more={"200": body({"type": "object"}, "Already recorded (created: false)")},
            extra_statuses=("409", "422"),
            tag="handoffs",
        )
    },
    "/api/v1/handoffs/{public_id}": {
        "get": operation(
            "A handoff's state",
            {"type": "object", "required": ["handoff"], "properties": {"handoff": ref("Handoff")}},
            parameters=[path_param("public_id", "The handoff's id", "uuid")],
            tag="handoffs",
        )
    },
    "/api/v1/conversations/{public_id}/messages": {
        "get": operation(
            "A conversation's public messages after a sequence number",
            {
                "type": "object",
                "required": ["conversation", "messages"],
                "properties": {
                    "conversation": ref("Conversation"),
                    "messages": {"type": "array", "items": ref("Message")},
                },
            },
            parameters=[
                path_param("public_id", "The conversation's id", "uuid"),
                query_param("after", {"type": "integer", "minimum": 0}, "Last seq seen"),
            ],
            tag="conversations",
        ),
        "post": operation(
            "Relay a customer message, or speak as the bot while it is not muted",
            {
                "type": "object",
                "required": ["message", "created"],
                "properties": {"message": ref("Message"), "created": {"type": "boolean"}},
            },
            request={
                "type": "object",
                "required": ["client_id", "body"],
                "properties": {
                    "client_id": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,64}$"},
                    "body": {
                        **TEXT,
                        "minLength": 1,
                        "maxLength": max_message_chars(),
                        "description": "At most MESSAGE_MAX_CHARS characters (413 beyond)",
                    },
                    "sender": {"type": "string", "enum": ["customer", "bot"]},
                },
            },
            parameters=[path_param("public_id", "The conversation's id", "uuid")],
            status="201",
            more={"200": body({"type": "object"}, "Replayed (same client_id)")},
            extra_statuses=("409", "410"),
            tag="conversations",
        ),
    },
    "/api/v1/conversations/{public_id}/attachments": {
        "post": {
            **operation(
                "Send a file: relay a customer's, or the bot's own while it is not muted",
                {
                    "type": "object",
                    "required": ["message", "created"],
                    "properties": {"message": ref("Message"), "created": {"type": "boolean"}},
                },
                parameters=[path_param("public_id", "The conversation's id", "uuid")],
                status="201",
                more={
                    "200": body({"type": "object"}, "Replayed (same client_id; stored once)"),
                    "415": body(ref("Error"), f"Not an accepted file ({ACCEPTED})"),
                },
                extra_statuses=("409", "410"),
                tag="conversations",
            ),
            "description": (
                f"{ACCEPTED}, typed from the bytes (not the name), at most "
                f"ATTACHMENT_MAX_BYTES ({max_bytes():,} bytes by default; 413 "
                "PAYLOAD_TOO_LARGE beyond). Images are re-encoded without EXIF/GPS and get a "
                "thumbnail. The message is stored once per client_id, like a text message."
            ),
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file", "client_id"],
                            "properties": {
                                "file": {"type": "string", "format": "binary"},
                                "client_id": {
                                    "type": "string",
                                    "pattern": "^[A-Za-z0-9_.:-]{1,64}$",
                                },
                                "sender": {"type": "string", "enum": ["customer", "bot"]},
                                "caption": {**TEXT, "maxLength": max_message_chars()},
                            },
                        }
                    }
                },
            },
        }
    },
    "/api/v1/conversations/{public_id}/attachments/{attachment_id}": {
        "get": {
            **operation(
                "Download a file of this bot's conversation (not a private note's)",
                {"type": "string", "format": "binary"},
                parameters=[
                    path_param("public_id", "The conversation's id", "uuid"),
                    path_param("attachment_id", "The attachment's id", "uuid"),
                    query_param(
                        "variant",
                        {"type": "string", "enum": ["file", "thumb"]},
                        "thumb: an image's thumbnail",
                    ),
                ],
                tag="conversations",
            ),
            "responses": {
                "200": {
                    "description": "The file (Content-Type and Content-Disposition set)",
                    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                },
                **errors(),
            },
        }
    },
    "/api/v1/conversations/{public_id}/csat": {
        "get": operation(
            "The conversation's satisfaction rating state",
            {"type": "object", "required": ["csat"], "properties": {"csat": {"type": "object"}}},
            parameters=[path_param("public_id", "The conversation's id", "uuid")],
            tag="conversations",
        ),
        "post": operation(
            "Record the customer's rating (1-5) and comment, for channels the bot owns",
            {"type": "object", "required": ["csat"], "properties": {"csat": {"type": "object"}}},
            request={
                "type": "object",
                "required": ["score"],
                "properties": {
                    "score": {"type": "integer", "minimum": 1, "maximum": 5},
                    "comment": {**TEXT, "maxLength": 2000},
                },
                "additionalProperties": False,
            },
            parameters=[path_param("public_id", "The conversation's id", "uuid")],
            tag="conversations",
        ),
    },
    "/api/v1/conversations/{public_id}/csat/ask": {
        "post": operation(
            "Record that the bot asked its customer for a rating (idempotent)",
            {"type": "object", "required": ["csat"], "properties": {"csat": {"type": "object"}}},
            parameters=[path_param("public_id", "The conversation's id", "uuid")],
            tag="conversations",
        )
    },
}


def openapi() -> dict[str, Any]:
    """The whole document (a fresh dict: callers may change it)."""
    import copy

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Handoff console: memory and handoff API",
            "version": "1",
            "description": (
                "The Dakera memory API subset the console serves (embedded mode), the "
                "handoff and conversation API, and the webhooks sent to bots. Every "
                "error is {error, code, details?, resource?}; 401s add message."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": copy.deepcopy(PATHS),
        "webhooks": {
            "conversationEvent": {
                "post": {
                    "summary": "An event in a conversation the bot started (signed)",
                    "requestBody": {"content": {JSON: {"schema": ref("WebhookEvent")}}},
                    "responses": {"2XX": {"description": "Received"}},
                }
            }
        },
        "components": {
            "schemas": copy.deepcopy(SCHEMAS),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }
