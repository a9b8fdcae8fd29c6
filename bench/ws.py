"""The benchmarks' WebSocket client: autobahn's asyncio client, in driver processes only.

The drivers (``python -m bench.<scenario> --drive``) never import Django: Django loads
the ``daphne`` app, which binds autobahn's txaio layer to Twisted, while these clients
use autobahn's asyncio flavour. So autobahn is imported inside the functions here.

Every console socket answers a connect with one snapshot frame, then sends events;
``SnapshotSocket`` is open once that snapshot has arrived and hands every later frame
to its factory's ``on_event(socket, payload)``.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from typing import Any


def factory(port: int, path: str, cookie: str | None, protocol: type, **options: Any) -> Any:
    """A client factory for ``ws://127.0.0.1:<port><path>`` with the page's Origin and the
    agent's session cookie. The client is measuring apparatus: no pure-Python UTF-8 check,
    no client pings (the server's are answered), patient closing handshakes; ``options``
    add to or override those (``openHandshakeTimeout``)."""
    from autobahn.asyncio.websocket import WebSocketClientFactory

    made = WebSocketClientFactory(
        f"ws://127.0.0.1:{port}{path}",
        origin=f"http://127.0.0.1:{port}",
        headers={"Cookie": cookie} if cookie else None,
    )
    made.protocol = protocol
    made.setProtocolOptions(
        **{
            "utf8validateIncoming": False,
            "autoPingInterval": 0,
            "closeHandshakeTimeout": 120,
            **options,
        }
    )
    return made


@functools.cache
def snapshot_socket_class() -> type:
    from autobahn.asyncio.websocket import WebSocketClientProtocol

    class SnapshotSocket(WebSocketClientProtocol):
        """Open once its snapshot arrived; then each frame goes to ``factory.on_event``.
        Closed before the snapshot: ``ready`` fails (the handshake was dropped); closed
        after it: ``factory.on_closed(socket, code, reason)``, if the factory has one."""

        def __init__(self) -> None:
            super().__init__()
            self.ready: asyncio.Future = asyncio.get_event_loop().create_future()

        def onMessage(self, payload: bytes, isBinary: bool) -> None:  # noqa: N802, N803
            if not self.ready.done():
                self.ready.set_result(None)
                return
            self.factory.on_event(self, payload)

        def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:  # noqa: N802, N803
            if not self.ready.done():
                self.ready.set_exception(RuntimeError(f"closed before its snapshot: {code}"))
            elif getattr(self.factory, "on_closed", None) is not None:
                self.factory.on_closed(self, code, reason)

    return SnapshotSocket


async def settle(http: Any, ports: list[int]) -> None:
    """Wait until the servers have run their queued connect / disconnect handlers: Django's
    sync code (those handlers, HTTP views) shares one thread-sensitive executor, so a
    plain HTTP request (``http``, an ``httpx.AsyncClient``) answers only after them."""
    await asyncio.sleep(0.5)
    for port in ports:
        await http.get(f"http://127.0.0.1:{port}/health/live", timeout=300)


async def open_snapshot_socket(
    made: Any,
    port: int,
    *,
    gate: asyncio.Semaphore,
    attempts: int,
    ready_timeout: float,
    on_dropped: Callable[[], None] | None = None,
) -> Any:
    """Connect ``made`` (a ``factory`` of ``snapshot_socket_class``) and wait for the
    snapshot, at most ``gate``'s handshakes in flight. A handshake the server drops is
    counted (``on_dropped``) and retried after 1, 2, 3 ... s. The socket's
    ``connect_s`` is its TCP connect → snapshot time."""
    loop = asyncio.get_running_loop()
    for attempt in range(attempts):
        async with gate:
            started = time.perf_counter()
            _transport, socket = await loop.create_connection(made, "127.0.0.1", port)
            try:
                await asyncio.wait_for(socket.ready, ready_timeout)
                socket.connect_s = time.perf_counter() - started
                return socket
            except RuntimeError:  # dropped during the handshake: back off, retry
                if on_dropped is not None:
                    on_dropped()
        await asyncio.sleep(1.0 + attempt)
    raise RuntimeError(f"{made.url}: no socket after {attempts} attempts")
