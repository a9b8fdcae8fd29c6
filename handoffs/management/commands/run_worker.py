import signal
import threading

from django.core.management.base import BaseCommand

from handoffs.delivery.worker import run_worker
from handoffs.lifecycle import offers, shifts, timers


class Command(BaseCommand):
    help = (
        "Deliver webhooks and queued memory writes, run the SLA timers (safe in several processes)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--poll", type=float, default=1.0, help="Seconds between passes")
        parser.add_argument("--once", action="store_true", help="One pass, then exit")

    def handle(self, *args, **options):
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        # SLA and unanswered alerts, offer timeouts and routing, automatic shift
        # handovers and reminders after every pass; each fires once (see their modules).
        run_worker(
            poll=options["poll"],
            stop=stop,
            once=options["once"],
            periodic=[timers.run_due, offers.run_due, shifts.run_due],
        )
