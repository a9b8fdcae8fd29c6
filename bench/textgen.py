"""Deterministic, realistic-looking support memories for the benchmarks.

Memories are built from sentence templates filled with words from a support-desk
vocabulary. Words are drawn with a Zipf-like skew (a few very common terms, a long
tail of rare ones), so full-text queries hit a realistic mix of frequent and rare
terms. The same seed always yields the same memories, so runs are comparable.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Iterator
from typing import Any


def _words(text: str) -> list[str]:
    return text.split()


TOPICS: dict[str, list[str]] = {
    "billing": _words(
        "billing invoice charge charged overcharge refund payment card credit debit receipt "
        "discrepancy proration plan price tax vat currency statement balance dispute "
        "chargeback coupon discount renewal annual monthly"
    ),
    "account": _words(
        "account login password reset email verification username profile locked "
        "two-factor authenticator sso session token permissions role owner admin invite "
        "deactivated merge duplicate"
    ),
    "shipping": _words(
        "order shipment delivery tracking courier parcel package address warehouse delayed "
        "lost damaged return label customs carrier dispatch pickup signature"
    ),
    "technical": _words(
        "error crash timeout latency outage bug api webhook integration sync upload export "
        "import csv report dashboard browser mobile android ios firmware update install"
    ),
    "subscription": _words(
        "subscription upgrade downgrade cancel cancellation trial seats license tier "
        "enterprise starter premium contract quota limit usage overage"
    ),
    "sentiment": _words(
        "frustrated angry polite patient confused happy satisfied upset urgent escalation "
        "manager complaint feedback apology thanks"
    ),
}
GENERIC = _words(
    "customer user client caller reports says asks wants needs mentions confirmed verified "
    "noticed since yesterday today week last month again still cannot unable working broken "
    "issue problem question request help support ticket case agent bot handoff summary "
    "context follow-up callback priority resolved pending waiting investigation team "
    "specialist tier billing-team checked logs screenshot attached steps reproduce"
)
TEMPLATES = [
    "{who} {verb} {a} {b} {c}.",
    "{who} {verb} the {a} is {adj} after the {b}.",
    "{who} has been a customer since {year}. Account ID: ACC-{num}.",
    "Charged ${amount} but plan is ${amount2}/mo; {who} {verb} a {a}.",
    "{who} {verb} {a} and {b}; {c} {d} still {adj}.",
    "Agent checked the {a}: {b} {c} shows {d}.",
    "Ticket #{num}: {a} {b} {c} for order ORD-{num2}.",
    "{who} is {adj} about the {a} {b} and wants a {c}.",
]
WHO = ["Customer", "User", "Client", "Caller", "The account owner", "The admin"]
VERBS = ["reports", "says", "asks about", "mentions", "confirmed", "complains about", "needs"]
ADJECTIVES = ["broken", "delayed", "missing", "wrong", "duplicated", "slow", "failing", "late"]
MEMORY_TYPES = ["episodic", "semantic", "procedural", "working"]

# A handful of recall queries mixing frequent and rare terms (and one that is mostly
# stopwords and misses), the shapes bots send in practice.
QUERIES = [
    "handoff summary billing issue",
    "refund for double charge on invoice",
    "password reset email not received",
    "order tracking shows delayed shipment",
    "api webhook timeout error",
    "customer wants to cancel subscription",
    "frustrated customer escalation manager",
    "export csv report dashboard broken",
]


class TextGen:
    """Seeded generator of memory payloads (``store_batch`` item dictionaries)."""

    def __init__(self, seed: int = 1234) -> None:
        self.random = random.Random(seed).random
        self.topics = list(TOPICS)
        # Zipf-like weights inside each topic: the k-th word has weight 1 / (k + 1).
        self.cumulative = {
            name: list(itertools.accumulate(1.0 / (k + 1) for k in range(len(words))))
            for name, words in TOPICS.items()
        }

    # random.Random's choice/randint are slow; one random() per draw is 3x faster.
    def _pick(self, seq: list[Any]) -> Any:
        return seq[int(self.random() * len(seq))]

    def _int(self, low: int, high: int) -> int:
        return low + int(self.random() * (high - low + 1))

    def _word(self, topic: str) -> str:
        if self.random() < 0.25:
            return self._pick(GENERIC)
        cumulative = self.cumulative[topic]
        return TOPICS[topic][bisect.bisect(cumulative, self.random() * cumulative[-1])]

    def sentence(self, topic: str) -> str:
        return self._pick(TEMPLATES).format(
            who=self._pick(WHO),
            verb=self._pick(VERBS),
            adj=self._pick(ADJECTIVES),
            a=self._word(topic),
            b=self._word(topic),
            c=self._word(topic),
            d=self._word(self._pick(self.topics)),
            year=self._int(2015, 2025),
            num=self._int(1000, 99999),
            num2=self._int(100000, 999999),
            amount=self._int(5, 999),
            amount2=self._int(5, 999),
        )

    def memory(self) -> dict[str, Any]:
        """One ``store`` item: content of 1 to 4 sentences, tags, type and importance."""
        topic = self._pick(self.topics)
        content = " ".join([self.sentence(topic) for _ in range(self._int(1, 4))])
        tags = [topic, self._pick(self.topics)][: self._int(0, 2)]
        item: dict[str, Any] = {
            "content": content,
            "memory_type": self._pick(MEMORY_TYPES),
            "importance": round(0.1 + 0.9 * self.random(), 2),
            "tags": list(dict.fromkeys(tags)),
            "metadata": {},
        }
        roll = self.random()
        if roll < 0.02:
            item["metadata"] = {"type": "handoff-note"}
        elif roll < 0.2:
            item["metadata"] = {"type": self._pick(["issue", "context", "note"])}
        return item

    def memories(self, count: int) -> Iterator[dict[str, Any]]:
        for _ in range(count):
            yield self.memory()
