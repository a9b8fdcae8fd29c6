"""The scale-out environment for the benchmarks: PostgreSQL, Redis and N Daphnes.

As ``make run-scaleout`` deploys it (docs/deployment.md), minus circus: each Daphne
listens on its own port so the driver can put exactly half the sockets on each and
post to the first (an event then crosses processes through Redis for half the
receivers). Settings are the documented ones: ``DATABASE_URL`` and ``REDIS_URL``, no
code change; ``DATABASE_CONN_MAX_AGE`` stays 0 as docs/deployment.md advises.

- PostgreSQL: a new database ``bench_handoffs_<pid>`` on ``BENCH_POSTGRES_URL``
  (default ``postgres://root@127.0.0.1:5432/postgres``, the machine's trust-auth
  server), migrated, dropped afterwards.
- Redis: database ``BENCH_REDIS_DB`` (default 14) of ``BENCH_REDIS_URL`` (default
  ``redis://127.0.0.1:6379``), flushed before and after.
- Set-up code that needs the ORM (agents, sessions, conversations) runs in a child
  process with those settings (``ScaleOut.call``), since this process's Django is bound
  to the benchmark's SQLite file.

The bare baseline runs the same way: ``bench/bare_asgi.py`` with ``BARE_DATABASE_URL``
(same server, its own database) and ``BARE_REDIS_URL`` (channels-redis), N processes.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from . import env

ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://root@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "14"))


def _database_url(name: str) -> str:
    base, _, _old = ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


def available() -> str:
    """Empty when PostgreSQL and Redis answer; else why not (the variant is then skipped
    with that reason in the table, never silently)."""
    try:
        import psycopg
        import redis

        with psycopg.connect(ADMIN_URL, connect_timeout=3):
            pass
        redis.Redis.from_url(f"{REDIS_BASE}/{REDIS_DB}", socket_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not available here"
        return f"{exc.__class__.__name__}: {exc}"[:200]
    return ""


class ScaleOut:
    """One PostgreSQL database and one Redis database for a scenario; Daphnes on them."""

    def __init__(self, workdir: Path, name: str) -> None:
        self.workdir = workdir
        self.name = name
        # BENCH_DATABASE: one given database for everything (the bare baseline's one table,
        # ``bare_event``, lives beside the console's), dropped and re-created.
        given = os.environ.get("BENCH_DATABASE", "")
        self.db_name = given or f"bench_{name}_{os.getpid()}"
        self.bare_db_name = given or f"bench_{name}_bare_{os.getpid()}"
        self.database_url = _database_url(self.db_name)
        self.bare_database_url = _database_url(self.bare_db_name)
        self.redis_url = f"{REDIS_BASE}/{REDIS_DB}"
        self.servers: list[env.Daphne] = []

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> ScaleOut:
        self._flush_redis()
        for db in dict.fromkeys((self.db_name, self.bare_db_name)):
            self._admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            self._admin(f'CREATE DATABASE "{db}"')
        subprocess.run(  # noqa: S603 - our manage.py with this interpreter
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=env.ROOT,
            env=self.console_env(),
            check=True,
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for server in self.servers:
            server.stop()
        for db in dict.fromkeys((self.db_name, self.bare_db_name)):
            self._admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        self._flush_redis()

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql)

    def _flush_redis(self) -> None:
        import redis

        redis.Redis.from_url(self.redis_url).flushdb()

    # ------------------------------------------------------------ processes
    def console_env(self) -> dict[str, str]:
        child = {k: v for k, v in os.environ.items() if k != "SQLITE_PATH"}
        child.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            DJANGO_SETTINGS_MODULE="console.settings",
            **env.PRODUCTION_ENV,
            DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
            PYTHONPATH=str(env.ROOT),
        )
        return child

    def consoles(self, count: int) -> list[env.Daphne]:
        """``count`` console Daphnes on the shared database and Redis, started."""
        servers = [
            env.Daphne(self.workdir, f"{self.name}-console-{i}", extra_env=self.console_env())
            for i in range(count)
        ]
        return self._start(servers)

    def bares(self, count: int, extra_env: dict[str, str] | None = None) -> list[env.Daphne]:
        """``count`` bare Channels Daphnes (``bench.bare_asgi``) on PostgreSQL and Redis."""
        servers = [
            env.BareDaphne(
                self.workdir,
                name=f"{self.name}-bare-{i}",
                extra_env={
                    "BARE_DATABASE_URL": self.bare_database_url,
                    "BARE_REDIS_URL": self.redis_url,
                    **(extra_env or {}),
                },
            )
            for i in range(count)
        ]
        return self._start(servers)

    def _start(self, servers: list[env.Daphne]) -> list[env.Daphne]:
        for server in servers:
            self.servers.append(server)
            server.__enter__()
        return servers

    def call(self, target: str, *args: Any) -> Any:
        """Run ``module:function(*args)`` in a child process with this environment's
        settings (the ORM on PostgreSQL, the cache on Redis); its JSON result."""
        return env.run_driver(
            "bench.scaleout",
            list(args),
            silent=True,
            what=f"scale-out set-up {target}",
            flags=("--call", target),
            child_env=self.console_env(),
        )


def _call_main() -> int:
    """``python -m bench.scaleout --call module:function`` (arguments as JSON on stdin)."""
    import django

    django.setup()
    module_name, _, function = sys.argv[2].partition(":")
    result = getattr(importlib.import_module(module_name), function)(*json.load(sys.stdin))
    from django.db import connections

    connections.close_all()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] != ["--call"] or len(sys.argv) != 3:
        raise SystemExit("usage: python -m bench.scaleout --call module:function < args.json")
    raise SystemExit(_call_main())
