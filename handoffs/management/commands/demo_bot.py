import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from handoffs.demo_bot import DemoBot, serve


class Command(BaseCommand):
    help = (
        "Run the demo bot: receives the console's webhooks and answers customers through "
        "the conversations API (DEMO_BOT_KEY and DEMO_BOT_SECRET in the environment)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument("--console", default="http://127.0.0.1:8000", help="Console URL")
        parser.add_argument("--name", default="tier1-bot", help="The bot's name")
        parser.add_argument("--team", default="billing-specialist", help="Escalate to")

    def handle(self, *args, **options):
        key, secret = settings.DEMO_BOT_KEY, settings.DEMO_BOT_SECRET
        if not key or not secret:
            raise CommandError("set DEMO_BOT_KEY and DEMO_BOT_SECRET (manage.py demo does)")
        logging.getLogger("handoffs.demo_bot").setLevel(logging.INFO)
        bot = DemoBot(
            console_url=options["console"].rstrip("/"),
            key=key,
            secret=secret,
            name=options["name"],
            team=options["team"],
        )
        server = serve(bot, options["host"], options["port"])
        self.stdout.write(f"Demo bot listening on http://{options['host']}:{options['port']}/")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
