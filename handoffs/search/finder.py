"""The agent's search: customers, handoff summaries and notes, and messages, ranked.

``search_for_agent`` runs the three index queries with the viewer's rights inside them
(``index``), then loads the few rows found and decides where each one opens: the live
conversation for its owner (and supervisors), the card for a hop waiting in the viewer's
queue, else the read-only transcript of the hop the viewer may read it through. Matching
words are highlighted by ``highlight`` from escaped text, so no customer's text can
become markup.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import BooleanField, ExpressionWrapper, Max, Q
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from ..access import agents as rights
from ..memory.lexical import query_terms
from ..models import Agent, Conversation, Handoff, Message, Status
from .index import HopCondition, Rights, text_index

MAX_QUERY_CHARS = 200
MAX_TERMS = 8
LIMITS = {"customers": 10, "summaries": 20, "messages": 30}
# "Show more messages" adds a page of LIMITS["messages"] at a time, up to this many (the
# ranking looks at the newest ``index.WINDOW`` matches; past that a narrower query helps).
MAX_MESSAGES = 300
SNIPPET_CHARS = 200


class SearchError(ValueError):
    """A query that can't be run; ``message`` is shown beside the search box."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def terms_of(query: str) -> list[str]:
    """The words searched for (``memory.lexical.query_terms``); raises ``SearchError``."""
    if len(query) > MAX_QUERY_CHARS:
        raise SearchError(f"Search for at most {MAX_QUERY_CHARS} characters.")
    terms = query_terms(query)[:MAX_TERMS]
    if query.strip() and not terms:
        raise SearchError("Type a word to search for (common words such as “the” are skipped).")
    return terms


def rights_of(findable: Q, whole: Q) -> Rights:
    return Rights(findable=HopCondition.of(findable), whole=HopCondition.of(whole))


# ---------------------------------------------------------------- highlighting
@functools.lru_cache(maxsize=256)
def _compiled(terms: tuple[str, ...]) -> re.Pattern[str] | None:
    """Whole words starting with a term's stem (the rule of ``memory.lexical``: a term
    matches a word it is a stem-prefix of), so "refunds" marks "refunded" too."""
    if not terms:
        return None
    stems = sorted(
        {term if len(term) <= 4 else term[: max(4, len(term) - 2)] for term in terms},
        key=len,
        reverse=True,
    )
    return re.compile(
        r"(?<![^\W_])(?:" + "|".join(re.escape(s) for s in stems) + r")[^\W_]*", re.IGNORECASE
    )


def highlight(text: str, terms: list[str], *, width: int | None = SNIPPET_CHARS) -> SafeString:
    """``text`` escaped, its matching words in ``<mark>``; with ``width``, a window of
    about that many characters around the first match, cut at spaces, with ellipses."""
    text = text or ""
    pattern = _compiled(tuple(terms))
    matches = list(pattern.finditer(text)) if pattern else []
    start, end = 0, len(text)
    if width is not None and len(text) > width:
        first = matches[0].start() if matches else 0
        start = max(0, first - width // 3)
        if start:
            space = text.find(" ", start)
            start = space + 1 if 0 <= space < first else start
        end = min(len(text), start + width)
        if end < len(text):
            space = text.rfind(" ", start, end)
            end = space if space > max(start, first) else end
    pieces: list[str] = ["…" if start else ""]
    cursor = start
    for match in matches:
        if match.end() <= start or match.start() >= end:
            continue
        begin, finish = max(match.start(), start), min(match.end(), end)
        pieces.append(escape(text[cursor:begin]))
        pieces.append(f"<mark>{escape(text[begin:finish])}</mark>")
        cursor = finish
    pieces.append(escape(text[cursor:end]))
    pieces.append("…" if end < len(text) else "")
    # Every piece of the text went through ``escape``; only our own <mark> is markup.
    return mark_safe("".join(pieces))  # noqa: S308


# ---------------------------------------------------------------- where a hit opens
@dataclass
class Target:
    url: str
    label: str  # "open", "waiting", or the closed hop's outcome
    read_only: bool


def _url(pk: int, how: str, seq: int | None = None) -> str:
    if how == "conversation":
        return reverse("conversation", args=[pk])
    if how == "card":
        return reverse("handoff", args=[pk])
    url = reverse("transcript", args=[pk])
    return f"{url}#msg-{seq}" if seq else url


@dataclass(frozen=True)
class _Hop:
    pk: int
    status: str
    whole: bool  # the viewer reads this hop's conversation whole (``whole_filter``)
    horizon: int | None  # else up to this message


class Opener:
    """Decides, for the conversations of a page of hits, where each hit opens: two
    queries for the whole page (the findable hops, and the horizons of closed ones)."""

    def __init__(
        self, agent: Agent, conversation_ids: set[int], *, findable: Q, whole_q: Q
    ) -> None:
        rows = list(
            Handoff.objects.filter(findable, conversation_id__in=conversation_ids)
            .annotate(whole=ExpressionWrapper(whole_q, output_field=BooleanField()))
            .order_by("conversation_id", "-created_at", "-pk")
            .values_list("pk", "conversation_id", "status", "whole", "closed_at")
        )
        closed = [pk for pk, _, status, whole, _ in rows if status in rights.CLOSED and not whole]
        last = dict(
            Message.objects.filter(handoff_id__in=closed)
            .order_by()  # no default ordering: it would join the conversation
            .values("handoff_id")
            .annotate(last=Max("seq"))
            .values_list("handoff_id", "last")
        )
        self.by_conversation: dict[int, list[_Hop]] = {}
        for pk, conversation_id, status, whole, closed_at in rows:
            horizon = None
            if not whole and status in rights.CLOSED:
                horizon = last.get(pk)
                if horizon is None:  # rare: a hop without messages of its own
                    horizon = rights.handover_seq(
                        Handoff(pk=pk, conversation_id=conversation_id, closed_at=closed_at)
                    )
            self.by_conversation.setdefault(conversation_id, []).append(
                _Hop(pk, status, bool(whole), horizon)
            )

    def target(self, conversation_id: int, seq: int | None = None) -> Target | None:
        """Where a hit in this conversation opens (at message ``seq``, if one), newest
        hop first: live, then the card, then a read-only transcript that reaches it.
        A whole hop that is accepted is the viewer's own (or they supervise): live."""
        for hop in self.by_conversation.get(conversation_id, []):
            if hop.whole and hop.status == Status.ACCEPTED:
                return Target(_url(hop.pk, "conversation"), "open", read_only=False)
            if hop.whole and hop.status == Status.WAITING:
                return Target(_url(hop.pk, "card"), "waiting", read_only=False)
            if hop.status in rights.CLOSED and (
                seq is None or hop.whole or seq <= (hop.horizon or 0)
            ):
                label = Status(hop.status).label
                return Target(_url(hop.pk, "transcript", seq), label, read_only=True)
        return None


# ---------------------------------------------------------------- the search
@dataclass
class Hit:
    kind: str  # "customer" | "summary" | "message"
    target: Target
    title: str
    snippet: SafeString
    when: datetime | None
    detail: str = ""
    score: float = 0.0


@dataclass
class SearchResults:
    query: str
    terms: list[str] = field(default_factory=list)
    customers: list[Hit] = field(default_factory=list)
    summaries: list[Hit] = field(default_factory=list)
    messages: list[Hit] = field(default_factory=list)
    messages_limit: int = LIMITS["messages"]
    more_messages: int = 0  # the limit "Show more messages" asks for (0: nothing more)

    @property
    def count(self) -> int:
        return len(self.customers) + len(self.summaries) + len(self.messages)


def _customer_label(conversation: Conversation) -> str:
    return conversation.customer_name or conversation.customer


def messages_limit(raw: object) -> int:
    """The ``messages`` parameter of the search page as a limit: a whole number of pages
    between one and ``MAX_MESSAGES``; anything else is the first page."""
    page = LIMITS["messages"]
    try:
        wanted = int(str(raw))
    except ValueError:
        return page
    return max(page, min(MAX_MESSAGES, wanted // page * page))


def search_for_agent(
    *, agent: Agent, query: str, messages: int = LIMITS["messages"]
) -> SearchResults:
    """What ``agent`` may find for ``query``, by section, best first (the ``messages``
    best messages); raises ``SearchError`` for a query that can't be run (too long, no
    words)."""
    terms = terms_of(query)
    results = SearchResults(query=query, terms=terms, messages_limit=messages)
    if not terms or not rights.active(agent):
        return results
    findable, whole = rights.search_filters(agent)
    index, allowed = text_index(), rights_of(findable, whole)
    conversation_hits = index.conversations(terms=terms, rights=allowed, limit=LIMITS["customers"])
    hop_hits = index.handoffs(terms=terms, rights=allowed, limit=LIMITS["summaries"])
    message_hits = index.messages(terms=terms, rights=allowed, limit=messages)
    if len(message_hits) == messages and messages < MAX_MESSAGES:
        results.more_messages = messages + LIMITS["messages"]

    conversations = Conversation.objects.in_bulk([pk for pk, _ in conversation_hits])
    hops = (
        Handoff.objects.select_related("team")
        .only(
            "customer",
            "customer_name",
            "summary",
            "reason",
            "closing_note",
            "status",
            "to_agent",
            "conversation_id",
            "created_at",
            "closed_at",
            "team__name",
        )
        .in_bulk([pk for pk, _ in hop_hits])
    )
    messages = (
        Message.objects.select_related("conversation")
        .only(
            "conversation_id",
            "seq",
            "sender",
            "author_name",
            "body",
            "created_at",
            "conversation__customer",
            "conversation__customer_name",
        )
        .in_bulk([pk for pk, _ in message_hits])
    )
    opener = Opener(
        agent,
        set(conversations)
        | {hop.conversation_id for hop in hops.values() if hop.conversation_id}
        | {m.conversation_id for m in messages.values()},
        findable=findable,
        whole_q=whole,
    )

    for pk, score in conversation_hits:
        conversation = conversations[pk]
        target = opener.target(pk)
        if target is None:
            continue
        label = f"{conversation.customer_name} · {conversation.customer}".strip(" ·")
        results.customers.append(
            Hit(
                "customer",
                target,
                _customer_label(conversation),
                highlight(label, terms, width=None),
                conversation.closed_at or conversation.created_at,
                detail="open" if conversation.is_open else "closed",
                score=score,
            )
        )
    for pk, score in hop_hits:
        hop = hops[pk]
        if hop.conversation_id is None:
            continue  # nothing to open: its conversation was deleted
        if hop.status in rights.CLOSED:
            # A findable closed hop is in the viewer's history: its own card.
            url = f"{reverse('transcript', args=[hop.pk])}#hop-{hop.pk}"
            target = Target(url, hop.get_status_display(), read_only=True)
        else:
            target = opener.target(hop.conversation_id)
        if target is None:
            continue
        text = " — ".join(t for t in (hop.summary, hop.reason, hop.closing_note) if t)
        results.summaries.append(
            Hit(
                "summary",
                target,
                hop.customer_name or hop.customer,
                highlight(text, terms),
                hop.closed_at or hop.created_at,
                detail=f"{hop.team.name if hop.team else hop.to_agent} · "
                f"{hop.get_status_display()}",
                score=score,
            )
        )
    for pk, score in message_hits:
        message = messages[pk]
        target = opener.target(message.conversation_id, message.seq)
        if target is None:
            continue
        results.messages.append(
            Hit(
                "message",
                target,
                _customer_label(message.conversation),
                highlight(message.body, terms),
                message.created_at,
                detail=message.author_name or message.get_sender_display(),
                score=score,
            )
        )
    return results
