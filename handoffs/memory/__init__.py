"""The memory bounded context. ``get_store()`` returns the configured implementation."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import MemoryStore


def get_store() -> MemoryStore:
    """The embedded store, or the remote Dakera client when ``DAKERA_URL`` is set."""
    from django.conf import settings

    if settings.DAKERA_URL:
        from .remote import get_remote_store

        return get_remote_store()
    from .embedded import EmbeddedStore

    return EmbeddedStore()
