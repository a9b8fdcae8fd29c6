from django.core.management.base import BaseCommand, CommandError

from handoffs.api import keys
from handoffs.models import Bot, Scope


class Command(BaseCommand):
    help = (
        "Create a bot and print its API key (alone, on the last line). Shown once. "
        "By default the key reaches every namespace with write scope."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="The bot's agent name, e.g. tier1-bot")
        parser.add_argument("--callback-url", default="", help="Webhook URL for this bot")
        parser.add_argument("--rotate", action="store_true", help="Give an existing bot a new key")
        parser.add_argument(
            "--scope",
            choices=Scope.values,
            default=None,
            help="read ⊂ write ⊂ admin (default: write; with --rotate: unchanged)",
        )
        parser.add_argument(
            "--namespaces",
            default=None,
            help="Comma-separated namespace glob patterns the key may touch, e.g. 'user-*'; "
            "'' for every namespace (default: every namespace; with --rotate: unchanged)",
        )

    def handle(self, *args, **options):
        name = options["name"]
        scope, namespaces = options["scope"], options["namespaces"]
        existing = Bot.objects.filter(name=name).first()
        try:
            if existing is not None:
                if not options["rotate"]:
                    raise CommandError(f"bot {name!r} exists; pass --rotate to replace its key")
                keys.bot_set_reach(bot=existing, scope=scope, namespaces=namespaces)
                raw_key = existing.set_new_key()
                existing.revoked_at = None
                existing.save()
                bot = existing
            else:
                bot, raw_key = keys.bot_create(
                    name=name,
                    callback_url=options["callback_url"],
                    scope=scope or Scope.WRITE,
                    namespaces=namespaces,
                )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        reach = bot.namespaces or "every namespace"
        self.stdout.write(f"Scope {bot.scope}; namespaces: {reach}.")
        self.stdout.write(f"API key for {name} (store it now; it is not shown again):")
        self.stdout.write(raw_key)
