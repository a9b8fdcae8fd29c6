"""Bots' API keys: create one (the raw key is shown once) and revoke it."""

from __future__ import annotations

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
