"""ASGI entry point: HTTP through Django, WebSockets through Channels.

Serve with ``daphne console.asgi:application``.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from console.api_handler import ApiASGIHandler, SplitHttp  # noqa: E402
from console.origin import SameOriginValidator  # noqa: E402
from handoffs.realtime.auth import SocketAuthMiddlewareStack  # noqa: E402
from handoffs.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # The bot API through its own, shorter handler (console/api_handler.py).
        "http": SplitHttp(django_asgi_app, ApiASGIHandler()),
        "websocket": SameOriginValidator(
            SocketAuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

if settings.SERVING_TIMERS:
    # Embedded mode: timers, offer routing's timeouts and sweep, automatic shift handovers
    # and the presence sweep run here, so their pushes reach the pages this process serves
    # (handoffs/realtime/background.py).
    from handoffs.lifecycle import offers, presence, shifts, timers  # noqa: E402
    from handoffs.realtime import background  # noqa: E402

    application = background.ServingTimers(
        application,
        [timers.run_due, offers.run_due, shifts.run_due, presence.sweep_presence],
    )

if settings.DATABASES["default"]["ENGINE"] == "console.db.sqlite3":
    # WAL checkpoints on a thread of their own, not in a request's COMMIT.
    from console.db.sqlite3 import checkpoint  # noqa: E402

    checkpoint.start(lambda: settings.DATABASES["default"]["NAME"], settings.SQLITE_CHECKPOINT_SECS)

# Everything loaded so far lives as long as the process: out of the collector's way
# (console/gc_tuning.py).
from console.gc_tuning import freeze_loaded_heap  # noqa: E402

freeze_loaded_heap()
