"""The WebSocket Origin check compares scheme, host and port (finding 6 of issue 12):
another port or scheme on an allowed host is refused, as is a missing Origin; the
console's own origin and ``DJANGO_CSRF_TRUSTED_ORIGINS`` are let in."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from console.asgi import application
from tests import factories


def origin_allowed(scope: dict) -> bool:
    from console.origin import origin_allowed

    return origin_allowed(scope)


HOST = b"127.0.0.1:8000"


def scope(origin: bytes | None, host: bytes | None = HOST, scheme: str = "ws") -> dict:
    headers = [(b"host", host)] if host is not None else []
    if origin is not None:
        headers.append((b"origin", origin))
    return {"type": "websocket", "scheme": scheme, "headers": headers}


@pytest.mark.parametrize(
    ("origin", "host", "scheme", "allowed"),
    [
        (b"http://127.0.0.1:8000", HOST, "ws", True),
        (b"HTTP://127.0.0.1:8000", HOST, "ws", True),
        (b"http://localhost:8000", b"localhost:8000", "ws", True),
        (b"https://127.0.0.1", b"127.0.0.1", "wss", True),
        (b"https://127.0.0.1:443", b"127.0.0.1", "wss", True),
        # Another port on the same allowed host (another app on the machine):
        (b"http://127.0.0.1:9999", HOST, "ws", False),
        (b"http://127.0.0.1", HOST, "ws", False),
        # Another scheme on the same host and port:
        (b"https://127.0.0.1:8000", HOST, "ws", False),
        (b"http://127.0.0.1", b"127.0.0.1", "wss", False),
        # Another host, or a host header outside DJANGO_ALLOWED_HOSTS:
        (b"http://evil.example:8000", HOST, "ws", False),
        (b"http://evil.example", b"evil.example", "ws", False),
        (b"http://127.0.0.1.evil.example:8000", HOST, "ws", False),
        # No Origin, a null one, or not an http(s) origin:
        (None, HOST, "ws", False),
        (b"null", HOST, "ws", False),
        (b"file://", HOST, "ws", False),
        (b"http://127.0.0.1:notaport", HOST, "ws", False),
        (b"http://127.0.0.1:8000", None, "ws", False),
    ],
)
def test_origin_is_scheme_host_and_port(settings, origin, host, scheme, allowed):
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    settings.CSRF_TRUSTED_ORIGINS = []
    assert origin_allowed(scope(origin, host, scheme)) is allowed


def test_csrf_trusted_origins_are_let_in_exactly(settings):
    """Behind a TLS proxy the socket arrives as ws:// but the page is https://."""
    settings.ALLOWED_HOSTS = ["console.example.com"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://console.example.com", "https://*.example.org"]
    host = b"console.example.com"
    assert origin_allowed(scope(b"https://console.example.com", host))
    assert origin_allowed(scope(b"https://a.example.org", host))
    assert not origin_allowed(scope(b"http://console.example.com:8443", host))
    assert not origin_allowed(scope(b"https://console.example.com:8443", host))
    assert not origin_allowed(scope(b"http://a.example.org", host))
    assert not origin_allowed(scope(b"https://example.org.evil.net", host))


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("fresh_socket_counts")
@pytest.mark.parametrize(
    ("origin", "connects"),
    [
        (b"http://127.0.0.1:8000", True),
        (b"http://127.0.0.1:8001", False),
        (b"https://127.0.0.1:8000", False),
    ],
)
async def test_the_asgi_application_applies_it(make_agent, teams, origin, connects):
    agent = await sync_to_async(make_agent)("alice", teams=[teams["billing-specialist"]])
    client = await sync_to_async(factories.logged_in)(agent)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(
        application,
        "/ws/queue/",
        headers=[(b"cookie", cookie), (b"origin", origin), (b"host", HOST)],
    )
    try:
        connected, _ = await communicator.connect(timeout=3)
    finally:
        await communicator.disconnect()
    assert connected is connects
