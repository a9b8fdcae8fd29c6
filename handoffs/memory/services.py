"""Writes through the embedded memory API (``memory.views``): store, and store a batch.

A stored memory with ``metadata.type == "handoff"`` *is* an escalation: each one is
announced through ``signals.handoff_memory_stored`` in the same transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction

from .embedded import EmbeddedStore
from .signals import handoff_memory_stored

if TYPE_CHECKING:
    from ..models import Bot

HANDOFF_TYPE = "handoff"


def is_handoff_memory(memory: dict[str, Any]) -> bool:
    return (memory.get("metadata") or {}).get("type") == HANDOFF_TYPE


def _announce(memories: list[dict[str, Any]], bot: Bot | None) -> None:
    for memory in memories:
        if is_handoff_memory(memory):
            handoff_memory_stored.send(sender=EmbeddedStore, memory=memory, bot=bot)


def memory_store(*, bot: Bot | None, **fields: Any) -> dict[str, Any]:
    """Store one memory in the embedded server; a handoff memory also becomes a handoff."""
    with transaction.atomic():
        result = EmbeddedStore().store(**fields)
        _announce([result["memory"]], bot)
    return result


def memory_store_batch(
    *, bot: Bot | None, agent_id: str, memories: list[dict[str, Any]]
) -> dict[str, Any]:
    """Store a batch (all or nothing); each handoff memory in it becomes a handoff."""
    with transaction.atomic():
        result = EmbeddedStore().store_batch(agent_id=agent_id, memories=memories)
        _announce(result["stored"], bot)
    return result
