"""circus hooks (deploy/circus.ini): one log line for each process that exits and each
process circus starts, so a crashed and restarted Daphne or worker shows in circusd's log.

circusd imports this module (the Makefile puts ``deploy/`` on its PYTHONPATH); a hook
that raised would only be logged by circus, but these never raise.
"""

from __future__ import annotations

import logging
import signal

logger = logging.getLogger("circus")


def _how(exit_code) -> str:
    """circus passes ``exit_code`` as ``Popen.returncode`` does: -N for signal N."""
    if exit_code is None:
        return "exited (status unknown)"
    try:
        exit_code = int(exit_code)
    except (TypeError, ValueError):
        return f"exited ({exit_code})"
    if exit_code < 0:
        try:
            return f"was killed by {signal.Signals(-exit_code).name}"
        except ValueError:
            return f"was killed by signal {-exit_code}"
    return f"exited with status {exit_code}"


def log_exit(watcher, arbiter, hook_name, **info) -> bool:
    """``after_reap``: a process of this watcher ended."""
    stopping = watcher.is_stopping() if hasattr(watcher, "is_stopping") else False
    what = "stopped" if stopping else "will be restarted" if watcher.respawn else "not restarted"
    logger.warning(
        "%s: process %s %s; %s",
        watcher.name,
        info.get("process_pid", "?"),
        _how(info.get("exit_code")),
        what,
    )
    return True


def log_spawn(watcher, arbiter, hook_name, **info) -> bool:
    """``after_spawn``: circus started a process of this watcher."""
    logger.warning("%s: started process %s", watcher.name, info.get("pid", "?"))
    return True
