from django.core.management.base import BaseCommand, CommandError

from handoffs.api import keys
from handoffs.models import Bot


class Command(BaseCommand):
    help = "Create a bot and print its API key (alone, on the last line). Shown once."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The bot's agent name, e.g. tier1-bot")
        parser.add_argument("--callback-url", default="", help="Webhook URL for this bot")
        parser.add_argument("--rotate", action="store_true", help="Give an existing bot a new key")

    def handle(self, *args, **options):
        name = options["name"]
        existing = Bot.objects.filter(name=name).first()
        if existing is not None:
            if not options["rotate"]:
                raise CommandError(f"bot {name!r} exists; pass --rotate to replace its key")
            raw_key = existing.set_new_key()
            existing.revoked_at = None
            existing.save()
        else:
            _, raw_key = keys.bot_create(name=name, callback_url=options["callback_url"])
        self.stdout.write(f"API key for {name} (store it now; it is not shown again):")
        self.stdout.write(raw_key)
