"""The benchmark's environment: Django on a throw-away SQLite file, and live Daphne.

Every scenario gets its own fresh, migrated SQLite database under the run's work
directory in /tmp (``fresh_database``), so one scenario's data never skews another's
numbers and ``--only`` gives the same results as a full run. A ``Daphne`` subprocess
serves the console on the same file for the HTTP measurements.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

ROOT = Path(__file__).resolve().parent.parent


def setup_django(workdir: Path) -> None:
    """Point settings at a SQLite file in ``workdir`` and start Django.

    Must run before anything imports models. ``DATABASE_URL`` is cleared so a value
    left in the shell can never send benchmark writes to a real PostgreSQL database.
    """
    os.environ["SQLITE_PATH"] = str(workdir / "bench.sqlite3")
    os.environ["DJANGO_DEBUG"] = "1"
    os.environ["DJANGO_SETTINGS_MODULE"] = "console.settings"
    os.environ["DATABASE_URL"] = ""
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def fresh_database(workdir: Path, name: str) -> Path:
    """Switch Django (and later Daphne children) to a new migrated SQLite file."""
    from django.core.management import call_command
    from django.db import connections

    path = workdir / f"{name}.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    connections.close_all()
    connections["default"].settings_dict["NAME"] = path
    os.environ["SQLITE_PATH"] = str(path)
    call_command("migrate", verbosity=0, interactive=False)
    return path


def bot_key(name: str = "bench-bot") -> str:
    """A new bot API key in the current database (shown once, as in production)."""
    from handoffs import services

    _bot, raw_key = services.bot_create(name=name)
    return raw_key


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Daphne:
    """``python -m daphne console.asgi:application`` on the current database.

    Use as a context manager; the process is started with the current ``SQLITE_PATH``
    and ``DJANGO_DEBUG=1`` (``extra_env`` overrides: ``bench/scaleout.py`` points it at
    PostgreSQL and Redis) and is stopped (by its own pid) on exit.
    """

    def __init__(
        self, workdir: Path, name: str = "daphne", extra_env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"{name}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.extra_env = extra_env or {}

    def __enter__(self) -> Daphne:
        env = {
            **os.environ,
            "SQLITE_PATH": os.environ.get("SQLITE_PATH", ""),
            "DATABASE_URL": "",
            "DJANGO_DEBUG": "1",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PYTHONPATH": str(ROOT),
            **self.extra_env,
        }
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "daphne",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "console.asgi:application",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited early; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/health/live", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"daphne did not become ready in {timeout}s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def run_driver(module: str, config: dict, *, silent: bool, what: str) -> dict:
    """Run ``python -m <module> --drive`` as the load-generating client in its own process.

    The config goes in as JSON on stdin and the samples come back as JSON on stdout; the
    child gets no ``DJANGO_SETTINGS_MODULE`` (it is a plain client, not the console).
    """
    child_env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    child = subprocess.run(  # noqa: S603 - our own module, run with this interpreter
        [sys.executable, "-m", module, "--drive"],
        input=json.dumps(config),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=child_env,
        timeout=1800,
    )
    if not silent:
        sys.stderr.write(child.stderr)
    if child.returncode != 0:
        raise RuntimeError(f"the {what} failed:\n{child.stderr[-3000:]}")
    return json.loads(child.stdout)
