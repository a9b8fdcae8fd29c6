"""The WebSocket Origin check: scheme, host and port, as Django's CSRF check does it.

A browser page may open a socket only from the console's own origin or from one listed
in ``DJANGO_CSRF_TRUSTED_ORIGINS``. Own origin means: the ``Host`` header passes
``DJANGO_ALLOWED_HOSTS``, and the ``Origin`` has that same host *and port* and the
scheme the socket came in on (``wss`` → ``https``, ``ws`` → ``http``; behind a TLS proxy
run Daphne with ``--proxy-headers`` or list the public origin as trusted). Channels'
``AllowedHostsOriginValidator`` compared the host alone, so another port or scheme on
an allowed host was let in. A socket without an ``Origin`` is refused too.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an http(s) origin, or None if it isn't one."""
    try:
        parts = urlsplit(url.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme]


def _allowed_hosts() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


def trusted(origin: tuple[str, str, int]) -> bool:
    """Listed in ``CSRF_TRUSTED_ORIGINS`` (``https://*.example.com`` covers subdomains)."""
    scheme, host, port = origin
    for entry in settings.CSRF_TRUSTED_ORIGINS:
        wildcard = "://*." in entry
        allowed = _origin(entry.replace("://*.", "://", 1) if wildcard else entry)
        if allowed is None or allowed[0] != scheme or allowed[2] != port:
            continue
        if host == allowed[1] or (wildcard and is_same_domain(host, "." + allowed[1])):
            return True
    return False


def same_origin(origin: tuple[str, str, int], *, host_header: str, secure: bool) -> bool:
    """The page came from this very server: same scheme, allowed host, same port."""
    if not host_header or not validate_host(split_domain_port(host_header)[0], _allowed_hosts()):
        return False
    scheme = "https" if secure else "http"
    own = _origin(f"{scheme}://{host_header}")
    return own is not None and own == origin


def origin_allowed(scope: dict[str, Any]) -> bool:
    headers = dict(scope.get("headers") or [])
    try:
        raw_origin = headers.get(b"origin", b"").decode("latin1")
        host_header = headers.get(b"host", b"").decode("latin1")
    except (AttributeError, UnicodeDecodeError):
        return False
    origin = _origin(raw_origin) if raw_origin else None
    if origin is None:
        return False
    secure = scope.get("scheme") in {"wss", "https"}
    return trusted(origin) or same_origin(origin, host_header=host_header, secure=secure)


class SameOriginValidator:
    """ASGI middleware: refuse a WebSocket whose Origin is not this console's own."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            raise ValueError("SameOriginValidator only guards WebSocket connections")
        if origin_allowed(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
