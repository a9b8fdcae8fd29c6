import os
import signal
import subprocess
import sys
import time

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from handoffs import demo
from handoffs.models import Handoff


class Command(BaseCommand):
    help = (
        "Serve the console with a seeded demo: people, teams, a bot key and escalations "
        "made through the memory API by the dakera SDK."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--no-serve", action="store_true", help="Seed against a running server and exit"
        )

    def handle(self, *args, **options):
        from dakera import DakeraClient

        setup = demo.ensure_people_and_bot()
        base = f"http://{options['host']}:{options['port']}"
        server = worker = None
        if not options["no_serve"]:
            # Retries webhooks and memory writes the on-commit kick could not deliver.
            worker = subprocess.Popen(  # noqa: S603
                [sys.executable, "manage.py", "run_worker"],
                cwd=settings.BASE_DIR,
                env=os.environ.copy(),
            )
            server = subprocess.Popen(  # noqa: S603
                [
                    sys.executable,
                    "-m",
                    "daphne",
                    "-b",
                    options["host"],
                    "-p",
                    str(options["port"]),
                    "console.asgi:application",
                ],
                cwd=settings.BASE_DIR,
                env=os.environ.copy(),
            )
        try:
            self._wait_ready(base, server)
            if not Handoff.objects.filter(customer=demo.SEED_CUSTOMER).exists():
                client = DakeraClient(base, api_key=setup.bot_key)
                demo.run_seed_scenario(client)
                demo.run_more_escalations(client)
                self.stdout.write("Seeded escalations through the memory API.")
            self._print_logins(base, setup)
            if server is not None:
                server.wait()
        except KeyboardInterrupt:
            pass
        finally:
            for process in (server, worker):
                if process is not None and process.poll() is None:
                    process.send_signal(signal.SIGINT)
                    process.wait(timeout=10)

    def _wait_ready(self, base, server):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if server is not None and server.poll() is not None:
                raise CommandError(f"daphne exited with status {server.returncode}")
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise CommandError(f"the console did not answer on {base}")

    def _print_logins(self, base, setup):
        out = self.stdout
        out.write("")
        out.write(self.style.SUCCESS(f"The handoff console is running on {base}/"))
        out.write(f"  Agent console:  {base}/        Admin: {base}/admin/")
        out.write("  Demo logins (username / password / role):")
        for username, password, role in setup.logins:
            out.write(f"    {username:<8} {password:<16} {role}")
        out.write(f"  Bot API key (tier1-bot, memory API at {base}/): {setup.bot_key}")
        out.write("  Press Ctrl-C to stop.")
