"""Saved replies: canned answers agents insert with ``/shortcut`` or from the picker.

A reply is personal (its owner manages it) or a team's (supervisors and admins manage
it; the team's agents use it): ``access.agents.saved_reply_filter`` and
``may_manage_saved_reply`` decide. Its body may hold variables, written
``{{ name }}`` (spaces inside the braces optional):

=========================  ==============================================================
``{{ customer.name }}``     the customer's name as the bot gave it ("Dana Whitfield")
``{{ customer.first_name }}`` its first word ("Dana")
``{{ agent.name }}``        the agent's name as customers see it (first name)
``{{ team.name }}``         the hop's team ("Billing specialists")
``{{ topic }}``             the topic the bot stated when it escalated ("a double charge")
=========================  ==============================================================

They are filled on the server from the conversation (``fill``), as plain text (no
template engine ever runs a reply). A variable that is unknown, or has no value in
this conversation, is left in place and flagged; a message still holding ``{{ ... }}``
is refused (``unfilled``), so a raw placeholder never reaches a customer. Each use
(a message sent from a reply) is counted, for the supervisors' list sorted by use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from ..access import agents as rights
from ..models import Agent, Conversation, Event, SavedReply, Team
from . import messages
from .errors import HandoffError, HandoffNotFound

PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
VARIABLES = {
    "customer.name": "the customer's name",
    "customer.first_name": "the customer's first name",
    "agent.name": "your name as customers see it",
    "team.name": "the team's name",
    "topic": "the topic the bot stated",
}
SHORTCUT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
BODY_MAX = 5000


@dataclass(frozen=True)
class Problem:
    variable: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"variable": self.variable, "message": self.message}


@dataclass(frozen=True)
class Filled:
    text: str
    problems: list[Problem]


def unknown_variables(body: str) -> list[str]:
    return sorted({name for name in PLACEHOLDER.findall(body) if name not in VARIABLES})


def unfilled(text: str) -> list[str]:
    """The ``{{ ... }}`` placeholders still in a message (it may not be sent with them)."""
    return [m.group(0) for m in PLACEHOLDER.finditer(text or "")]


def refusal(text: object) -> str:
    """Why a message may not be sent as it is: it still holds a placeholder ("" if fine)."""
    left = unfilled(text) if isinstance(text, str) else []
    if not left:
        return ""
    return (
        f"Fill in or remove {', '.join(dict.fromkeys(left))} before sending: it has no "
        "value in this conversation."
    )


def fill(body: str, *, values: dict[str, str]) -> Filled:
    """Replace the known variables that have a value; flag the rest (left in place)."""
    problems: list[Problem] = []
    seen: set[str] = set()

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        value = (values.get(name) or "").strip()
        if name in VARIABLES and value:
            return value
        if name not in seen:
            seen.add(name)
            if name not in VARIABLES:
                problems.append(Problem(name, f"{{{{ {name} }}}} is not a variable; remove it."))
            else:
                problems.append(
                    Problem(
                        name,
                        f"This conversation has no value for {{{{ {name} }}}} "
                        f"({VARIABLES[name]}); type it in.",
                    )
                )
        return match.group(0)

    return Filled(PLACEHOLDER.sub(one, body), problems)


def _check(*, shortcut: Any, title: Any, body: Any) -> tuple[str, str, str]:
    errors = []
    shortcut = str(shortcut or "").strip().lstrip("/").lower()
    title = str(title or "").strip()
    body = str(body or "").strip()
    if not SHORTCUT_RE.match(shortcut):
        errors.append("Shortcut: 1-40 lower-case letters, digits, - or _ (typed after /).")
    if not title or len(title) > 120:
        errors.append("Title: 1-120 characters.")
    if not body or len(body) > BODY_MAX:
        errors.append(f"Text: 1-{BODY_MAX:,} characters.")
    unknown = unknown_variables(body)
    if unknown:
        known = ", ".join("{{ " + v + " }}" for v in VARIABLES)
        errors.append(
            f"Unknown variable{'s' if len(unknown) > 1 else ''} "
            f"{', '.join('{{ ' + u + ' }}' for u in unknown)}; use {known}."
        )
    if errors:
        raise HandoffError(" ".join(errors))
    return shortcut, title, body


def saved_reply_save(
    *,
    agent: Agent,
    reply: SavedReply | None = None,
    shortcut: Any,
    title: Any,
    body: Any,
    team: Team | None = None,
) -> SavedReply:
    """Create (``reply`` None) or update a saved reply; personal unless ``team`` is given.

    Raises HandoffNotFound (not theirs to manage), HandoffError (invalid, or the
    shortcut is taken in that scope: 409)."""
    shortcut, title, body = _check(shortcut=shortcut, title=title, body=body)
    owner_id = None if team is not None else agent.pk
    team_id = team.pk if team is not None else None
    if reply is not None and not rights.may_manage_saved_reply(
        agent, owner_id=reply.owner_id, team_id=reply.team_id
    ):
        raise HandoffNotFound("You can't change this saved reply.")
    if not rights.may_manage_saved_reply(agent, owner_id=owner_id, team_id=team_id):
        raise HandoffNotFound("Only supervisors manage a team's saved replies.")
    try:
        with transaction.atomic():
            if reply is None:
                reply = SavedReply(created_by=agent)
            reply.owner_id, reply.team_id = owner_id, team_id
            reply.shortcut, reply.title, reply.body = shortcut, title, body
            reply.updated_at = timezone.now()
            reply.save()
            Event.objects.create(
                kind="saved_reply.saved",
                actor=agent.memory_name,
                data={"saved_reply": reply.pk, "shortcut": shortcut, "team": team_id},
            )
    except IntegrityError:
        where = f"team {team.name}" if team is not None else "your replies"
        raise HandoffError(
            f"/{shortcut} is already used in {where}; choose another shortcut.",
            status=409,
            code="CONFLICT",
        ) from None
    return reply


def saved_reply_delete(*, agent: Agent, reply: SavedReply) -> None:
    if not rights.may_manage_saved_reply(agent, owner_id=reply.owner_id, team_id=reply.team_id):
        raise HandoffNotFound("You can't delete this saved reply.")
    with transaction.atomic():
        Event.objects.create(
            kind="saved_reply.deleted",
            actor=agent.memory_name,
            data={"saved_reply": reply.pk, "shortcut": reply.shortcut},
        )
        reply.delete()


def saved_reply_used(*, agent: Agent, reply_id: int | None) -> bool:
    """Count one use (a message sent from the reply); False if it isn't theirs to use."""
    if reply_id is None:
        return False
    with transaction.atomic():
        updated = (
            SavedReply.objects.filter(rights.saved_reply_filter(agent), pk=reply_id)
            .distinct()
            .values_list("pk", flat=True)
        )
        return bool(
            SavedReply.objects.filter(pk__in=list(updated)).update(
                use_count=F("use_count") + 1, last_used_at=timezone.now()
            )
        )


def message_post_counted(
    *,
    conversation: Conversation,
    sender: str,
    body: Any,
    client_id: Any,
    agent: Agent,
    reply_id: int | None,
) -> messages.PostResult:
    """``messages.message_post``; a message sent from a saved reply (``reply_id``) counts
    one use in the message's own transaction: once however often the send is retried,
    and before anyone sees the message."""
    with transaction.atomic():
        result = messages.message_post(
            conversation=conversation, sender=sender, body=body, client_id=client_id, agent=agent
        )
        if result.created:
            saved_reply_used(agent=agent, reply_id=reply_id)
    return result
