"""Every channel-layer group name and every ``group_send`` lives here.

The channel layer is a doorbell, not a record (at-most-once by spec): events are sent
only after the transaction that caused them commits, and clients re-read the database
after any gap. Services call the ``*_on_commit`` helpers; nothing else sends.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

SUPERVISORS = "floor"


def queue_group(team_slug: str) -> str:
    return f"queue.{team_slug}"


def conversation_group(handoff_id: int) -> str:
    return f"conversation.{handoff_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def send(group: str, event: dict[str, Any]) -> None:
    """Send one event to one group now (use the on-commit helpers from services)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, event)
    except Exception:
        # A lost doorbell is recoverable (clients re-sync from the database); a failed
        # request because the layer hiccuped is not.
        logger.exception("group_send to %s failed", group)


def send_on_commit(group: str, event: dict[str, Any]) -> None:
    transaction.on_commit(lambda: send(group, event), robust=True)


def handoff_changed_on_commit(*, handoff_id: int, team_slug: str | None, change: str) -> None:
    """Ring the queue of the handoff's team and the supervisors' floor after commit."""
    event = {"type": "handoff.changed", "handoff_id": handoff_id, "change": change}
    if team_slug:
        send_on_commit(queue_group(team_slug), event)
    send_on_commit(SUPERVISORS, event)
