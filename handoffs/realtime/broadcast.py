"""Every channel-layer group name and every ``group_send`` lives here.

The channel layer is a doorbell, not a record (at-most-once by spec): events are sent
only after the transaction that caused them commits, each rendered once from templates
(autoescaped) and forwarded as-is by the consumers; clients re-read the database after
any gap. Services call the ``*_on_commit`` helpers; nothing else sends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.template.loader import render_to_string

if TYPE_CHECKING:
    from ..models import Message

logger = logging.getLogger(__name__)

FLOOR = "floor"


def queue_group(team_slug: str) -> str:
    return f"queue.{team_slug}"


def handoff_group(handoff_id: int) -> str:
    return f"handoff.{handoff_id}"


def conversation_group(handoff_id: int) -> str:
    return f"conversation.{handoff_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def send(group: str, event: dict[str, Any]) -> None:
    """Send one event to one group now (services use the on-commit helpers)."""
    layer = get_channel_layer()
    if layer is None:
        return
    for attempt in (1, 2):
        try:
            async_to_sync(layer.group_send)(group, event)
            return
        except Exception:
            # After Redis restarts, a pooled connection to the old server fails once and
            # is reconnected: retry once, or this doorbell is lost with no gap for any
            # client to notice (tests/scaleout). A doorbell lost while Redis is down is
            # recoverable (the sockets drop and re-sync from the database); failing the
            # request that already committed because the layer hiccuped is not.
            if attempt == 2:
                logger.exception("group_send to %s failed", group)


def publish_handoff_change(handoff_id: int, change: str) -> None:
    """Render a handoff's queue row / status once and ring its queue, card and floor."""
    from ..models import Handoff, Status

    handoff = (
        Handoff.objects.select_related("team", "accepted_by__user").filter(pk=handoff_id).first()
    )
    if handoff is None:
        return
    if handoff.status == Status.WAITING:
        html = render_to_string("handoffs/desk/queue.html#queue-row-oob", {"handoff": handoff})
    else:
        html = render_to_string("handoffs/desk/queue.html#queue-row-gone", {"handoff": handoff})
    event = {"type": "queue.update", "html": html, "change": change, "handoff_id": handoff.pk}
    if handoff.team is not None:
        send(queue_group(handoff.team.slug), event)
    if change != "created":  # a card opened before its handoff's first commit can't exist
        status_html = render_to_string("handoffs/desk/card.html#status-oob", {"handoff": handoff})
        send(handoff_group(handoff.pk), {"type": "card.update", "html": status_html})
    publish_floor()


def handoff_changed_on_commit(*, handoff_id: int, change: str) -> None:
    transaction.on_commit(lambda: publish_handoff_change(handoff_id, change), robust=True)


def publish_presence(agent_id: int) -> None:
    publish_floor()


def presence_changed_on_commit(*, agent_id: int) -> None:
    transaction.on_commit(lambda: publish_presence(agent_id), robust=True)


def close_user_sockets(user_id: int) -> None:
    """Tell every socket of this user to close (logout)."""
    send(user_group(user_id), {"type": "session.logout"})


def agents_group(conversation_id: int) -> str:
    """Agents (and supervisors) watching a conversation: they see notes too."""
    return f"conversation.{conversation_id}.agents"


def customer_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}.customer"


def publish_message(message: Message) -> None:
    """Render a chat message once per audience and ring both sides of the conversation."""
    conversation_id = message.conversation_id
    agent_html = render_to_string(
        "handoffs/chat.html#message-oob", {"message": message, "audience": "agent"}
    )
    send(agents_group(conversation_id), {"type": "chat.message", "html": agent_html})
    if message.is_public:
        customer_html = render_to_string(
            "handoffs/chat.html#message-oob", {"message": message, "audience": "customer"}
        )
        send(customer_group(conversation_id), {"type": "chat.message", "html": customer_html})


def message_posted_on_commit(*, message: Message) -> None:
    """Ring both sides once the message is committed (the instance just saved)."""
    transaction.on_commit(lambda: publish_message(message), robust=True)


async def typing(*, conversation_id: int, who: str, label: str) -> None:
    """Forward a typing signal to the other side (from a consumer; never stored)."""
    layer = get_channel_layer()
    html = render_to_string("handoffs/chat.html#typing-oob", {"label": label})
    target = customer_group(conversation_id) if who == "agent" else agents_group(conversation_id)
    await layer.group_send(target, {"type": "chat.typing", "html": html})


def conversation_closed_on_commit(*, conversation_id: int) -> None:
    """After the closing messages: end the customer's sockets (the link stops working)."""
    transaction.on_commit(
        lambda: send(customer_group(conversation_id), {"type": "conversation.closed"}),
        robust=True,
    )


# ---------------------------------------------------------------- the supervisors' floor
FLOOR_WATCHERS = "floor:watchers"


# What is on the floor is supervision's business; it registers the renderer at start-up
# (``HandoffsConfig.ready``) so this module never imports a layer above it.
_floor_renderer: Callable[[], str] | None = None


def register_floor_renderer(render: Callable[[], str]) -> None:
    """Set the function that renders the floor summary pushed to every floor socket."""
    global _floor_renderer
    _floor_renderer = render


def floor_watched(delta: int = 0) -> int:
    """How many floor sockets are open (all processes, via the shared cache)."""
    from django.core.cache import cache

    if delta:
        cache.add(FLOOR_WATCHERS, 0, None)
        try:
            return cache.incr(FLOOR_WATCHERS, delta)
        except ValueError:
            return 0
    return cache.get(FLOOR_WATCHERS, 0)


def publish_floor() -> None:
    """Re-read and render the floor summary once, and push it to every floor socket.

    Skipped while no supervisor watches: rendering the floor costs more than the event
    that rang it, and a floor socket gets a fresh snapshot when it connects anyway.
    """
    if floor_watched() <= 0 or _floor_renderer is None:
        return
    try:
        html = _floor_renderer()
    except Exception:
        # The floor re-syncs on reconnect and every 30 s; the change that rang it stands.
        logger.exception("rendering the floor failed")
        return
    send(FLOOR, {"type": "floor.update", "html": html})


def notify_user(user_id: int, *, text: str, url: str = "", level: str = "info") -> None:
    """A notice in the flash area of every console page this user has open."""
    html = render_to_string(
        "handoffs/_notice.html", {"text": text, "url": url, "level": level, "oob": True}
    )
    send(user_group(user_id), {"type": "user.notice", "html": html})


def publish_reassigned(
    handoff_id: int, *, old_team: str | None, old_user_id: int | None, by: str
) -> None:
    """A supervisor moved a handoff: fix the queues, tell both agents, ring the floor."""
    from django.urls import reverse

    from ..models import Handoff, Status

    handoff = (
        Handoff.objects.select_related("team", "accepted_by__user", "assigned_to__user")
        .filter(pk=handoff_id)
        .first()
    )
    if handoff is None:
        return
    who = handoff.customer_name or handoff.customer
    status_html = render_to_string("handoffs/desk/card.html#status-oob", {"handoff": handoff})
    send(handoff_group(handoff.pk), {"type": "card.update", "html": status_html})
    if handoff.status == Status.WAITING and handoff.assigned_to is not None:
        # Only the assignee (and supervisors) may take it now: off the team's screens,
        # onto the assignee's.
        gone = render_to_string("handoffs/desk/queue.html#queue-row-gone", {"handoff": handoff})
        for slug in {old_team, handoff.team.slug if handoff.team else None} - {None}:
            send(queue_group(slug), {"type": "queue.update", "html": gone})
        row = render_to_string("handoffs/desk/queue.html#queue-row-oob", {"handoff": handoff})
        target = handoff.assigned_to
        send(user_group(target.user_id), {"type": "queue.update", "html": row})
        notify_user(
            target.user_id,
            text=f"{by} assigned {who} to you.",
            url=reverse("handoff", args=[handoff.pk]),
        )
    elif handoff.status == Status.WAITING and handoff.team is not None:
        # Moved to a team's queue: off the old team's screens, onto the new team's.
        if old_team and old_team != handoff.team.slug:
            gone = render_to_string("handoffs/desk/queue.html#queue-row-gone", {"handoff": handoff})
            send(queue_group(old_team), {"type": "queue.update", "html": gone})
        row = render_to_string("handoffs/desk/queue.html#queue-row-oob", {"handoff": handoff})
        send(queue_group(handoff.team.slug), {"type": "queue.update", "html": row})
    elif handoff.status == Status.ACCEPTED and handoff.accepted_by is not None:
        notify_user(
            handoff.accepted_by.user_id,
            text=f"{by} gave you the conversation with {who}.",
            url=reverse("conversation", args=[handoff.pk]),
        )
    if old_user_id is not None:
        notify_user(old_user_id, text=f"{by} moved the conversation with {who} to a colleague.")
    publish_floor()


def handoff_reassigned_on_commit(
    *, handoff_id: int, old_team: str | None, old_user_id: int | None, by: str
) -> None:
    transaction.on_commit(
        lambda: publish_reassigned(handoff_id, old_team=old_team, old_user_id=old_user_id, by=by),
        robust=True,
    )


def notify_user_on_commit(*, user_id: int, text: str, url: str = "", level: str = "info") -> None:
    transaction.on_commit(
        lambda: notify_user(user_id, text=text, url=url, level=level), robust=True
    )
