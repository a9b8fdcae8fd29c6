"""Bots' API keys: create one (the raw key is shown once), scope it, and revoke it."""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.utils import timezone

from ..models import Bot, Scope, split_namespaces, validate_namespaces


def _namespaces(namespaces: Iterable[str] | str | None) -> str:
    """The stored allowlist (comma-separated), validated; ValueError when malformed."""
    if namespaces is None:
        return ""
    text = namespaces if isinstance(namespaces, str) else ",".join(namespaces)
    try:
        validate_namespaces(text)
    except ValidationError as exc:
        raise ValueError(exc.messages[0]) from None
    return ", ".join(split_namespaces(text))


def bot_create(
    *,
    name: str,
    callback_url: str = "",
    scope: str = Scope.WRITE,
    namespaces: Iterable[str] | str | None = None,
) -> tuple[Bot, str]:
    """Create a bot and its key; returns the bot and the raw key (shown once).

    The default key reaches every namespace with ``write`` scope (what every key had
    before scopes existed); ``scope`` and ``namespaces`` (glob patterns) narrow it.
    Raises ValueError for an unknown scope or a malformed pattern.
    """
    if scope not in Scope.values:
        raise ValueError(f"scope must be one of {', '.join(Scope.values)}")
    bot = Bot(name=name, callback_url=callback_url, scope=scope, namespaces=_namespaces(namespaces))
    raw_key = bot.set_new_key()
    bot.save()
    return bot, raw_key


def bot_set_reach(
    *, bot: Bot, scope: str | None = None, namespaces: Iterable[str] | str | None = None
) -> Bot:
    """Change a key's scope and/or namespace allowlist (``""`` / ``[]``: every namespace)."""
    if scope is not None:
        if scope not in Scope.values:
            raise ValueError(f"scope must be one of {', '.join(Scope.values)}")
        bot.scope = scope
    if namespaces is not None:
        bot.namespaces = _namespaces(namespaces)
    Bot.objects.filter(pk=bot.pk).update(scope=bot.scope, namespaces=bot.namespaces)
    return bot


def bot_revoke(*, bot: Bot) -> None:
    """Revoke a bot's key: the next request with it is refused."""
    Bot.objects.filter(pk=bot.pk, revoked_at=None).update(revoked_at=timezone.now())


def bot_rotate_webhook_secret(*, bot: Bot) -> str:
    """Give the bot a new webhook signing secret; returns it (show it once: the old one
    stops verifying the next delivery)."""
    secret = secrets.token_hex(32)
    Bot.objects.filter(pk=bot.pk).update(webhook_secret=secret)
    bot.webhook_secret = secret
    return secret
