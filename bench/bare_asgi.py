"""A bare Channels app: the fan-out floor ``intake_fanout`` compares the console with.

Served by the same Daphne as the console (``python -m daphne bench.bare_asgi:application``)
with the same SQLite settings and the same in-memory channel layer, but none of the
console's logic: no auth, no origin check, no templates, no memory store.

- ``POST /bare/post``: inserts the request body into one SQLite table in a transaction
  (IMMEDIATE, WAL, as the console does), then ``group_send``s it, after commit, to one
  group, and answers ``{"ok": true}``.
- ``/ws/bare/``: a consumer that joins that group, sends ``snapshot`` once connected,
  then forwards each event's text as-is.
- ``GET /health/live``: readiness for the runner.
- One-to-one variant (``chat_roundtrip``): ``POST /bare/post/<group>`` sends to the
  group ``bare.<group>`` only, and ``/ws/bare/<group>/`` joins that group alone, so each
  socket gets only its own conversation's events.

Configuration comes from the environment: ``BARE_SQLITE_PATH`` (required) and
``DJANGO_DEBUG`` (``1`` as the benchmark runs the console).
"""

from __future__ import annotations

import os
import time

import django
from django.conf import settings

settings.configure(
    DEBUG=os.environ.get("DJANGO_DEBUG", "") == "1",  # as the console's Daphne runs
    SECRET_KEY="bench-bare-asgi-not-a-secret",  # noqa: S106
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["channels"],
    MIDDLEWARE=[],
    USE_TZ=True,
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ["BARE_SQLITE_PATH"],
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": (
                    "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA busy_timeout=20000;"
                ),
            },
        }
    },
    CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
    LOGGING_CONFIG=None,
)
django.setup()

from asgiref.sync import async_to_sync  # noqa: E402
from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

GROUP = "bare"

with connection.cursor() as cursor:
    cursor.execute(
        "CREATE TABLE IF NOT EXISTS bare_event "
        "(id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, created_at REAL NOT NULL)"
    )
connection.close()


def health_live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "alive"})


@csrf_exempt
def post(request: HttpRequest, group: str = "") -> JsonResponse:
    text = request.body.decode()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bare_event (body, created_at) VALUES (%s, %s)", [text, time.time()]
        )
    target = f"{GROUP}.{group}" if group else GROUP
    async_to_sync(get_channel_layer().group_send)(target, {"type": "bare.event", "text": text})
    return JsonResponse({"ok": True})


class BareConsumer(AsyncWebsocketConsumer):
    groups = [GROUP]  # joined by Channels before connect()

    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data="snapshot")

    async def bare_event(self, event: dict) -> None:
        await self.send(text_data=event["text"])


class BareConversationConsumer(BareConsumer):
    """Joins only its own group, ``bare.<group>`` (one socket per conversation)."""

    groups: list[str] = []

    async def connect(self) -> None:
        self.groups = [f"{GROUP}.{self.scope['url_route']['kwargs']['group']}"]
        await self.channel_layer.group_add(self.groups[0], self.channel_name)
        await super().connect()


urlpatterns = [
    path("health/live", health_live),
    path("bare/post", post),
    path("bare/post/<slug:group>", post),
]

application = ProtocolTypeRouter(
    {
        "http": get_asgi_application(),
        "websocket": URLRouter(
            [
                path("ws/bare/", BareConsumer.as_asgi()),
                path("ws/bare/<slug:group>/", BareConversationConsumer.as_asgi()),
            ]
        ),
    }
)
