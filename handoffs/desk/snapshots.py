"""What a queue or conversation socket is sent when it (re)connects.

**Queue.** Rows are rendered the same for every viewer (the page marks "Assigned to
you" itself), so the rows of a team set are rendered once per queue change and shared
by every socket of this process that connects before the next change
(``queue_log.current()`` versions them): a reconnect storm of 1,000 agents renders each
team's queue once, not 1,000 times. An agent's personally assigned rows are added per
socket (one small query). A socket that says the last change it saw (``?after=N``) gets
only the rows changed since, re-read from the database (``OVERLAP`` changes earlier too,
as frames from two processes may arrive out of order), or the full snapshot when more
than ``CATCHUP_GAP_LIMIT`` changed or the log no longer reaches back.

**Conversation.** ``?after=<seq>`` sends only the messages after that one (``OVERLAP``
earlier too; the page drops duplicates by id), or the whole conversation when more than
``CATCHUP_GAP_LIMIT`` were missed.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from django.conf import settings
from django.template.loader import render_to_string

from ..access import agents as rights
from ..compiled import Compiled
from ..models import Agent, Handoff, Message, Status
from ..realtime import broadcast, queue_log
from . import selectors

OVERLAP = 5
_MEMO_SIZE = 64

_lock = threading.Lock()
_memo: OrderedDict[tuple, tuple[int, str, float]] = OrderedDict()
# A shared snapshot is reused only while the queue's change number is unchanged, and for
# at most this long (a change made while Redis was down bumps the number only once it
# is back: a bound on how long a snapshot from before could be served).
MEMO_SECS = 5.0


def parse_after(query_string: bytes | str) -> int | None:
    """The ``after`` parameter of a socket URL (None when absent or not a number)."""
    from urllib.parse import parse_qs

    if isinstance(query_string, bytes):
        query_string = query_string.decode("latin-1")
    values = parse_qs(query_string).get("after")
    if not values:
        return None
    try:
        after = int(values[0])
    except ValueError:
        return None
    return after if after >= 0 else None


def _order(rows: list[Handoff]) -> list[Handoff]:
    return sorted(rows, key=lambda h: (-h.urgency_rank, -h.importance, h.created_at, h.pk))


def _shared_rows(agent: Agent, seq: int, team_ids: list[int] | None = None) -> str:
    """The team part of a queue, rendered once per (team set, queue change);
    ``team_ids``: ``served_team_ids(agent)`` when the caller has them."""
    every = rights.sees_every_queue(agent)
    if every:
        key: tuple = ("all",)
    else:
        team_ids = tuple(sorted(rights.served_team_ids(agent) if team_ids is None else team_ids))
        key = ("teams", team_ids)
    with _lock:
        hit = _memo.get(key)
        if hit is not None and hit[0] == seq and seq >= 0 and time.monotonic() - hit[2] < MEMO_SECS:
            _memo.move_to_end(key)
            return hit[1]
    # Built only on a miss: a queryset's filters cost more than the memo's lookup.
    query = (
        Handoff.objects.filter(status=Status.WAITING, team__isnull=False)
        if every
        else Handoff.objects.filter(status=Status.WAITING, team_id__in=team_ids, assigned_to=None)
    )
    rows = _order(list(query.select_related("team", "assigned_to__user")))
    html = "".join(
        render_to_string("handoffs/desk/queue.html#queue-row", {"handoff": h}) for h in rows
    )
    with _lock:
        _memo[key] = (seq, html, time.monotonic())
        _memo.move_to_end(key)
        while len(_memo) > _MEMO_SIZE:
            _memo.popitem(last=False)
    return html


def _own_rows(agent: Agent) -> str:
    return own_rows_many([agent])[agent.pk]


def own_rows_many(agents: list[Agent]) -> dict[int, str]:
    """The rows assigned to each agent personally (none for those who see every queue,
    whose shared rows have them), rendered, in one query."""
    pks = [a.pk for a in agents if not rights.sees_every_queue(a)]
    per_agent: dict[int, list[Handoff]] = {a.pk: [] for a in agents}
    if pks:
        for hop in _assigned_rows(pks):
            per_agent[hop.assigned_to_id].append(hop)
    return {
        pk: "".join(
            render_to_string("handoffs/desk/queue.html#queue-row", {"handoff": h})
            for h in _order(hops)
        )
        for pk, hops in per_agent.items()
    }


# Compiled once (``handoffs.compiled``): a batch of connects runs it with its own agents.
_assigned_rows = Compiled(
    lambda agent_ids: Handoff.objects.filter(
        status=Status.WAITING, team__isnull=False, assigned_to__in=agent_ids
    ).select_related("team", "assigned_to__user")
)


class Batch:
    """What sockets connecting together share: the queue's change number and the log's
    answer per starting point, each read from Redis once for the batch."""

    def __init__(self) -> None:
        self._seq: int | None = None
        self._since: dict[int, tuple[int, list[int] | None]] = {}

    def current(self) -> int:
        if self._seq is None:
            self._seq = queue_log.current()
        return self._seq

    def changed_since(self, after: int) -> tuple[int, list[int] | None]:
        if after not in self._since:
            self._since[after] = queue_log.changed_since(after)
        return self._since[after]


def queue_snapshot(
    agent: Agent,
    seq: int | None = None,
    *,
    team_ids: list[int] | None = None,
    own_rows: str | None = None,
) -> str:
    """Every row of the agent's queue, replacing the page's list, and the change number;
    ``team_ids`` and ``own_rows`` when the caller loaded them (a batch of connects)."""
    if seq is None:
        seq = queue_log.current()
    own = _own_rows(agent) if own_rows is None else own_rows
    rows = _shared_rows(agent, seq, team_ids) + own
    return (
        '<div id="queue-rows" class="queue-rows" hx-swap-oob="true">'
        + rows
        + "</div>"
        + broadcast.queue_seq_marker(seq)
    )


def queue_catch_up(
    agent: Agent,
    after: int | None,
    *,
    team_ids: list[int] | None = None,
    own_rows: str | None = None,
    batch: Batch | None = None,
) -> str:
    """What a (re)connecting queue socket is sent: the changes since ``after`` when the
    log still has them and they are few, else the full snapshot. ``team_ids``,
    ``own_rows`` and ``batch``: what a batch of connects loaded once for all."""
    batch = batch or Batch()
    full = {"team_ids": team_ids, "own_rows": own_rows}
    try:
        if after is None:
            return queue_snapshot(agent, seq=batch.current(), **full)
        now, changed = batch.changed_since(max(after - OVERLAP, 0))
    except Exception:  # noqa: BLE001 - the log is unreadable: send everything (the DB)
        return queue_snapshot(agent, seq=-1, **full)
    if changed is None or len(changed) > settings.CATCHUP_GAP_LIMIT:
        return queue_snapshot(agent, seq=now, **full)
    if not changed:
        return broadcast.queue_seq_marker(now)
    # One query for the rows still in this agent's queue (the queue page's own rule); every
    # other changed hop is a removal (it left, or was never here: deleting it is harmless).
    shown = list(
        Handoff.objects.filter(pk__in=changed)
        .filter(rights.queue_filter(agent, team_ids))
        .select_related("team", "assigned_to__user")
    )
    shown_ids = {hop.pk for hop in shown}
    rows = "".join(
        render_to_string("handoffs/desk/queue.html#queue-row", {"handoff": hop})
        for hop in _order(shown)
    )
    gone = "".join(
        f'<article id="handoff-{int(pk)}" hx-swap-oob="delete"></article>'
        for pk in changed
        if pk not in shown_ids
    )
    added = f'<div hx-swap-oob="beforeend:#queue-rows">{rows}</div>' if rows else ""
    return gone + added + broadcast.queue_seq_marker(now)


def conversation_catch_up(conversation_id: int, after: int | None) -> str:
    """The messages a (re)connecting agent's conversation socket is sent."""
    messages = Message.objects.filter(conversation_id=conversation_id)
    if after is not None:
        missed = list(
            messages.filter(seq__gt=max(after - OVERLAP, 0)).order_by("seq")[
                : settings.CATCHUP_GAP_LIMIT + OVERLAP + 1
            ]
        )
        if len(missed) <= settings.CATCHUP_GAP_LIMIT + OVERLAP:
            if not missed:
                return ""
            return (
                '<div hx-swap-oob="beforeend:#messages">'
                + "".join(
                    render_to_string(
                        "handoffs/chat.html#message", {"message": m, "audience": "agent"}
                    )
                    for m in missed
                )
                + "</div>"
            )
    return render_to_string(
        "handoffs/chat.html#messages",
        {"chat_messages": messages.order_by("seq"), "audience": "agent", "oob": True},
    )


__all__ = ["conversation_catch_up", "parse_after", "queue_catch_up", "queue_snapshot", "selectors"]
