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

Configuration comes from the environment: ``BARE_SQLITE_PATH`` (the embedded runs) or
``BARE_DATABASE_URL`` plus ``BARE_REDIS_URL`` (the scale-out runs: PostgreSQL and
channels-redis, several processes), and ``DJANGO_DEBUG`` (``1`` as the benchmark runs
the console).
"""

from __future__ import annotations

import json
import os
import threading
import time
from urllib.parse import parse_qs

import django
from django.conf import settings

_SQLITE = {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": os.environ.get("BARE_SQLITE_PATH", ""),
    "OPTIONS": {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": (
            "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA busy_timeout=20000;"
        ),
    },
}
# Scale-out baseline (bench/scaleout.py): PostgreSQL and channels-redis, as the console.
_DATABASE_URL = os.environ.get("BARE_DATABASE_URL", "")
_REDIS_URL = os.environ.get("BARE_REDIS_URL", "")
if _DATABASE_URL:
    import dj_database_url

    _DATABASE = dj_database_url.parse(_DATABASE_URL)
else:
    _DATABASE = _SQLITE
_LAYER = (
    {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [{"address": _REDIS_URL, "socket_timeout": 15}],
            "capacity": 1500,
            "expiry": 30,
        },
    }
    if _REDIS_URL
    else {"BACKEND": "channels.layers.InMemoryChannelLayer"}
)

settings.configure(
    DEBUG=os.environ.get("DJANGO_DEBUG", "") == "1",  # as the console's Daphne runs
    SECRET_KEY="bench-bare-asgi-not-a-secret",  # noqa: S106
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["channels"],
    MIDDLEWARE=[],
    USE_TZ=True,
    DATABASES={"default": _DATABASE},
    CHANNEL_LAYERS={"default": _LAYER},
    LOGGING_CONFIG=None,
)
django.setup()

from asgiref.sync import async_to_sync  # noqa: E402
from channels.db import database_sync_to_async  # noqa: E402
from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.db import DatabaseError, connection, transaction  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

GROUP = "bare"

_ID = (
    "BIGSERIAL PRIMARY KEY"
    if connection.vendor == "postgresql"
    else "INTEGER PRIMARY KEY AUTOINCREMENT"
)


def _create_table() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS bare_event "  # noqa: S608 - constant
                f"(id {_ID}, body TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)"
            )
    except DatabaseError:  # two processes created it at once (PostgreSQL): it exists
        pass
    connection.close()


# On a thread of its own: uvicorn imports the application inside its event loop, where
# Django refuses database calls.
_creator = threading.Thread(target=_create_table)
_creator.start()
_creator.join()


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


@database_sync_to_async
def _rows_after(after: int | None) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM bare_event")
        last = cursor.fetchone()[0]
        rows: list[str] = []
        if after is not None:
            cursor.execute(
                "SELECT body FROM bare_event WHERE id > %s AND id <= %s ORDER BY id", [after, last]
            )
            rows = [body for (body,) in cursor.fetchall()]
    return json.dumps({"last": last, "rows": rows})


class BareCatchupConsumer(AsyncWebsocketConsumer):
    """A reconnecting client's catch-up: the rows it missed, from the database, in order."""

    async def connect(self) -> None:
        await self.accept()
        after = parse_qs(self.scope["query_string"].decode()).get("after")
        await self.send(text_data=await _rows_after(int(after[0]) if after else None))


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
                path("ws/bare-catchup/", BareCatchupConsumer.as_asgi()),
                path("ws/bare/<slug:group>/", BareConversationConsumer.as_asgi()),
            ]
        ),
    }
)
