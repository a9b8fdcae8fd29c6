"""``manage.py create_console_user``: a person who can sign in to the console, with their
console profile (role and teams), in one step. The first admin of a new deployment:

    manage.py create_console_user admin --role admin --email admin@example.com

(the password is asked twice, or read from CONSOLE_USER_PASSWORD with --no-input).
"""

from __future__ import annotations

import getpass
import os

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from handoffs.models import Agent, Event, Role, Team


class Command(BaseCommand):
    help = (
        "Create a console user with their profile: --role agent|supervisor|admin (admin: "
        "also Django admin), --teams slugs (created if missing; admins serve every team)."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", choices=Role.values, default=Role.AGENT)
        parser.add_argument("--teams", default="", help="Comma-separated team slugs")
        parser.add_argument("--email", default="")
        parser.add_argument("--first-name", default="")
        parser.add_argument(
            "--no-input",
            action="store_true",
            help="Read the password from CONSOLE_USER_PASSWORD instead of asking",
        )

    def handle(self, *args, **options):
        username, role = options["username"], options["role"]
        user_model = get_user_model()
        if user_model.objects.filter(username=username).exists():
            raise CommandError(f"user {username!r} exists (edit them in Django admin)")
        slugs = [s.strip() for s in options["teams"].split(",") if s.strip()]
        password = self._password(options["no_input"])
        user = user_model(
            username=username,
            email=options["email"],
            first_name=options["first_name"] or username,
            is_staff=role == Role.ADMIN,
            is_superuser=role == Role.ADMIN,
        )
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        user.set_password(password)
        with transaction.atomic():
            user.save()
            agent = Agent.objects.create(user=user, role=role)
            teams = [
                Team.objects.get_or_create(
                    slug=slug, defaults={"name": slug.replace("-", " ").title()}
                )[0]
                for slug in slugs
            ]
            if role == Role.ADMIN and not teams:
                teams = list(Team.objects.all())
            agent.teams.set(teams)
            Event.objects.create(
                kind="agent.created",
                actor="system",
                data={"agent": username, "role": role, "via": "create_console_user"},
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Created {username} ({role}; teams: {', '.join(t.slug for t in teams) or 'none'})."
            )
        )

    def _password(self, no_input: bool) -> str:
        if no_input:
            password = os.environ.get("CONSOLE_USER_PASSWORD", "")
            if not password:
                raise CommandError("--no-input needs CONSOLE_USER_PASSWORD")
            return password
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("the passwords differ")
        return first


def _title(slug: str) -> str:
    return slug.replace("-", " ").title()
