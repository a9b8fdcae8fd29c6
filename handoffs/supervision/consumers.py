"""The supervisors' floor socket."""

from __future__ import annotations

from channels.db import database_sync_to_async

from ..access import agents as rights
from ..desk.consumers import AgentConsumer
from ..models import Agent
from ..realtime import broadcast
from . import floor


class FloorConsumer(AgentConsumer):
    """The live floor: supervisors and admins only. Every floor event carries the summary
    already rendered (once, by ``broadcast.publish_floor``); this only forwards it.

    The agents' connect (``desk.consumers.AgentConsumer``): signed in, a console
    profile, the right asked of ``access.agents`` (``may_supervise``) when it opens and
    again when ``rights.changed`` rings, refused with 4013 while Redis is down, in the
    socket registry (so it rejoins its groups after Redis restarts empty), batched.

    A supervisor watching the floor is at work: like the agents' sockets, this one makes
    them Online (Away if they had set it) while it is open and Offline when their last
    console socket closes. Their presence is set before the socket joins the floor
    group (``PRESENCE_FIRST``), so the snapshot already shows it and this socket gets no
    echo of it.
    """

    PRESENCE_FIRST = True
    watching = False

    def groups_sync(self, agent: Agent) -> list[str] | None:
        return [broadcast.FLOOR] if rights.may_supervise(agent) else None

    async def reason_for(self, agent: Agent) -> str:
        return "You no longer supervise: the floor is closed to you."

    def snapshot_sync(self, agent: Agent) -> str:
        if not self.watching:  # the floor is rendered for pushes only while watched
            self.watching = True
            broadcast.floor_watched(1)
        return floor.render_floor_summary()

    def admits(self, message: dict) -> bool:
        """Only the floor and the supervisor's own badge: queue rows and card changes sent
        to this user's group belong on those pages, not here."""
        return message["type"] in ("floor.update", "inbox.update")

    async def disconnect(self, code: int) -> None:
        if self.watching:
            self.watching = False
            await database_sync_to_async(broadcast.floor_watched)(-1)
        await super().disconnect(code)
