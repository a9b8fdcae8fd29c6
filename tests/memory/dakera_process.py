"""A stand-in Dakera for remote-mode tests: the console's own embedded server, running
live in another Daphne process on its own SQLite file, with its own bot key.

The real Dakera ships only as a container image that can't run here; the embedded
server is wire-compatible with it (``docs/memory-api.md``), so it is the one
Dakera-compatible server a remote-mode test can talk to over the network.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT, LiveServer, free_port, start_daphne


@dataclass
class DakeraProcess:
    """A separate console process serving the memory API; can be stopped and restarted
    on the same port (same database, same key) to simulate an outage."""

    db_path: Path
    port: int
    key: str
    server: LiveServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        # Embedded mode, on its own database file, whatever the test run uses itself.
        return {
            "SQLITE_PATH": str(self.db_path),
            "DATABASE_URL": "",
            "DAKERA_URL": "",
            "DAKERA_API_KEY": "",
            "REDIS_URL": "",
        }

    def start(self) -> DakeraProcess:
        self.server = start_daphne(port=self.port, extra_env=self.env)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, "DJANGO_DEBUG": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def start_dakera(directory: Path) -> DakeraProcess:
    """Migrate a fresh database, create the ``dakera-client`` key, start the server."""
    (ROOT / ".pytest_cache").mkdir(exist_ok=True)
    process = DakeraProcess(db_path=directory / "dakera.sqlite3", port=free_port(), key="")
    manage(process.env, "migrate", "--noinput", "--verbosity", "0")
    process.key = manage(process.env, "create_bot_key", "dakera-client").strip().splitlines()[-1]
    return process.start()
