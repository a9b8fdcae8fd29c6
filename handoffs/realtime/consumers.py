"""The base every socket builds on: close codes, forward-only dispatch, typing frames."""

from __future__ import annotations

import json

from channels.generic.websocket import AsyncWebsocketConsumer

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


class ForwardingConsumer(AsyncWebsocketConsumer):
    """Skips Channels' per-event database-connection cleanup for pure forwarders.

    Channels runs ``close_old_connections`` on the sync thread before every handler;
    handlers that only forward pre-rendered HTML never touch the database, and with
    hundreds of sockets that hop per recipient is the bulk of a broadcast's cost.
    """

    FORWARD_ONLY = frozenset(
        {
            "queue.update",
            "card.update",
            "chat.message",
            "chat.typing",
            "chat.status",
            "floor.update",
        }
    )

    async def dispatch(self, message: dict) -> None:
        if message["type"] in self.FORWARD_ONLY:
            await self.send(text_data=message["html"])
            return
        await super().dispatch(message)


def is_typing(text_data: str | None) -> bool:
    if not text_data or len(text_data) > 200:
        return False
    try:
        return json.loads(text_data).get("typing") is True
    except (ValueError, AttributeError):
        return False
