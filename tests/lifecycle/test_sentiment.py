"""The sentiment estimate, calibrated for support chat, against messages labelled by hand."""

from __future__ import annotations

from collections import Counter

import pytest

from handoffs.lifecycle.estimate import estimate_sentiment
from handoffs.models import Sentiment

from .sentiment_set import LABELLED

AGREEMENT = 0.85


def test_the_labelled_set_is_big_enough_and_covers_every_label():
    counts = Counter(label for _, label in LABELLED)
    assert len(LABELLED) >= 60
    assert set(counts) == set(Sentiment.values)
    assert min(counts.values()) >= 12


def test_at_least_85_percent_agree_with_the_labels():
    wrong = [
        (text, label, estimate_sentiment(text)[0])
        for text, label in LABELLED
        if estimate_sentiment(text)[0] != label
    ]
    agreement = 1 - len(wrong) / len(LABELLED)
    assert agreement >= AGREEMENT, f"{agreement:.0%} agree; wrong: {wrong}"


def test_plain_vader_would_not_pass():
    """The calibration is what passes: VADER's own lexicon and thresholds fall short."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from handoffs.lifecycle.estimate import sentiment_from_score

    plain = SentimentIntensityAnalyzer()
    agree = sum(
        sentiment_from_score(plain.polarity_scores(text)["compound"]) == label
        for text, label in LABELLED
    )
    assert agree / len(LABELLED) < AGREEMENT


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Are you still there? Please answer!", Sentiment.FRUSTRATED),  # the finding
        ("Can someone please just help me?", Sentiment.FRUSTRATED),
        ("Which payment methods do you accept?", Sentiment.NEUTRAL),
        ("I will file a chargeback if this isn't fixed today.", Sentiment.ANGRY),
        ("Thanks so much, that fixed it!", Sentiment.POSITIVE),
    ],
)
def test_pleas_questions_and_threats(text, label):
    assert estimate_sentiment(text)[0] == label
