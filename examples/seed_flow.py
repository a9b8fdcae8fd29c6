"""The seed flow of the handoff pattern, written against the real Python SDK.

The pattern's documentation writes it as ``from dakera import Dakera``,
``client.sessions.start(namespace=...)``, ``client.memory.store(...)`` and
``client.memory.recall(..., top_k=3)``. The ``dakera`` package on PyPI has no such names:
the client is ``DakeraClient`` and the calls are ``start_session``, ``store_memory``,
``end_session`` and ``recall`` (the namespace is the ``agent_id``, one per customer).

Run it against a console (``make run`` prints a bot key)::

    DAKERA_URL=http://127.0.0.1:8000 DAKERA_API_KEY=<bot key> python examples/seed_flow.py

It prints the recalled handoff context as JSON; the handoff appears in the
``billing-specialist`` queue of the console.
"""

from __future__ import annotations

import json
import os
import sys

from dakera import DakeraClient

CUSTOMER = "user-dave"


def tier1_bot_hands_off(client: DakeraClient, customer: str = CUSTOMER) -> str:
    """The source agent: store what it learned and the HANDOFF SUMMARY, end its session."""
    session = client.start_session(customer, metadata={"agent": "tier1-bot", "channel": "chat"})
    client.store_memory(
        customer,
        "User reports billing discrepancy: charged $299 but plan is $199/mo",
        importance=0.9,
        metadata={"type": "issue"},
        session_id=session["id"],
    )
    client.store_memory(
        customer,
        "User has been a customer since 2024. Account ID: ACC-4521.",
        importance=0.8,
        metadata={"type": "context"},
        session_id=session["id"],
    )
    summary = client.store_memory(
        customer,
        "Customer ACC-4521 (since 2024) reports $100 billing overcharge. Verified plan is "
        "$199/mo but last invoice shows $299. Customer tone: frustrated but polite. Needs "
        "refund or explanation.",
        importance=1.0,
        metadata={
            "type": "handoff",
            "from_agent": "tier1-bot",
            "to_agent": "billing-specialist",
            "sentiment": "frustrated",
            "urgency": "high",
        },
        session_id=session["id"],
    )
    client.end_session(session["id"], summary="Bot->human handoff: billing overcharge")
    return summary["id"]


def specialist_picks_up(client: DakeraClient, customer: str = CUSTOMER) -> list[dict]:
    """The target agent: a new session, then the handoff context, best first."""
    client.start_session(customer, metadata={"agent": "billing-specialist"})
    recalled = client.recall(customer, "handoff summary billing issue", top_k=3)
    return [
        {
            "id": m.id,
            "content": m.content,
            "importance": m.importance,
            "type": (m.metadata or {}).get("type"),
        }
        for m in recalled.memories
    ]


def main() -> int:
    url = os.environ.get("DAKERA_URL", "http://127.0.0.1:8000")
    key = os.environ.get("DAKERA_API_KEY", "")
    customer = sys.argv[1] if len(sys.argv) > 1 else CUSTOMER
    client = DakeraClient(url, api_key=key)
    try:
        handoff_id = tier1_bot_hands_off(client, customer)
        context = specialist_picks_up(client, customer)
    finally:
        client.close()
    print(json.dumps({"handoff_memory_id": handoff_id, "context": context}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
