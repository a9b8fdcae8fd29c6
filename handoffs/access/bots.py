"""A bot's rights: its key's scope and namespace allowlist, and the conversations it owns.

Dakera's key model: a scope (``read`` ⊂ ``write`` ⊂ ``admin``) and an allowlist of
namespaces (``agent_id`` glob patterns such as ``user-*``; empty means every namespace).
A refusal is ``BotDenied`` (403 in the wire error shape, ``INSUFFICIENT_SCOPE`` or
``NAMESPACE_ACCESS_DENIED``, the codes the ``dakera`` SDK maps to ``AuthorizationError``).

A conversation (and every hop of it) belongs to the bot that started it
(``Conversation.bot``; admin may move it): only that bot gets its customer link, its
handoffs by id and its conversation API.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from ..models import Scope

if TYPE_CHECKING:
    from ..models import Bot, Conversation, Handoff

SCOPE_RANK = {Scope.READ: 0, Scope.WRITE: 1, Scope.ADMIN: 2}


class BotDenied(Exception):
    """The key may not do this: answered as 403 ``{"error", "code"}``."""

    status = 403

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def scope_covers(granted: str, required: str) -> bool:
    """``read`` ⊂ ``write`` ⊂ ``admin``; an unknown scope grants nothing."""
    return SCOPE_RANK.get(granted, -1) >= SCOPE_RANK[required]


def namespace_allowed(bot: Bot, namespace: str) -> bool:
    """Whether the key's allowlist matches ``namespace`` (an empty allowlist matches all)."""
    patterns = bot.namespace_patterns
    return not patterns or any(fnmatchcase(namespace, p) for p in patterns)


def is_restricted(bot: Bot) -> bool:
    """Limited to some namespaces (so calls that span every namespace are refused)."""
    return bool(bot.namespace_patterns)


def check(bot: Bot, *, scope: str, namespace: str | None = None) -> None:
    """Raise BotDenied unless the key has ``scope`` (and may touch ``namespace``)."""
    if not scope_covers(bot.scope, scope):
        raise BotDenied(
            f"this API key has {bot.scope} scope; this call needs {scope}",
            "INSUFFICIENT_SCOPE",
        )
    if namespace is not None and not namespace_allowed(bot, namespace):
        raise BotDenied(
            f"this API key may not access namespace {namespace!r}",
            "NAMESPACE_ACCESS_DENIED",
        )


def check_every_namespace(bot: Bot) -> None:
    """A call that spans every namespace (no ``agent_id``): only unrestricted keys."""
    if is_restricted(bot):
        raise BotDenied(
            "this API key is limited to some namespaces; name one with agent_id",
            "NAMESPACE_ACCESS_DENIED",
        )


def owner_id(handoff: Handoff) -> int | None:
    """The bot a hop belongs to: its conversation's bot, else the bot that created it."""
    if handoff.conversation_id is not None and handoff.conversation is not None:
        return handoff.conversation.bot_id
    return handoff.created_by_bot_id


def owns_conversation(bot: Bot, conversation: Conversation) -> bool:
    return conversation.bot_id is not None and conversation.bot_id == bot.pk


def owns_handoff(bot: Bot, handoff: Handoff) -> bool:
    owner = owner_id(handoff)
    return owner is not None and owner == bot.pk
