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
from redis.exceptions import RedisError

from ..compiled import Compiled
from . import outage, queue_log

if TYPE_CHECKING:
    from ..models import Message

logger = logging.getLogger(__name__)

FLOOR = "floor"
# Queue rows of hops assigned to one agent go to that agent and to supervisors only (a
# team slug has no dots, so these never collide with ``queue.<team>``).
SUPERVISOR_QUEUE = "queue.all.supervisors"


def queue_group(team_slug: str) -> str:
    return f"queue.{team_slug}"


def handoff_group(handoff_id: int) -> str:
    return f"handoff.{handoff_id}"


def conversation_group(handoff_id: int) -> str:
    return f"conversation.{handoff_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def inbox_group(user_id: int) -> str:
    """The sockets of one agent's inbox page (its rows; every console socket of the
    agent gets the nav badge through ``user_group``)."""
    return f"inbox.{user_id}"


def assigned_queue_group(user_id: int) -> str:
    """The queue sockets of one agent: rows assigned to them personally."""
    return f"queue.user.{user_id}"


def desk_group(user_id: int) -> str:
    """The desk socket every agent page opens: offers and shift reminders."""
    return f"desk.{user_id}"


def _after_commit(fn: Callable[[], object]) -> None:
    """Run ``fn`` once the transaction commits. While Redis is down a broadcast (or a
    cache read it makes) fails: one log line per outage (``outage``), never a
    traceback per change and never an error for the request that committed."""

    def guarded() -> None:
        try:
            fn()
        except (OSError, RedisError) as exc:
            outage.failed("broadcast after commit", exc)
        except Exception:
            logger.exception("broadcast after commit failed")

    transaction.on_commit(guarded, robust=True)


def send(group: str, event: dict[str, Any]) -> None:
    """Send one event to one group now (services use the on-commit helpers)."""
    layer = get_channel_layer()
    if layer is None:
        return
    for attempt in (1, 2):
        try:
            async_to_sync(layer.group_send)(group, event)
            outage.succeeded()
            return
        except Exception as exc:
            # After Redis restarts, a pooled connection to the old server fails once and
            # is reconnected: retry once, or this doorbell is lost with no gap for any
            # client to notice (tests/scaleout). A doorbell lost while Redis is down is
            # recoverable (the sockets drop and re-sync from the database); failing the
            # request that already committed because the layer hiccuped is not.
            if attempt == 2:
                outage.failed(f"group_send to {group}", exc)


def layer_failed(what: str, exc: BaseException) -> None:
    """A consumer's channel-layer call failed: one log line per outage (``outage``)."""
    outage.failed(what, exc)


def queue_seq_marker(seq: int | None) -> str:
    """The queue change number a frame was sent at (the page keeps the highest it saw
    and reconnects with ``?after=``; ``queue_log``)."""
    if seq is None:
        return ""
    return f'<span id="queue-seq" hx-swap-oob="true" data-seq="{int(seq)}" hidden></span>'


def _queue_row(handoff: Any, viewer: Any = None) -> str:
    return render_to_string(
        "handoffs/desk/queue.html#queue-row-oob", {"handoff": handoff, "agent": viewer}
    )


def push_queue_row(
    handoff: Any, *, change: str, old_team: str | None = None, old_user_id: int | None = None
) -> None:
    """Send a hop's queue row (or its removal) to exactly the sockets whose queue shows it
    now: ``access.agents.queue_audience``, the rule the queue page itself follows."""
    from ..access import agents as rights

    audience = rights.queue_audience(handoff, old_team=old_team, old_user_id=old_user_id)
    marker = queue_seq_marker(queue_log.record(handoff.pk))

    def event(html: str) -> dict[str, Any]:
        return {
            "type": "queue.update",
            "html": html + marker,
            "change": change,
            "handoff_id": handoff.pk,
        }

    if audience.gone_teams or audience.gone_users:
        gone = event(
            render_to_string("handoffs/desk/queue.html#queue-row-gone", {"handoff": handoff})
        )
        for slug in audience.gone_teams:
            send(queue_group(slug), gone)
        for user_id in audience.gone_users:
            send(assigned_queue_group(user_id), gone)
        if not audience.row_team and not audience.assignee_user_id:
            send(SUPERVISOR_QUEUE, gone)
    if audience.row_team:
        send(queue_group(audience.row_team), event(_queue_row(handoff)))
    if audience.assignee_user_id:
        send(
            assigned_queue_group(audience.assignee_user_id),
            event(_queue_row(handoff, handoff.assigned_to)),
        )
    if audience.supervisors:
        send(SUPERVISOR_QUEUE, event(_queue_row(handoff)))


def _handoffs_with_rows(handoff_ids: list[int]) -> Any:
    from ..models import Handoff

    return Handoff.objects.select_related("team", "accepted_by__user", "assigned_to__user").filter(
        pk__in=handoff_ids
    )


# Compiled once (``handoffs.compiled``): every change to a hop (and every reassignment)
# re-reads it, and compiling this select_related query cost three times running it.
_handoffs_to_publish = Compiled(_handoffs_with_rows)


def publish_handoff_change(handoff_id: int, change: str) -> None:
    """Render a handoff's queue row / status once and ring its queue, card and floor."""
    found = _handoffs_to_publish([handoff_id])
    if not found:
        return
    handoff = found[0]
    push_queue_row(handoff, change=change)
    if change != "created":  # a card opened before its handoff's first commit can't exist
        status_html = render_to_string("handoffs/desk/card.html#status-oob", {"handoff": handoff})
        send(handoff_group(handoff.pk), {"type": "card.update", "html": status_html})
        # Accepting, closing or passing a hop on changes who may watch it.
        send(handoff_group(handoff.pk), {"type": "rights.changed"})
    if handoff.accepted_by is not None:  # accepted, closed or passed on: their inbox
        publish_inbox([handoff.accepted_by.user_id])
    publish_floor()
    publish_customer_status(handoff.pk)


def handoff_changed_on_commit(*, handoff_id: int, change: str) -> None:
    _after_commit(lambda: publish_handoff_change(handoff_id, change))


def publish_presence(agent_id: int) -> None:
    publish_floor()


def presence_changed_on_commit(*, agent_id: int) -> None:
    _after_commit(lambda: publish_presence(agent_id))


def close_user_sockets(user_id: int) -> None:
    """Tell every socket of this user to close (logout, deactivation)."""
    send(user_group(user_id), {"type": "session.logout"})


def rights_changed(*, user_id: int | None = None, handoff_id: int | None = None) -> None:
    """Ring the sockets of a user (their teams or role changed) or of a hop (its owner or
    assignee changed): each re-asks ``access.agents`` and narrows or closes itself."""
    if user_id is not None:
        send(user_group(user_id), {"type": "rights.changed"})
    if handoff_id is not None:
        send(handoff_group(handoff_id), {"type": "rights.changed"})


def rights_changed_on_commit(*, user_id: int | None = None, handoff_id: int | None = None) -> None:
    _after_commit(lambda: rights_changed(user_id=user_id, handoff_id=handoff_id))


def close_user_sockets_on_commit(*, user_id: int) -> None:
    _after_commit(lambda: close_user_sockets(user_id))


def agents_group(conversation_id: int) -> str:
    """Agents (and supervisors) watching a conversation: they see notes too."""
    return f"conversation.{conversation_id}.agents"


def customer_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}.customer"


def publish_message(message: Message) -> None:
    """Render a chat message once per audience and ring both sides of the conversation.

    The agents' frame carries its hop and ``seq``: each agent socket admits it only if
    its ``access.agents.ConversationView`` does (a former owner's never does)."""
    conversation_id = message.conversation_id
    agent_html = render_to_string(
        "handoffs/chat.html#message-oob", {"message": message, "audience": "agent"}
    )
    send(
        agents_group(conversation_id),
        {
            "type": "chat.message",
            "html": agent_html,
            "handoff_id": message.handoff_id,
            "seq": message.seq,
        },
    )
    if message.is_public:
        customer_html = render_to_string(
            "handoffs/chat.html#message-oob", {"message": message, "audience": "customer"}
        )
        send(customer_group(conversation_id), {"type": "chat.message", "html": customer_html})
    # The owner's inbox: preview, unread count, who waits; a customer message alerts.
    # A message posted while its hop waits (or is closed) has no owner to tell.
    from ..models import Handoff, Message, Status

    hop = message.handoff if Message.handoff.is_cached(message) else None
    if hop is not None and hop.status != Status.ACCEPTED:
        return
    owners = Handoff.objects.filter(
        conversation_id=conversation_id, status=Status.ACCEPTED, accepted_by__isnull=False
    ).values_list("accepted_by__user_id", flat=True)
    publish_inbox(list(owners), message=message)


def message_posted_on_commit(*, message: Message) -> None:
    """Ring both sides once the message is committed (the instance just saved)."""
    _after_commit(lambda: publish_message(message))


async def typing(*, conversation_id: int, who: str, label: str) -> None:
    """Forward a typing signal to the other side (from a consumer; never stored)."""
    layer = get_channel_layer()
    html = render_to_string("handoffs/chat.html#typing-oob", {"label": label})
    target = customer_group(conversation_id) if who == "agent" else agents_group(conversation_id)
    await layer.group_send(target, {"type": "chat.typing", "html": html})


def conversation_closed_on_commit(*, conversation_id: int) -> None:
    """After the closing messages: end the customer's sockets (the link stops working)."""
    _after_commit(lambda: send(customer_group(conversation_id), {"type": "conversation.closed"}))


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

    from ..models import Status

    found = _handoffs_to_publish([handoff_id])
    if not found:
        return
    handoff = found[0]
    who = handoff.customer_name or handoff.customer
    status_html = render_to_string("handoffs/desk/card.html#status-oob", {"handoff": handoff})
    send(handoff_group(handoff.pk), {"type": "card.update", "html": status_html})
    # The old owner's (or the team's) sockets on this hop re-ask whether they may watch it.
    send(handoff_group(handoff.pk), {"type": "rights.changed"})
    if handoff.status == Status.WAITING:  # an open conversation is in no queue
        push_queue_row(handoff, change="reassigned", old_team=old_team, old_user_id=old_user_id)
    if handoff.status == Status.WAITING and handoff.assigned_to is not None:
        notify_user(
            handoff.assigned_to.user_id,
            text=f"{by} assigned {who} to you.",
            url=reverse("handoff", args=[handoff.pk]),
        )
    elif handoff.status == Status.WAITING and handoff.team is not None:
        # Moved to a team's queue: off the old team's screens, onto the new team's.
        marker = queue_seq_marker(queue_log.record(handoff.pk))
        if old_team and old_team != handoff.team.slug:
            gone = render_to_string("handoffs/desk/queue.html#queue-row-gone", {"handoff": handoff})
            send(queue_group(old_team), {"type": "queue.update", "html": gone + marker})
        row = render_to_string("handoffs/desk/queue.html#queue-row-oob", {"handoff": handoff})
        send(queue_group(handoff.team.slug), {"type": "queue.update", "html": row + marker})
    elif handoff.status == Status.ACCEPTED and handoff.accepted_by is not None:
        notify_user(
            handoff.accepted_by.user_id,
            text=f"{by} gave you the conversation with {who}.",
            url=reverse("conversation", args=[handoff.pk]),
        )
    if old_user_id is not None:
        notify_user(old_user_id, text=f"{by} moved the conversation with {who} to a colleague.")
    publish_inbox(
        [u for u in (old_user_id, handoff.accepted_by and handoff.accepted_by.user_id) if u]
    )
    publish_floor()
    publish_customer_status(handoff.pk)


def handoff_reassigned_on_commit(
    *, handoff_id: int, old_team: str | None, old_user_id: int | None, by: str
) -> None:
    _after_commit(
        lambda: publish_reassigned(handoff_id, old_team=old_team, old_user_id=old_user_id, by=by)
    )


def notify_user_on_commit(*, user_id: int, text: str, url: str = "", level: str = "info") -> None:
    _after_commit(lambda: notify_user(user_id, text=text, url=url, level=level))


# ---------------------------------------------------------------- the customer's side
# Where a waiting customer stands (queue position, estimated wait, opening hours) is the
# customers package's business; it registers the renderer at start-up
# (``HandoffsConfig.ready``). It takes a changed handoff's id and the conversation ids
# with an open customer socket, and returns (conversation id, status html) pairs: the
# handoff's own conversation and every waiting one behind it in its team.
CUSTOMER_SOCKETS = "customer:sockets"
_customer_status_renderer: Callable[..., list[tuple[int, str]]] | None = None


def register_customer_status_renderer(render: Callable[..., list[tuple[int, str]]]) -> None:
    """Set the function that renders the customers' status panels after a hop changes."""
    global _customer_status_renderer
    _customer_status_renderer = render


def _conversation_key(conversation_id: int) -> str:
    return f"{CUSTOMER_SOCKETS}:{conversation_id}"


def customer_socket_opened(conversation_id: int, delta: int) -> None:
    """Count open customer sockets (all processes, via the shared cache): overall, so a
    change in the queue costs nothing while no customer watches, and per conversation,
    so only watched conversations get their status rendered."""
    for key in (CUSTOMER_SOCKETS, _conversation_key(conversation_id)):
        _count_sockets(key, delta)


def _count_sockets(key: str, delta: int) -> None:
    """Add ``delta`` to a count of open sockets in the shared cache (gone at 0)."""
    from django.core.cache import cache

    cache.add(key, 0, None)
    try:
        if cache.incr(key, delta) <= 0:
            cache.delete(key)
    except ValueError:
        pass  # deleted by another process between add and incr


def watched_conversations(conversation_ids: list[int]) -> set[int]:
    """Which of these conversations have a customer socket open right now."""
    from django.core.cache import cache

    if not conversation_ids or not cache.get(CUSTOMER_SOCKETS, 0):
        return set()
    found = cache.get_many([_conversation_key(pk) for pk in conversation_ids])
    return {pk for pk in conversation_ids if found.get(_conversation_key(pk), 0) > 0}


def publish_customer_status(handoff_id: int) -> None:
    """Push the status panel (position, wait, who's there) to the customers it changed for."""
    from django.core.cache import cache

    if _customer_status_renderer is None or not cache.get(CUSTOMER_SOCKETS, 0):
        return
    try:
        panels = _customer_status_renderer(handoff_id, watched_conversations)
    except Exception:
        # The panel re-syncs on reconnect; the change that rang it stands.
        logger.exception("rendering the customers' status failed")
        return
    for conversation_id, html in panels:
        send(customer_group(conversation_id), {"type": "chat.status", "html": html})


def customer_status_on_commit(*, handoff_id: int) -> None:
    _after_commit(lambda: publish_customer_status(handoff_id))


def publish_csat(conversation_id: int) -> None:
    """The customer's rating, on the agents' and supervisors' screens of the conversation."""
    from ..models import Conversation

    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None:
        return
    html = render_to_string("handoffs/desk/csat.html", {"conversation": conversation, "oob": True})
    send(agents_group(conversation_id), {"type": "chat.status", "html": html})


def csat_recorded_on_commit(*, conversation_id: int) -> None:
    _after_commit(lambda: publish_csat(conversation_id))


# ---------------------------------------------------------------- the agents' inboxes
# What an inbox shows is the desk's business; it registers the renderer at start-up
# (``HandoffsConfig.ready``). It takes user ids and the message that rang (if any) and
# returns (user id, nav badge html, inbox rows html) for each agent among them (rows
# "" while the agent has no inbox page open: ``inbox_pages_open``).
_inbox_renderer: Callable[..., list[tuple[int, str, str]]] | None = None


def register_inbox_renderer(render: Callable[..., list[tuple[int, str, str]]]) -> None:
    """Set the function that renders an agent's nav badge and inbox rows."""
    global _inbox_renderer
    _inbox_renderer = render


INBOX_PAGES = "inbox:pages:{}"


def inbox_page_opened(user_id: int, delta: int) -> None:
    """Count the open inbox pages of one agent (all processes, via the shared cache): the
    rows are only rendered while one is open; the badge always is."""
    _count_sockets(INBOX_PAGES.format(user_id), delta)


def inbox_pages_open(user_id: int) -> bool:
    from django.core.cache import cache

    return cache.get(INBOX_PAGES.format(user_id), 0) > 0


def publish_inbox(user_ids: list[int], *, message: Message | None = None) -> None:
    """Push these agents' unread badge (to every console socket of theirs: it raises the
    alert for a customer ``message``) and inbox rows (to their inbox pages)."""
    if _inbox_renderer is None or not user_ids:
        return
    try:
        frames = _inbox_renderer(list(user_ids), message)
    except Exception:
        # Every socket re-reads its badge on reconnect; the change that rang it stands.
        logger.exception("rendering an inbox failed")
        return
    for user_id, badge_html, rows_html in frames:
        send(user_group(user_id), {"type": "inbox.update", "html": badge_html})
        if rows_html:
            send(inbox_group(user_id), {"type": "inbox.rows", "html": rows_html})


def inbox_changed_on_commit(*, user_ids: list[int]) -> None:
    _after_commit(lambda: publish_inbox(user_ids))


# ---------------------------------------------------------------- offers (offer routing)
# The offer panel is the desk's to render (``HandoffsConfig.ready`` registers it): it
# takes a user id and returns the panel with every live offer of theirs, re-read from
# the database, so a lost or repeated frame never leaves a stale offer on screen.
_offers_renderer: Callable[[int], str] | None = None


def register_offers_renderer(render: Callable[[int], str]) -> None:
    global _offers_renderer
    _offers_renderer = render


def publish_offers(user_ids: list[int], *, handoff_id: int | None, change: str) -> None:
    """Push each user's offer panel to their desk sockets; ring the hop's queue row,
    card and the floor."""
    if _offers_renderer is not None:
        for user_id in user_ids:
            try:
                html = _offers_renderer(user_id)
            except Exception:
                logger.exception("rendering the offers of user %s failed", user_id)
                continue
            send(desk_group(user_id), {"type": "offer.update", "html": html})
    if handoff_id is not None:
        publish_handoff_change(handoff_id, change)
    else:
        publish_floor()


def offers_changed_on_commit(*, user_ids: list[int], handoff_id: int | None, change: str) -> None:
    _after_commit(lambda: publish_offers(user_ids, handoff_id=handoff_id, change=change))


def desk_notice(user_id: int, *, html: str) -> None:
    """A pre-rendered banner (the shift reminder) on every page of this user's desk."""
    send(desk_group(user_id), {"type": "offer.update", "html": html})
