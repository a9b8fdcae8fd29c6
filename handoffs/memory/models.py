"""Tables of the embedded memory server (the Dakera API subset served by the console)."""

import secrets

from django.db import models
from django.utils import timezone


def new_session_id() -> str:
    return f"sess_{secrets.token_hex(12)}"


def new_memory_id() -> str:
    return f"mem_{secrets.token_hex(12)}"


class MemoryType(models.TextChoices):
    EPISODIC = "episodic"
    SEMANTIC = "semantic"
    PROCEDURAL = "procedural"
    WORKING = "working"


class MemorySession(models.Model):
    """A Dakera session: one agent's run of work inside a namespace (``agent_id``)."""

    id = models.CharField(primary_key=True, max_length=40, default=new_session_id)
    agent_id = models.CharField(max_length=241, db_index=True)
    metadata = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    last_activity_at = models.DateTimeField(default=timezone.now)
    idle_timeout_secs = models.PositiveIntegerField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_reason = models.CharField(max_length=20, blank=True)
    summary = models.TextField(blank=True)
    memory_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["agent_id", "-started_at"], name="sess_agent_started")]

    def __str__(self) -> str:
        return f"{self.id} ({self.agent_id})"

    @property
    def is_active(self) -> bool:
        return self.ended_at is None


class Memory(models.Model):
    """One stored memory. ``uid`` is the public ``mem_…`` id; ``pk`` keys the text index."""

    uid = models.CharField(max_length=40, unique=True, default=new_memory_id)
    agent_id = models.CharField(max_length=241)
    session = models.ForeignKey(
        MemorySession,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="memories",
    )
    memory_type = models.CharField(
        max_length=12, choices=MemoryType.choices, default=MemoryType.EPISODIC
    )
    content = models.TextField()
    importance = models.FloatField(default=0.5)
    tags = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_accessed_at = models.DateTimeField(default=timezone.now)
    access_count = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(null=True, blank=True)
    #: A text document's client-chosen id (``upsert-text``); null for agents' memories.
    doc_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 - NULL = not a document (unique per namespace)
    #: When ``flag`` feedback marked it irrelevant (importance unchanged). Nullable columns
    #: only: SQLite adds them in place, where a default would rebuild the table (and drop
    #: the text index's trigger with it).
    flagged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "memories"
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent_id", "doc_id"],
                condition=models.Q(doc_id__isnull=False),
                name="mem_agent_doc_unique",
            )
        ]
        indexes = [
            models.Index(fields=["agent_id", "-importance", "-created_at"], name="mem_agent_imp"),
            models.Index(fields=["agent_id", "-created_at"], name="mem_agent_created"),
            models.Index(fields=["session", "created_at"], name="mem_session_created"),
        ]

    def __str__(self) -> str:
        return f"{self.uid}: {self.content[:60]}"


class TextNamespace(models.Model):
    """A client (data) namespace of text documents: ``/v1/namespaces/{name}``.

    Its documents are ``Memory`` rows in the reserved namespace ``_dakera_ns_<name>``
    (no bot can name an agent ``_dakera_…``), so they share the store's text index.
    """

    name = models.CharField(max_length=200, unique=True)
    dimension = models.PositiveIntegerField(null=True, blank=True)
    distance = models.CharField(max_length=20, default="cosine")
    index_type = models.CharField(max_length=40, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
