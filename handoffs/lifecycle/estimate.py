"""Sentiment and urgency for handoffs whose bot did not say.

Sentiment comes from VADER (a lexicon model that needs no download); urgency from the
summary's wording, nudged by importance and sentiment. Both are marked "estimated" on the
handoff so people know they are the console's guess, not the bot's.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from ..models import Sentiment, Urgency

SENTIMENT_ALIASES = {
    "positive": Sentiment.POSITIVE,
    "happy": Sentiment.POSITIVE,
    "satisfied": Sentiment.POSITIVE,
    "pleased": Sentiment.POSITIVE,
    "neutral": Sentiment.NEUTRAL,
    "calm": Sentiment.NEUTRAL,
    "mixed": Sentiment.NEUTRAL,
    "negative": Sentiment.FRUSTRATED,
    "frustrated": Sentiment.FRUSTRATED,
    "annoyed": Sentiment.FRUSTRATED,
    "upset": Sentiment.FRUSTRATED,
    "disappointed": Sentiment.FRUSTRATED,
    "confused": Sentiment.FRUSTRATED,
    "angry": Sentiment.ANGRY,
    "furious": Sentiment.ANGRY,
    "very_negative": Sentiment.ANGRY,
    "very negative": Sentiment.ANGRY,
    "hostile": Sentiment.ANGRY,
}
URGENCY_ALIASES = {
    "low": Urgency.LOW,
    "normal": Urgency.NORMAL,
    "medium": Urgency.NORMAL,
    "moderate": Urgency.NORMAL,
    "high": Urgency.HIGH,
    "urgent": Urgency.HIGH,
    "critical": Urgency.CRITICAL,
    "emergency": Urgency.CRITICAL,
}
CRITICAL_WORDS = re.compile(
    r"\b(outage|down for everyone|security|breach|hacked|fraud|legal|lawsuit|data loss|"
    r"emergency|compromised)\b",
    re.IGNORECASE,
)
HIGH_WORDS = re.compile(
    r"\b(urgent|urgently|asap|immediately|right now|cancel|cancellation|escalate|"
    r"furious|unacceptable|deadline|today|chargeback)\b",
    re.IGNORECASE,
)


@cache
def _analyzer() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment_from_score(score: float) -> Sentiment:
    """Map a polarity in [-1, 1] (VADER's compound, or a bot's number) to a label."""
    if score >= 0.35:
        return Sentiment.POSITIVE
    if score > -0.35:
        return Sentiment.NEUTRAL
    if score > -0.72:
        return Sentiment.FRUSTRATED
    return Sentiment.ANGRY


def estimate_sentiment(text: str) -> tuple[Sentiment, float]:
    """VADER's reading of ``text``: the label and the compound score."""
    score = _analyzer().polarity_scores(text)["compound"]
    return sentiment_from_score(score), score


def parse_sentiment(value: Any) -> tuple[Sentiment, float] | None:
    """A bot's sentiment (a word or a number in [-1, 1]); None if it isn't one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and -1.0 <= value <= 1.0:
        return sentiment_from_score(float(value)), float(value)
    if isinstance(value, str):
        label = SENTIMENT_ALIASES.get(value.strip().lower())
        if label is not None:
            nominal = {"positive": 0.6, "neutral": 0.0, "frustrated": -0.5, "angry": -0.9}
            return label, nominal[label]
    return None


def parse_urgency(value: Any) -> Urgency | None:
    if isinstance(value, str):
        return URGENCY_ALIASES.get(value.strip().lower())
    return None


def estimate_urgency(*, text: str, importance: float, sentiment: Sentiment) -> Urgency:
    """Urgency from wording first, then sentiment and importance.

    Handoff summaries are conventionally stored at importance 1.0, so importance alone
    never raises urgency; it only lowers it for items the bot marked unimportant.
    """
    if CRITICAL_WORDS.search(text):
        return Urgency.CRITICAL
    if HIGH_WORDS.search(text) or sentiment == Sentiment.ANGRY:
        return Urgency.HIGH
    if importance < 0.4:
        return Urgency.LOW
    return Urgency.NORMAL
