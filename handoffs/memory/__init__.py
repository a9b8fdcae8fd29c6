"""The memory bounded context: the Dakera-style memory store and the API bots call.

Owns the store interface (``base``), both implementations (``embedded`` on this
database, ``remote`` over httpx), ranking (``lexical``), the wire views and their
shared HTTP boundary (``views``, ``http``: key auth, body parsing, Dakera's error shape,
also used by ``api``) and its own tables. ``get_store()`` returns the configured store.

Near the bottom of the product's layers: imports ``handoffs.access`` (what a bot's key
may do) and ``handoffs.models`` (bots' keys) and nothing else of the console. A stored
handoff memory is announced through ``signals``.
"""

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
