"""``examples/seed_flow.py`` run as a bot would run it: a separate process, the real SDK,
against a live Daphne serving the console."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from handoffs.models import Handoff, Status
from tests.conftest import ROOT


@pytest.mark.pg
def test_the_python_seed_flow_example_runs_against_a_live_console(live_server_url, bot_key, teams):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "seed_flow.py"), "user-example"],
        env={**os.environ, "DAKERA_URL": live_server_url, "DAKERA_API_KEY": bot_key},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    printed = json.loads(result.stdout)
    context = printed["context"]
    assert len(context) == 3
    assert context[0]["id"] == printed["handoff_memory_id"]
    assert context[0]["type"] == "handoff"
    assert {c["type"] for c in context} == {"handoff", "issue", "context"}
    handoff = Handoff.objects.get(customer="user-example")
    assert handoff.status == Status.WAITING
    assert handoff.team.slug == "billing-specialist"
    assert handoff.memory_id == printed["handoff_memory_id"]
