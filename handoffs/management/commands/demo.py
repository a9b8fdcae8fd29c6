import os
import signal
import socket
import subprocess
import sys
import time

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from handoffs import demo
from handoffs.models import Handoff


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def stop_children(processes: list[subprocess.Popen], timeout: float = 10) -> None:
    """Stop the demo's console, bot and worker, newest first: SIGTERM (each stops cleanly
    on it), then SIGKILL after ``timeout``. Not SIGINT: a demo started in the background
    by a shell (``make run &``) has SIGINT ignored, and its children inherit that."""
    for process in reversed(processes):
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        # As Daphne binds: a port left in TIME_WAIT by the last run is free, a listener isn't.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


class Command(BaseCommand):
    help = (
        "Serve the console with a seeded demo: people, teams, a bot key, escalations "
        "made through the memory API by the dakera SDK, and the demo bot answering "
        "customers after a hand back."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--bot-port",
            type=int,
            default=0,
            help="The demo bot's webhook port (default: a free one)",
        )
        parser.add_argument(
            "--no-serve", action="store_true", help="Seed against a running server and exit"
        )

    def handle(self, *args, **options):
        from dakera import DakeraClient

        host = options["host"]
        base = f"http://{host}:{options['port']}"
        bot_port = None
        callback_url = ""
        if not options["no_serve"]:
            # Daphne that can't listen keeps running and says so in one log line; the
            # demo would then seed whatever else answers on the port. Refuse up front.
            if not port_is_free(host, options["port"]):
                raise CommandError(
                    f"{host}:{options['port']} is already in use (another `make run`?). "
                    "Stop it, or choose another port: make run PORT=8080"
                )
            bot_port = options["bot_port"] or free_port(host)
            callback_url = f"http://{host}:{bot_port}/webhooks"
        setup = demo.ensure_people_and_bot(callback_url=callback_url)
        processes: list[subprocess.Popen] = []
        server = None
        # `kill` (SIGTERM) stops the demo like Ctrl-C: its console, worker and bot with it.
        signal.signal(signal.SIGTERM, _interrupt)
        if not options["no_serve"]:
            env = {
                **os.environ,
                "CONSOLE_PUBLIC_URL": os.environ.get("CONSOLE_PUBLIC_URL") or base,
                "CONSOLE_DEMO_PAGES": os.environ.get("CONSOLE_DEMO_PAGES") or "1",
            }
            manage = [sys.executable, "manage.py"]
            # Delivers webhooks (to the demo bot too), retries memory writes, runs timers.
            worker = [*manage, "run_worker", "--poll", "0.5"]
            processes.append(subprocess.Popen(worker, cwd=settings.BASE_DIR, env=env))  # noqa: S603
            # The demo bot: answers customers after a hand back (webhooks in, API out).
            processes.append(
                subprocess.Popen(  # noqa: S603
                    [
                        *manage,
                        "demo_bot",
                        "--host",
                        host,
                        "--port",
                        str(bot_port),
                        "--console",
                        base,
                    ],
                    cwd=settings.BASE_DIR,
                    env={
                        **env,
                        "DEMO_BOT_KEY": setup.bot_key,
                        "DEMO_BOT_SECRET": setup.webhook_secret,
                    },
                )
            )
            server = subprocess.Popen(  # noqa: S603
                [
                    sys.executable,
                    "-m",
                    "daphne",
                    "-b",
                    host,
                    "-p",
                    str(options["port"]),
                    "console.asgi:application",
                ],
                cwd=settings.BASE_DIR,
                env=env,
            )
            processes.append(server)
        try:
            self._wait_ready(base, server)
            if not Handoff.objects.filter(customer=demo.SEED_CUSTOMER).exists():
                client = DakeraClient(base, api_key=setup.bot_key)
                demo.run_seed_scenario(client)
                demo.run_more_escalations(client)
                self.stdout.write("Seeded escalations through the memory API.")
            self._print_logins(base, setup, bot_port)
            if server is not None:
                server.wait()
        except KeyboardInterrupt:
            pass
        finally:
            stop_children(processes)

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

    def _print_logins(self, base, setup, bot_port):
        out = self.stdout
        out.write("")
        out.write(self.style.SUCCESS(f"The handoff console is running on {base}/"))
        out.write(f"  Agent console:  {base}/        Admin: {base}/admin/")
        out.write("  Demo logins (username / password / role):")
        for username, password, role in setup.logins:
            out.write(f"    {username:<8} {password:<16} {role}")
        out.write(f"  Bot API key (tier1-bot, memory API at {base}/): {setup.bot_key}")
        if bot_port:
            out.write(f"  Demo bot (answers after a hand back): webhooks on port {bot_port}")
            out.write(f"  Widget example page: {base}/demo/widget/")
        out.write("  The full loop: README, 'Walkthrough'. Press Ctrl-C to stop.")
