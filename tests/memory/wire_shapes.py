"""The Dakera wire shapes (docs/memory-api.md) the memory tests check responses against."""

SESSION_KEYS = {"id", "agent_id", "started_at", "metadata", "memory_count", "last_activity_at"}
ENDED_SESSION_KEYS = SESSION_KEYS | {"ended_at", "summary", "ended_reason"}
MEMORY_KEYS = {
    "id",
    "memory_type",
    "content",
    "agent_id",
    "session_id",
    "importance",
    "tags",
    "metadata",
    "created_at",
    "last_accessed_at",
    "access_count",
}
HIT_KEYS = {"memory", "score", "weighted_score", "smart_score", "rank_score"}
