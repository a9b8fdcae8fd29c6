"""Bots' API keys: create one (the raw key is shown once) and revoke it."""

from __future__ import annotations

import secrets

from django.utils import timezone

from ..models import Bot


def bot_create(*, name: str, callback_url: str = "") -> tuple[Bot, str]:
    """Create a bot and its key; returns the bot and the raw key (shown once)."""
    bot = Bot(name=name, callback_url=callback_url)
    raw_key = bot.set_new_key()
    bot.save()
    return bot, raw_key


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
