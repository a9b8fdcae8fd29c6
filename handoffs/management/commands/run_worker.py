import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from handoffs.delivery.worker import run_worker
from handoffs.lifecycle import offers, presence, shifts, timers


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
        periodic = []
        # SLA and unanswered alerts, offer timeouts and routing, automatic shift handovers
        # and reminders after every pass; each fires once (see their modules). With
        # SERVING_TIMERS (embedded mode) the serving process runs them, so that their
        # pushes reach its pages (handoffs/realtime/background.py).
        if not settings.SERVING_TIMERS:
            periodic.extend([timers.run_due, offers.run_due, shifts.run_due])
        # Presence of dead processes' sockets (scale-out: the registry is in Redis).
        if settings.REDIS_URL:
            periodic.append(presence.sweep_presence)
        run_worker(poll=options["poll"], stop=stop, once=options["once"], periodic=periodic)
