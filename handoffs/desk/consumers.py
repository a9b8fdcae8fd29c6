"""The agents' sockets: the queue, a handoff card, a conversation; presence follows them.

Thin: reject before accept, join groups, forward pre-rendered HTML. On every
(re)connect the client gets a fresh snapshot from the database, so an event lost while
the socket was down can never leave stale rows on screen.

Rights come from ``access.agents``, asked when a socket opens and again whenever
``rights.changed`` rings it (its user's teams or role changed, or its hop changed hands):
a queue socket then moves to its new groups and resyncs; a card or conversation socket
the agent may no longer watch pushes the reason ("This conversation was passed to
Bob ...") and closes with ``CLOSE_FORBIDDEN``; reconnecting is refused the same way.
Logout and deactivation close every socket of the user (``session.logout``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from channels.db import database_sync_to_async
from django.template.loader import render_to_string

from ..access import agents as rights
from ..models import Agent
from ..realtime import batching, broadcast, registry
from ..realtime.consumers import (
    CLOSE_FORBIDDEN,
    CLOSE_UNAUTHENTICATED,
    ForwardingConsumer,
    is_typing,
    refuse_while_layer_down,
)
from . import inbox, selectors, snapshots, sockets
from .sockets import socket_closed, socket_opened  # noqa: F401 - imported from here


@database_sync_to_async
def _agent_for(user) -> Agent | None:
    return Agent.objects.select_related("user").filter(user=user, user__is_active=True).first()


@database_sync_to_async
def _fresh_agent(agent_id: int) -> Agent | None:
    return Agent.objects.select_related("user").filter(pk=agent_id).first()


def _by_class(items: Sequence, work_of) -> list:
    """Run each consumer class's batch hook on its own items; results in item order."""
    results: list = [None] * len(items)
    classes: dict[type, list[int]] = {}
    for index, item in enumerate(items):
        consumer = item[0] if isinstance(item, tuple) else item
        classes.setdefault(type(consumer), []).append(index)
    for cls, indexes in classes.items():
        for index, result in zip(indexes, work_of(cls)([items[i] for i in indexes]), strict=True):
            results[index] = result
    return results


def _groups_many(items: Sequence[tuple[AgentConsumer, Agent]]) -> list:
    return _by_class(items, lambda cls: cls.groups_many)


def _open_many(items: Sequence[tuple[AgentConsumer, bool, bool]]) -> list:
    """Sockets opening together ``(consumer, register, first frame)``: registered and
    presence set in one go (a failure here, Redis down, refuses the whole batch with
    4013), then each one's first frame ("" for those that asked for none)."""
    sockets.sockets_opened(
        [(c.agent, c.channel_name, c.groups_joined) for c, register, _frame in items if register]
    )
    framed = [c for c, _register, frame in items if frame]
    frames = iter(_by_class(framed, lambda cls: cls.first_frames))
    return [next(frames) if frame else "" for _c, _register, frame in items]


# Connects in batches (``realtime.batching``): one trip to the database thread for the
# groups of every socket opening meanwhile, one for their presence and first frames.
_groups_batch = batching.GroupCommit(_groups_many)
_open_batch = batching.GroupCommit(_open_many)


async def join_groups(layer, groups: list[str], channel: str) -> None:
    """``group_add`` for each group; on Redis, in one script call shared with the other
    sockets joining at the same moment (``PooledRedisChannelLayer.group_add_many``)."""
    if hasattr(layer, "group_add_many"):
        await layer.group_add_many(groups, channel)
    else:
        await asyncio.gather(*(layer.group_add(group, channel) for group in groups))


class AgentConsumer(ForwardingConsumer):
    """Base: only signed-in agents; closes when the user logs out.

    A subclass says which groups a socket joins (``groups_sync``, or ``groups_many`` for
    a batch) and what its first frame is (``snapshot_sync``, or ``first_frames``)."""

    agent: Agent | None = None
    groups_joined: list[str]

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        # ``SocketAuthMiddleware`` loaded the agent with the user (one query).
        self.agent = self.scope["agent"] if "agent" in self.scope else await _agent_for(user)
        if self.agent is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        groups = await self.groups_for(self.agent)
        if groups is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        groups = [broadcast.user_group(user.pk), *groups]
        self.groups_joined = groups  # left on disconnect, even if joining fails half-way
        registry.attach_loop(asyncio.get_running_loop())
        snapshot = ""
        async with refuse_while_layer_down(self):
            if self.PRESENCE_FIRST:
                await _open_batch((self, True, False))
                await join_groups(self.channel_layer, groups, self.channel_name)
                snapshot = await _open_batch((self, False, True))
            else:
                await join_groups(self.channel_layer, groups, self.channel_name)
                # Joined first, then read: nothing that changes after the read is missed.
                snapshot = await _open_batch((self, True, True))
        if self.refused:
            return
        await self.accept()
        if snapshot:
            await self.send(text_data=snapshot)

    @classmethod
    def first_frames(cls, consumers: Sequence[AgentConsumer]) -> list:
        """The first frame of each socket of a batch (a failure is that socket's own)."""
        return batching.each(lambda c: c.first_frame_sync(), consumers)

    def first_frame_sync(self) -> str:
        """The page's snapshot and the nav badge, both as the database has them now."""
        badge = inbox.render_badge(self.agent) if self.SENDS_BADGE else ""
        return self.snapshot_sync(self.agent) + badge

    @classmethod
    def groups_many(cls, items: Sequence[tuple[AgentConsumer, Agent]]) -> list:
        return batching.each(lambda item: item[0].groups_sync(item[1]), items)

    def groups_sync(self, agent: Agent) -> list[str] | None:
        """The groups this socket joins for ``agent`` (None: refused), per
        ``access.agents``."""
        return []

    async def groups_for(self, agent: Agent) -> list[str] | None:
        return await _groups_batch((self, agent))

    # Presence set (and the socket registered) before the groups are joined: the page
    # shows presence itself (the floor), so its snapshot has it and it gets no echo.
    PRESENCE_FIRST = False

    # Every console page shows the nav badge from its own socket (or the badge-only inbox
    # socket); the desk socket beside it (offers) leaves the badge and its alerts alone.
    SENDS_BADGE = True

    def admits(self, message: dict) -> bool:
        return self.SENDS_BADGE or message["type"] not in ("inbox.update", "inbox.rows")

    def snapshot_sync(self, agent: Agent) -> str:
        return ""

    async def socket_resync(self, event: dict) -> None:
        """Redis restarted without its data (``registry.heartbeat_once``): this socket's
        groups and registry entry are gone. Rejoin, re-register, re-send the snapshot;
        if that fails, close with 1012 so the page reconnects."""
        if self.ended or self.agent is None or not getattr(self, "groups_joined", None):
            return
        self.resume_after = None  # a queue starts over
        try:
            await join_groups(self.channel_layer, self.groups_joined, self.channel_name)
            snapshot = await _open_batch((self, True, True))
        except Exception as exc:  # noqa: BLE001 - Redis failing again: start over
            broadcast.layer_failed("socket resync", exc)
            await self.close(code=1012)
            return
        if snapshot:
            await self.send(text_data=snapshot)

    async def snapshot(self, agent: Agent) -> str:
        return await database_sync_to_async(self.snapshot_sync)(agent)

    async def disconnect(self, code: int) -> None:
        groups = getattr(self, "groups_joined", None)
        if not groups or self.agent is None:
            return
        # Queued before anything is awaited, and shielded: even if Daphne cancels this
        # handler the socket's groups and presence are settled (``sockets``).
        done = sockets.socket_closing(self.channel_layer, self.channel_name, self.agent, groups)
        await asyncio.shield(done)

    RESYNC_ON_RIGHTS_CHANGED = False

    async def rights_changed(self, event: dict) -> None:
        """Re-ask ``access.agents``: move to the groups now allowed, or end the socket."""
        if self.ended or self.agent is None:
            return
        agent = await _fresh_agent(self.agent.pk)
        if agent is None or not agent.user.is_active:
            await self.end("Your console access ended.", code=CLOSE_UNAUTHENTICATED)
            return
        groups = await self.groups_for(agent)
        if groups is None:
            await self.end(await self.reason_for(agent))
            return
        self.agent = agent
        wanted = [broadcast.user_group(agent.user_id), *groups]
        for group in set(self.groups_joined) - set(wanted):
            await self.channel_layer.group_discard(group, self.channel_name)
        for group in set(wanted) - set(self.groups_joined):
            await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined = wanted
        await database_sync_to_async(registry.regrouped)(self.channel_name, agent.pk, wanted)
        if self.RESYNC_ON_RIGHTS_CHANGED:
            snapshot = await self.snapshot(agent)
            if snapshot:
                await self.send(text_data=snapshot)

    async def reason_for(self, agent: Agent) -> str:
        return "Your access to this page ended."

    async def end(self, reason: str, *, code: int = CLOSE_FORBIDDEN) -> None:
        """The right that opened this socket ended: leave every group, say why, close."""
        self.ended = True
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        await self.send(
            text_data=render_to_string("handoffs/_access_ended.html", {"reason": reason})
        )
        await self.close(code=code)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Clients only listen on these sockets; anything they send is ignored."""

    async def session_logout(self, event: dict) -> None:
        self.ended = True  # nothing more reaches it, even before the close completes
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        await self.close(code=CLOSE_UNAUTHENTICATED)

    async def queue_update(self, event: dict) -> None:
        if not self.ended:
            await self.send(text_data=event["html"])

    async def card_update(self, event: dict) -> None:
        if not self.ended:
            await self.send(text_data=event["html"])

    async def user_notice(self, event: dict) -> None:
        if not self.ended:
            await self.send(text_data=event["html"])


class QueueConsumer(AgentConsumer):
    """The live queue: one group per team the agent serves (all teams for supervisors),
    the rows assigned to them personally, and (supervisors) every assigned row."""

    RESYNC_ON_RIGHTS_CHANGED = True

    # The teams this socket's queue shows (``access.agents.served_team_ids``), as read
    # with its groups; None for supervisors (every team).
    team_ids: list[int] | None = None

    @classmethod
    def groups_many(cls, items: Sequence[tuple[QueueConsumer, Agent]]) -> list:
        """One query for the teams of every agent of the batch (two with supervisors)."""
        served = rights.served_teams_many([a for _c, a in items if not a.is_supervisor])
        supervisor = next((a for _c, a in items if a.is_supervisor), None)
        every = (
            list(selectors.teams_for(supervisor).values_list("pk", "slug"))
            if supervisor is not None
            else []
        )

        def groups(item: tuple[QueueConsumer, Agent]) -> list[str]:
            consumer, agent = item
            teams = every if agent.is_supervisor else served[agent.pk]
            consumer.team_ids = None if agent.is_supervisor else [pk for pk, _slug in teams]
            names = [broadcast.queue_group(slug) for _pk, slug in teams]
            names.append(broadcast.assigned_queue_group(agent.user_id))
            if rights.sees_every_queue(agent):
                names.append(broadcast.SUPERVISOR_QUEUE)
            return names

        return batching.each(groups, items)

    def groups_sync(self, agent: Agent) -> list[str]:
        return self.groups_many([(self, agent)])[0]

    @classmethod
    def first_frames(cls, consumers: Sequence[QueueConsumer]) -> list:
        """The batch's queues: the change number read once, the assigned rows in one
        query, the badges in one, the team rows shared (``snapshots``)."""
        agents = [c.agent for c in consumers]
        batch = snapshots.Batch()
        own = snapshots.own_rows_many(agents)
        badges = inbox.badge_entries_many(agents)

        def frame(consumer: QueueConsumer) -> str:
            agent = consumer.agent
            after, consumer.resume_after = consumer.resume_after, None
            snapshot = snapshots.queue_catch_up(
                agent, after, team_ids=consumer.team_ids, own_rows=own[agent.pk], batch=batch
            )
            return snapshot + inbox.render_badge(agent, badges[agent.pk])

        return batching.each(frame, consumers)

    def snapshot_sync(self, agent: Agent) -> str:
        # The first one resumes from the page's last change (?after=); a resync after
        # a rights change starts over.
        after, self.resume_after = self.resume_after, None
        return snapshots.queue_catch_up(agent, after)

    resume_after: int | None = None

    async def connect(self) -> None:
        self.resume_after = snapshots.parse_after(self.scope.get("query_string", b""))
        await super().connect()


class HandoffConsumer(AgentConsumer):
    """A handoff card: its status changes (accepted by someone, transferred ...)."""

    def groups_sync(self, agent: Agent) -> list[str] | None:
        handoff_id = self.scope["url_route"]["kwargs"]["pk"]
        if selectors.visible_handoff(agent=agent, handoff_id=handoff_id) is None:
            return None
        return [broadcast.handoff_group(handoff_id)]

    def snapshot_sync(self, agent: Agent) -> str:
        handoff = selectors.visible_handoff(
            agent=agent, handoff_id=self.scope["url_route"]["kwargs"]["pk"]
        )
        if handoff is None:
            return ""
        return render_to_string(
            "handoffs/desk/card.html#status-oob",
            {"handoff": handoff, "can_accept": rights.may_accept(agent, handoff)},
        )

    @database_sync_to_async
    def reason_for(self, agent: Agent) -> str:
        handoff = selectors.handoff_for(handoff_id=self.scope["url_route"]["kwargs"]["pk"])
        return rights.why_not(agent, handoff)


class ConversationConsumer(AgentConsumer):
    """The agent's side of a chat: messages (notes included) and the customer typing.

    Only a live view (the owner, a supervisor) opens; each message frame is admitted by
    that view (``ConversationView.admits``), so nothing of a later hop reaches an owner
    even before their ``rights.changed`` arrives."""

    conversation_id: int | None = None
    view: rights.ConversationView | None = None

    def groups_sync(self, agent: Agent) -> list[str] | None:
        handoff = selectors.handoff_for(handoff_id=self.scope["url_route"]["kwargs"]["pk"])
        view = rights.conversation_view(agent, handoff) if handoff else None
        if view is None or not view.live or handoff.conversation_id is None:
            return None
        self.view = view
        self.conversation_id = handoff.conversation_id
        return [
            broadcast.agents_group(handoff.conversation_id),
            broadcast.handoff_group(handoff.pk),
        ]

    @database_sync_to_async
    def reason_for(self, agent: Agent) -> str:
        handoff = selectors.handoff_for(handoff_id=self.scope["url_route"]["kwargs"]["pk"])
        return rights.why_not(agent, handoff)

    def admits(self, message: dict) -> bool:
        if message["type"] != "chat.message":
            return True
        return self.view is not None and self.view.admits(
            handoff_id=message.get("handoff_id"), seq=message.get("seq")
        )

    def snapshot_sync(self, agent: Agent) -> str:
        after = snapshots.parse_after(self.scope.get("query_string", b""))
        return snapshots.conversation_catch_up(self.conversation_id, after)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if (
            is_typing(text_data)
            and self.conversation_id is not None
            and not self.ended
            and self.typing_allowed()
        ):
            name = self.agent.user.first_name or "Your support agent"
            await broadcast.typing(conversation_id=self.conversation_id, who="agent", label=name)

    async def chat_message(self, event: dict) -> None:
        if not self.ended and self.admits(event):
            await self.send(text_data=event["html"])

    async def chat_typing(self, event: dict) -> None:
        if not self.ended:
            await self.send(text_data=event["html"])


class InboxConsumer(AgentConsumer):
    """The agent's own conversations: the nav badge on pages without a socket of their
    own (``?badge``), and the inbox page's rows (re-rendered whole on every change)."""

    RESYNC_ON_RIGHTS_CHANGED = True

    def wants_rows(self) -> bool:
        return b"badge" not in self.scope.get("query_string", b"")

    def groups_sync(self, agent: Agent) -> list[str]:
        return [broadcast.inbox_group(agent.user_id)] if self.wants_rows() else []

    counted = False

    def snapshot_sync(self, agent: Agent) -> str:
        if not self.wants_rows():
            return ""
        if not self.counted:  # rows are rendered for pushes only while a page is open
            self.counted = True
            broadcast.inbox_page_opened(agent.user_id, 1)
        return inbox.render_rows(agent)

    async def disconnect(self, code: int) -> None:
        if self.counted and self.agent is not None:
            self.counted = False
            await database_sync_to_async(broadcast.inbox_page_opened)(self.agent.user_id, -1)
        await super().disconnect(code)
