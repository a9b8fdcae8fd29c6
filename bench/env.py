"""The benchmark's environment: Django on a throw-away SQLite file, and live Daphne.

Every scenario gets its own fresh, migrated SQLite database under the run's work
directory in /tmp (``fresh_database``), so one scenario's data never skews another's
numbers and ``--only`` gives the same results as a full run. A ``Daphne`` subprocess
serves the console on the same file for the HTTP measurements.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from console import ports

ROOT = Path(__file__).resolve().parent.parent


# The console as it is deployed: DEBUG off (no debug cursor recording every query and,
# on SQLite, running a second query to quote its parameters for the log), plain HTTP on
# loopback. One secret key for this process and every server it starts (sessions signed
# here are read there). Scenarios that serve pages with their static files still ask
# for DEBUG themselves (``bench/search.py``).
PRODUCTION_ENV = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "bench-not-a-real-secret-0123456789abcdefghijklmnopqrstuvwxyz",
    "DJANGO_SECURE_SSL_REDIRECT": "0",
    "DJANGO_SECURE_COOKIES": "0",
    "DJANGO_HSTS_SECONDS": "0",
}


def setup_django(workdir: Path) -> None:
    """Point settings at a SQLite file in ``workdir`` and start Django (``PRODUCTION_ENV``).

    Must run before anything imports models. ``DATABASE_URL`` is cleared so a value
    left in the shell can never send benchmark writes to a real PostgreSQL database.
    """
    os.environ["SQLITE_PATH"] = str(workdir / "bench.sqlite3")
    os.environ.update(PRODUCTION_ENV)
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
    from handoffs.api.keys import bot_create

    _bot, raw_key = bot_create(name=name)
    return raw_key


def free_port() -> int:
    """A free TCP port on loopback: any, or one of ``BENCH_PORTS=LOW-HIGH`` when set."""
    return ports.free_port("BENCH_PORTS")


def asgi_server() -> str:
    """The ASGI server the HTTP scenarios run on (``BENCH_ASGI_SERVER``, default daphne)."""
    return os.environ.get("BENCH_ASGI_SERVER", "daphne")


def on_server(variant: str) -> str:
    """A row's variant name, marked with the ASGI server when it isn't Daphne."""
    server = asgi_server()
    return variant if server == "daphne" else f"{variant} [{server}]"


def server_command(app: str, port: int) -> list[str]:
    """The ASGI server command line: Daphne, or for a comparison run ``BENCH_ASGI_SERVER=
    uvicorn`` / ``granian`` (one process each; the console and its bare baseline alike)."""
    server = asgi_server()
    host, port_s = "127.0.0.1", str(port)
    if server == "uvicorn":
        return [sys.executable, "-m", "uvicorn", "--host", host, "--port", port_s, app]
    if server == "granian":
        return [sys.executable, "-m", "granian", "--interface", "asgi"] + [
            "--host",
            host,
            "--port",
            port_s,
            "--workers",
            "1",
            "--no-access-log",
            app,
        ]
    return [sys.executable, "-m", "daphne", "-b", host, "-p", port_s, app]


class Daphne:
    """``python -m daphne console.asgi:application`` on the current database.

    Use as a context manager; the process is started with the current ``SQLITE_PATH``
    and ``PRODUCTION_ENV`` (``extra_env`` overrides: ``bench/scaleout.py`` points it at
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

    APP = "console.asgi:application"

    def child_env(self) -> dict[str, str]:
        """The server process's environment: the console on the current database."""
        return {
            **os.environ,
            "SQLITE_PATH": os.environ.get("SQLITE_PATH", ""),
            "DATABASE_URL": "",
            **PRODUCTION_ENV,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PYTHONPATH": str(ROOT),
            **self.extra_env,
        }

    def __enter__(self) -> Daphne:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - daphne with this interpreter
                server_command(self.APP, self.port),
                cwd=ROOT,
                env=self.child_env(),
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


def run_driver(
    module: str,
    config: Any,
    *,
    silent: bool,
    what: str,
    flags: tuple[str, ...] = ("--drive",),
    child_env: dict[str, str] | None = None,
) -> Any:
    """Run ``python -m <module> --drive`` as the load-generating client in its own process.

    The config goes in as JSON on stdin and the samples come back as JSON on stdout; the
    child gets no ``DJANGO_SETTINGS_MODULE`` (it is a plain client, not the console)
    unless ``child_env`` says otherwise (``scaleout.ScaleOut.call`` runs set-up code).
    """
    if child_env is None:
        child_env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    child = subprocess.run(  # noqa: S603 - our own module, run with this interpreter
        [sys.executable, "-m", module, *flags],
        input=json.dumps(config),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=child_env,
        timeout=1800,
        check=False,
    )
    if not silent:
        sys.stderr.write(child.stderr)
    if child.returncode != 0:
        raise RuntimeError(f"the {what} failed:\n{child.stderr[-3000:]}")
    return json.loads(child.stdout)


def start_py_spy(pid: int, out: Path | str) -> subprocess.Popen | None:
    """For ``--profile``: py-spy samples process ``pid`` (all threads, 250 Hz) into
    ``out`` as collapsed stacks until ``stop_py_spy``; None when py-spy isn't installed."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        print("  [bench] --profile: py-spy not installed", file=sys.stderr)
        return None
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(  # noqa: S603 - py-spy on our own child, by its pid
        [py_spy, "record", "--nonblocking", "--threads", "-p", str(pid), "-r", "250"]
        + ["-f", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # attached before what is measured starts
    return process


def stop_py_spy(process: subprocess.Popen | None) -> None:
    if process is not None:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)


def standalone(name: str, run, drive, argv: list[str] | None = None) -> int:
    """``python -m bench.<name>``: one scenario alone, with the harness's flags.

    ``--drive`` (internal): be the scenario's client, ``drive(config)`` with the config
    as JSON on stdin and its result as JSON on stdout (see ``run_driver``).
    """
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--drive"]:
        print(json.dumps(asyncio.run(drive(json.load(sys.stdin)))))
        return 0
    from .cli import parse_args
    from .core import table, write_json

    args = parse_args(argv)
    args.workdir = Path(tempfile.mkdtemp(prefix="handoff-bench-", dir="/tmp"))
    setup_django(args.workdir)
    try:
        rows = run(args)
    finally:
        from django.db import connections

        connections.close_all()
        if args.keep:
            print(f"work directory kept: {args.workdir}")
        else:
            shutil.rmtree(args.workdir, ignore_errors=True)
    print()
    print(table(rows))
    for row in rows:
        print(f"  {row.variant}: {row.notes}")
    out = args.results_dir / f"{name}.json"
    write_json(out, rows, {"scenario": name, "quick": args.quick})
    print(f"results in {out}")
    return 1 if args.strict and any(r.ok is False for r in rows) else 0


class BareDaphne(Daphne):
    """``bench.bare_asgi:application`` in the same Daphne, on its own SQLite file (or, with
    ``extra_env`` from ``bench/scaleout.py``, on PostgreSQL and Redis)."""

    def __init__(
        self, workdir: Path, name: str = "bare-asgi", extra_env: dict[str, str] | None = None
    ) -> None:
        super().__init__(workdir, name, extra_env)
        self.db_path = workdir / "bare.sqlite3"

    APP = "bench.bare_asgi:application"

    def child_env(self) -> dict[str, str]:
        child = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DJANGO_SETTINGS_MODULE", "SQLITE_PATH")
        }
        child.update(BARE_SQLITE_PATH=str(self.db_path), PYTHONPATH=str(ROOT))
        child.update(self.extra_env)
        return child


def signed_in_agents(team: Any, count: int, prefix: str) -> tuple[list[Any], list[str]]:
    """``count`` agents of ``team`` with a signed-in session each (made directly, no password
    hashing, no login round trip): ``(agents, session cookies)`` for socket clients."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.auth.hashers import make_password

    from handoffs.models import Agent

    user_model = get_user_model()
    unusable = make_password(None)
    users = user_model.objects.bulk_create(
        user_model(username=f"{prefix}-{i:04d}", first_name=f"Agent {i}", password=unusable)
        for i in range(count)
    )
    agents = Agent.objects.bulk_create(Agent(user=user) for user in users)
    team.agents.add(*agents)
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    cookies = []
    for user in users:
        session = store_class()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        cookies.append(f"{settings.SESSION_COOKIE_NAME}={session.session_key}")
    return agents, cookies
