"""The serving process freezes its loaded heap (console/gc_tuning.py, ``GC_FREEZE``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# How many objects the ASGI module leaves frozen once it is imported.
PROBE = "import gc, console.asgi; print(gc.get_freeze_count())"


def _frozen_in_serving_process(**env: str) -> int:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    environment.update(DJANGO_DEBUG="1", DATABASE_URL="", REDIS_URL="", **env)
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


@pytest.mark.pg
def test_the_loaded_application_is_frozen_out_of_full_collections():
    frozen = _frozen_in_serving_process()
    # Django, the apps, the URL resolvers, the models: over 100,000 objects here that a
    # full collection no longer walks.
    assert frozen > 50_000


@pytest.mark.pg
def test_gc_freeze_off_leaves_the_collector_alone():
    frozen = _frozen_in_serving_process(GC_FREEZE="0")
    assert frozen == 0
