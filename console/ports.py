"""Free TCP ports for the servers the tests and the benchmarks start.

Any free port by default (the kernel's pick), or one from a range named by an
environment variable (``TEST_PORTS``, ``BENCH_PORTS``: ``LOW-HIGH``), so several runs
sharing a machine each keep to their own ports.
"""

from __future__ import annotations

import collections
import os
import socket
import threading

_taken: set[int] = set()
_recent: collections.deque[int] = collections.deque(maxlen=8)
_lock = threading.Lock()  # servers are started from several threads at once


def free_port(range_variable: str = "", host: str = "127.0.0.1") -> int:
    """A port nothing listens on: any, or one of the range in ``range_variable``."""
    span = os.environ.get(range_variable, "") if range_variable else ""
    if not span:
        with socket.socket() as sock:
            sock.bind((host, 0))
            return sock.getsockname()[1]
    low, _, high = span.partition("-")
    with _lock:
        # Each port once while the range lasts, then again those free by now (a stopped
        # server's); a server still running holds its port, so bind() skips it.
        for round_ in (1, 2):
            for port in range(int(low), int(high or low) + 1):
                if port in _taken:
                    continue
                with socket.socket() as sock:
                    try:
                        sock.bind((host, port))
                    except OSError:
                        continue
                _taken.add(port)
                _recent.append(port)
                return port
            if round_ == 1:  # keep the last few: their servers may still be starting
                _taken.intersection_update(_recent)
    raise RuntimeError(f"no free port in {range_variable}={span}")
