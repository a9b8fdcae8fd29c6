"""Static files under ASGI: served by WhiteNoise, everything else stays on the event loop."""

from __future__ import annotations

import pytest
from django.core.handlers.asgi import ASGIHandler

from console.middleware import StaticFilesMiddleware


def _chain(handler: ASGIHandler) -> list:
    """The middleware instances of a loaded handler, outermost first."""
    found, layer = [], handler._middleware_chain
    while hasattr(layer, "__wrapped__"):  # convert_exception_to_response(instance)
        found.append(layer.__wrapped__)
        layer = getattr(layer.__wrapped__, "get_response", None)
    return found


def test_under_asgi_it_runs_async_with_no_thread_hop_to_the_next_middleware():
    handler = ASGIHandler()
    ours = [m for m in _chain(handler) if isinstance(m, StaticFilesMiddleware)]
    assert len(ours) == 1
    assert ours[0].async_mode
    # The next middleware is called directly as a coroutine function, not wrapped in
    # async_to_sync (which a sync-only WhiteNoise needs).
    assert type(ours[0].get_response).__name__ != "AsyncToSync"


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_serves_static_files_and_passes_everything_else_through(async_client):
    css = await async_client.get("/static/handoffs/console.css")
    assert css.status_code == 200
    assert css["Content-Type"].startswith("text/css")
    assert b"".join(css.streaming_content).strip()

    missing = await async_client.get("/static/handoffs/no-such-file.css")
    assert missing.status_code == 404

    live = await async_client.get("/health/live")
    assert live.status_code == 200
    assert live.json()["status"] == "alive"
