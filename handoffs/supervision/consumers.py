"""The supervisors' floor socket."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth import get_user_model
from django.template.loader import render_to_string

from ..desk.consumers import inbox_badge, socket_closed, socket_opened
from ..models import Agent
from ..realtime import broadcast
from ..realtime.consumers import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED
from . import floor


@database_sync_to_async
def _supervisor_for(user, *, fresh: bool = False) -> Agent | None:
    if fresh and user is not None and user.is_authenticated:
        # Role, staff or active may have changed since the socket opened.
        user = get_user_model().objects.filter(pk=user.pk).first()
    return floor.supervisor_of(user)


_floor_snapshot = database_sync_to_async(floor.render_floor_summary)


class FloorConsumer(AsyncWebsocketConsumer):
    """The live floor: supervisors and admins only. Every floor event carries the summary
    already rendered (once, by ``broadcast.publish_floor``); this only forwards it.

    A supervisor watching the floor is at work: like the agents' sockets, this one makes
    them Online (Away if they had set it) while it is open and Offline when their last
    console socket closes. Their presence is set before the socket joins the floor
    group, so the snapshot already shows it and this socket gets no echo of it.
    """

    groups_joined: list[str]

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.agent = await _supervisor_for(user)
        if self.agent is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await socket_opened(self.agent)
        self.groups_joined = [broadcast.user_group(user.pk), broadcast.FLOOR]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        self.watching = True
        await database_sync_to_async(broadcast.floor_watched)(1)
        await self.send(text_data=await _floor_snapshot() + await inbox_badge(self.agent))

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)
        if getattr(self, "watching", False):
            await database_sync_to_async(broadcast.floor_watched)(-1)
        if getattr(self, "groups_joined", None):
            await socket_closed(self.agent)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The floor only listens."""

    ended = False

    async def floor_update(self, event: dict) -> None:
        if not self.ended:
            await self.send(text_data=event["html"])

    async def user_notice(self, event: dict) -> None:
        if not self.ended:
            await self.send(text_data=event["html"])

    async def inbox_update(self, event: dict) -> None:
        """The supervisor's own unread badge (and its alert), as on every console page."""
        if not self.ended:
            await self.send(text_data=event["html"])

    async def queue_update(self, event: dict) -> None:
        """Queue rows sent to this user's group belong on the queue page, not here."""

    async def card_update(self, event: dict) -> None:
        """Card status changes belong on the card page, not here."""

    async def session_logout(self, event: dict) -> None:
        await self._leave()
        await self.close(code=CLOSE_UNAUTHENTICATED)

    async def rights_changed(self, event: dict) -> None:
        """A role change may end supervising: re-ask ``access.agents``, close if so."""
        user = self.scope.get("user")
        if await _supervisor_for(user, fresh=True) is None:
            await self._leave()
            await self.send(
                text_data=render_to_string(
                    "handoffs/_access_ended.html",
                    {"reason": "You no longer supervise: the floor is closed to you."},
                )
            )
            await self.close(code=CLOSE_FORBIDDEN)

    async def _leave(self) -> None:
        self.ended = True
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)
