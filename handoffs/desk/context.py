"""What every console page's frame shows: the agent's unread badge and their zone.

Lazy: a fragment that never renders the navigation (htmx partials) costs nothing."""

from __future__ import annotations

from typing import Any

from django.utils.functional import SimpleLazyObject

from . import inbox


def console(request) -> dict[str, Any]:
    agent = getattr(request, "agent", None)
    if agent is None:
        return {}
    return {
        "inbox_badge": SimpleLazyObject(
            lambda: inbox.badge_context(inbox.badge_entries(agent=agent))
        )
    }
