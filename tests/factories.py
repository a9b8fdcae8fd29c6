"""Test data made the way the product makes it: through the service layer."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.test import Client

from handoffs.lifecycle.intake import handoff_intake
from handoffs.models import Agent, Handoff


def escalate(team_slug: str = "billing-specialist", **fields: Any) -> Handoff:
    """A waiting handoff from ``tier1-bot`` to ``team_slug`` through the intake service,
    committed (so its broadcast goes out); a new customer and source session each time
    unless ``fields`` name them. ``fields`` override any other intake argument."""
    values = {
        "customer": f"cust-{uuid.uuid4().hex[:8]}",
        "source_session_id": f"sess-{uuid.uuid4().hex}",
        "from_agent": "tier1-bot",
        "to_agent": team_slug,
        "summary": "Customer was charged twice for one order.",
        "sentiment": "frustrated",
        "urgency": "high",
        **fields,
    }
    with transaction.atomic():
        return handoff_intake(**values).handoff


def logged_in(agent: Agent) -> Client:
    """A test client signed in as ``agent``."""
    client = Client()
    client.force_login(agent.user)
    return client
