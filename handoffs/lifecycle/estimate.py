"""Sentiment and urgency for handoffs whose bot did not say, and for customers' messages.

Sentiment comes from VADER (a lexicon model that needs no download) calibrated for
support chat: VADER was built on social media, where "please", "help" and "yes" are
warm words; in a support chat they are pleas and plain answers. So the lexicon is
adjusted (``SUPPORT_LEXICON``) and two kinds of cue, read from the wording, cap the
score: *frustration* (still waiting, asking again, "hello??", pleas for help, things
that keep failing) and *anger* (threats to cancel or charge back, lawyers, insults,
shouting). ``tests/lifecycle/test_sentiment.py`` checks the result against a labelled
set of support messages (at least 85 % agreement). Urgency comes from the summary's
wording, nudged by importance and sentiment. Both are marked "estimated" on the handoff
so people know they are the console's guess, not the bot's.
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


# VADER valences (-4 .. +4) re-weighted for support chat.
SUPPORT_LEXICON = {
    "please": 0.0,  # a plea here, not politeness
    "help": 0.0,
    "accept": 0.0,
    "yes": 0.3,
    "sure": 0.3,
    "ok": 0.3,
    "okay": 0.3,
    "honestly": 0.0,
    "kidding": -1.0,
    "joke": -1.5,
    "useless": -2.6,
    "ridiculous": -2.5,
    "unacceptable": -2.6,
    "garbage": -2.6,
    "rubbish": -2.2,
    "scam": -3.0,
    "stole": -3.0,
    "stolen": -2.5,
    "robbery": -3.0,
    "chargeback": -2.5,
    "lawyer": -2.5,
    "lawsuit": -3.0,
    "crashing": -1.5,
    "crashes": -1.5,
    "broken": -1.8,
    "fixed": 1.2,
    "sorted": 1.2,
    "works": 0.8,
    "worked": 1.0,
    "perfect": 2.7,
    "error": -0.5,  # error codes are facts in a support chat
    "fake": -2.0,
}
# Cues a lexicon can't see: each caps the score (VADER's compound) from above.
FRUSTRATION_CAP = -0.45
ANGER_CAP = -0.75
FRUSTRATION_CUES = re.compile(
    r"\bstill\s+(waiting|not|no|nothing|haven'?t|hasn'?t|can'?t|isn'?t|doesn'?t|broken)\b"
    r"|\bwaiting\s+(for|since)\b|\bbeen waiting\b"
    r"|\b(second|third|fourth|fifth|\d+(st|nd|rd|th))\s+time\b|\bhow many times\b"
    r"|\bagain and again\b|\bover and over\b|\bkeeps?\s+\w+ing\b"
    r"|\b(are you|is anyone|anyone|anybody|somebody|someone)\b[^.!?]*"
    r"\b(there|answer|respond|reply)"
    r"|^\s*(hel+o+|hi|anyone|hey)\b\s*\?|^\s*anyone\b|\bis this (chat|thing) (even )?working"
    r"|\b(asked|explained|told you|said)\b[^.!?]*\b(twice|already|before|times)\b"
    r"|\b(is|are) (someone|anyone|anybody|you) (going to|gonna) (look|help|answer|reply)"
    r"|\bnothing (has )?changed\b|\bjust want (this|it) to work\b|\bugh\b"
    r"|\b(fed up|sick of|tired of|had enough|annoy\w*|frustrat\w*)\b"
    r"|\b(crash\w*|fail\w*|broke\w*|happen\w*|charged|down|stopped)\s+again\b"
    r"|\blost (my|all)\b"
    r"|\bplease\b[^.!?]*\b(answer|reply|respond|help|hurry|fix|need)"
    r"|\b(need|want)\b[^.!?]*\b(fixed|sorted|resolved)\b[^.!?]*\b(today|now|asap)\b"
    r"|\bhurry\b|\bso long\b|\btaking (so|this) long\b|\balready (told|explained|said)\b"
    r"|\bnobody\b|\bno one\b|\bnothing\b[^.!?]*\b(work|help)|\bnot working\b"
    r"|\bcan'?t (work|log ?in|use|access)\b|\bdon'?t understand why\b|\bdisappoint",
    re.IGNORECASE,
)
ANGER_CUES = re.compile(
    r"\bcancel\b[^.!?]*\b(now|immediately|today|right away)\b"
    r"|\bcancel (my|the) (account|subscription)\b[^.!?]*\b(done|immediately|now)\b"
    r"|\b(charge ?back|lawyer|lawsuit|legal action|sue you|small claims)\b"
    r"|\b(1|one)[- ]star\b|\bbad review\b|\breport(ing)? (you|this)\b"
    r"|\b(consumer protection|ombudsman|trading standards)\b|\bdisput\w+\b"
    r"|\brip-?off\b|\bgo to hell\b|\bfraud\w*\b|\bshut up\b|\bcomplete joke\b"
    r"|\b(get|put) me (a human|a manager|your manager|someone competent)\b"
    r"|\bcall(ing)? my (bank|lawyer)\b"
    r"|\byou people\b|\bworst\b|\bscam\b|\bdisgrace\b|\bjoke of a\b"
    r"|\b(stupid|idiots?|useless|incompetent|pathetic|garbage|rubbish)\b"
    r"|\bi'?m done with\b|\bfurious\b|\bhate\b|\bunacceptable\b|\bridiculous\b"
    r"|!{3,}|\?!|!\?",
    re.IGNORECASE,
)
REPEATED_MARKS = re.compile(r"[?!]{2,}")


@cache
def _analyzer() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    analyzer.lexicon.update(SUPPORT_LEXICON)
    return analyzer


def _shouting(text: str) -> bool:
    """Mostly capital letters over a few words (not an acronym or an order number)."""
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 10 and sum(c.isupper() for c in letters) / len(letters) > 0.7


def support_score(text: str) -> float:
    """VADER's compound for ``text`` with the support-chat lexicon, capped by the cues."""
    score = _analyzer().polarity_scores(text)["compound"]
    if score < 0.35 and (ANGER_CUES.search(text) or _shouting(text)):
        score = min(score, ANGER_CAP)
    elif FRUSTRATION_CUES.search(text) or REPEATED_MARKS.search(text):
        score = min(score, FRUSTRATION_CAP)
    return score


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
    """The calibrated reading of ``text`` (``support_score``): the label and the score."""
    score = support_score(text)
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
            return label, nominal_score(label)
    return None


def nominal_score(label: str) -> float:
    """The score a sentiment word stands for (a bot's or an agent's choice)."""
    return {"positive": 0.6, "neutral": 0.0, "frustrated": -0.5, "angry": -0.9}[label]


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
