"""``manage.py check_memory``: does the configured memory server answer and take our key?

Exit status 0 when it does (or in embedded mode, when the database answers), 1 otherwise.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection


class Command(BaseCommand):
    help = (
        "Check the memory backend: in remote mode, whether DAKERA_URL answers /health and "
        "accepts DAKERA_API_KEY. Exits 1 on failure."
    )

    def handle(self, *args, **options):
        if not settings.DAKERA_URL:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1")
            except Exception as exc:  # noqa: BLE001 - any failure means not usable
                raise CommandError(
                    f"embedded memory: the database is not usable ({exc.__class__.__name__})"
                ) from exc
            self.stdout.write("memory: embedded (served from this database): ok")
            return

        from handoffs.memory.remote import get_remote_store

        report = get_remote_store().check()
        yes_no = {True: "yes", False: "no"}
        self.stdout.write(f"memory: remote Dakera at {report['url']}")
        self.stdout.write(f"  answers /health: {yes_no[report['reachable']]}")
        if report["reachable"]:
            status = report["server_status"] or "?"
            self.stdout.write(f"  healthy: {yes_no[report['healthy']]} (status: {status})")
        self.stdout.write(f"  API key accepted: {yes_no[report['key_accepted']]}")
        if not report["ok"]:
            raise CommandError(f"memory server not usable: {report['reason']}")
        self.stdout.write(self.style.SUCCESS("ok"))
