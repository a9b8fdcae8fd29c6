"""The base every socket builds on: close codes, forward-only dispatch, typing frames."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from . import outage

CLOSE_UNAUTHENTICATED = 4401  # not signed in (any more): the page goes to the login
CLOSE_FORBIDDEN = 4403  # not allowed, or no longer: refused, or a right ended (the page
# shows the reason pushed just before and does not reconnect)
CLOSE_TRY_AGAIN = 4013  # the channel layer (Redis) is down: the page shows "Reconnecting…"
# and retries with its back-off (RFC 6455's 1013 "try again later", in the private range)


class ForwardingConsumer(AsyncWebsocketConsumer):
    """Skips Channels' per-event database-connection cleanup for pure forwarders.

    Channels runs ``close_old_connections`` on the sync thread before every handler;
    handlers that only forward pre-rendered HTML never touch the database, and with
    hundreds of sockets that hop per recipient is the bulk of a broadcast's cost. The
    other handlers of these consumers reach the database only through
    ``database_sync_to_async`` (or a batch of it), which cleans up around each call
    itself, so they skip that hop too (it was one per connect and per disconnect).
    """

    FORWARD_ONLY = frozenset(
        {
            "queue.update",
            "card.update",
            "chat.message",
            "chat.typing",
            "chat.status",
            "floor.update",
            "inbox.update",
            "inbox.rows",
        }
    )

    ended = False  # set when the right that opened this socket ended: forward nothing
    refused = False  # set when the connect was refused (CLOSE_TRY_AGAIN)

    _typing_sent_at = float("-inf")

    def typing_allowed(self) -> bool:
        """At most ``TYPING_FRAMES_PER_SEC`` typing frames per socket are forwarded."""
        now = time.monotonic()
        if now - self._typing_sent_at < 1 / settings.TYPING_FRAMES_PER_SEC:
            return False
        self._typing_sent_at = now
        return True

    async def dispatch(self, message: dict) -> None:
        if message["type"] in self.FORWARD_ONLY:
            if not self.ended and self.admits(message):
                await self.send(text_data=message["html"])
            return
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    def admits(self, message: dict) -> bool:
        """Whether one pushed frame may reach this socket (decided in memory, per frame)."""
        return True


def is_typing(text_data: str | None) -> bool:
    if not text_data or len(text_data) > 200:
        return False
    try:
        return json.loads(text_data).get("typing") is True
    except (ValueError, AttributeError):
        return False


@contextlib.asynccontextmanager
async def refuse_while_layer_down(consumer: AsyncWebsocketConsumer) -> AsyncIterator[None]:
    """Run a connect's channel-layer and registry calls; if they fail (Redis down), the
    socket is accepted and closed at once with ``CLOSE_TRY_AGAIN`` (a browser sees a
    close code, where an exception before ``accept`` would be an HTTP 500), and the
    outage is logged once (``outage``)."""
    try:
        yield
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - any layer failure refuses the same way
        outage.failed("socket connect", exc)
        consumer.refused = True
        await consumer.accept()
        await consumer.close(code=CLOSE_TRY_AGAIN)
    else:
        outage.succeeded()
