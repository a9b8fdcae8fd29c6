"""The desk socket every agent page opens (``base.html``): offers and shift reminders.

Its group (``desk.<user id>``) carries the agent's offer panel, re-rendered from the
database on every change (``realtime.broadcast.publish_offers``), so a reconnect or a
lost frame can't leave a stale offer. It counts for presence like every agent socket,
so any console page keeps the agent online. Notices are left to the page's own socket
(``user.notice`` would otherwise show twice).
"""

from __future__ import annotations

from channels.db import database_sync_to_async

from ..models import Agent
from ..realtime import broadcast
from .consumers import AgentConsumer
from .shift_views import offers_panel


class DeskConsumer(AgentConsumer):
    @database_sync_to_async
    def groups_for(self, agent: Agent) -> list[str]:
        return [broadcast.desk_group(agent.user_id)]

    SENDS_BADGE = False  # the page's own socket carries the badge and its alerts

    def snapshot_sync(self, agent: Agent) -> str:
        return offers_panel(agent)

    async def offer_update(self, event: dict) -> None:
        if not self.ended:
            await self.send(text_data=event["html"])

    async def user_notice(self, event: dict) -> None:
        """Shown by the page's own socket; the desk socket carries offers only."""
