"""Lexical relevance behind one interface: SQLite FTS5 or PostgreSQL ``tsvector``.

The text index holds each memory's content plus its tags and ``metadata.type`` /
``metadata.kind`` words, so a query for "handoff summary" finds a memory marked as a
handoff even when its prose never says so. The index is created by migration
``memory.0002_text_index`` for the database in use.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import itertools
import math
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from django.db import connection

TOKEN_RE = re.compile(r"[^\W_]+", re.UNICODE)
# The start of a TOKEN_RE word: not preceded by a word character other than "_".
_WORD_START = r"(?<![^\W_])"
MAX_QUERY_TERMS = 32
# Metadata values that take part in text search (the PostgreSQL column lists the same).
INDEXED_METADATA = ("type", "kind", "agent", "from_agent", "to_agent")
CANDIDATES = 200

_STOPWORDS = (
    "a an and are as at be but by for from has have i in is it its me my of on or so "
    "that the their there this to was we were what when where which who will with you your"
)
STOPWORDS = frozenset(_STOPWORDS.split())


def query_terms(query: str) -> list[str]:
    """Distinct lower-case word terms of ``query``, in order, stopwords dropped."""
    seen: dict[str, None] = {}
    for token in TOKEN_RE.findall(query.lower()):
        if token not in STOPWORDS:
            seen.setdefault(token, None)
    return list(seen)[:MAX_QUERY_TERMS]


def index_text(*, content: str, tags: list[str], metadata: dict[str, Any]) -> str:
    """The text indexed for a memory: content, tags, and metadata's type and agent names."""
    extra = [str(metadata[key]) for key in INDEXED_METADATA if metadata.get(key)]
    return " ".join([content, *tags, *extra])


def namespace_token(agent_id: str) -> str:
    """One index token per namespace (the ``ns`` column; kept for inspection)."""
    return "ns" + hashlib.blake2b(agent_id.encode(), digest_size=10).hexdigest()


# Consonants only: glued in front of a word, the prefix leaves the porter stemmer's
# measure and vowel tests of the word unchanged, so the word stems as it would alone.
_PREFIX_LETTERS = "bcdfghjklmnpqrstvwxz"


def namespace_prefix(agent_id: str) -> str:
    """19 consonants (80 bits of the namespace's hash) prefixed to every indexed word.

    Each FTS5 term then belongs to one namespace, so a query reads only its own
    namespace's doclists: its cost follows the namespace's size, not the table's
    (``ns:X AND (a OR b)`` reads every namespace's ``a`` and ``b`` doclists, and
    bm25's IDF pass walks them again).
    """
    value = int.from_bytes(hashlib.blake2b(agent_id.encode(), digest_size=10).digest(), "big")
    letters = []
    for _ in range(19):
        value, digit = divmod(value, 20)
        letters.append(_PREFIX_LETTERS[digit])
    return "".join(letters)


def scoped_text(agent_id: str, text: str) -> str:
    """``text`` as the SQLite index stores it: each word behind the namespace prefix."""
    prefix = namespace_prefix(agent_id)
    return " ".join(prefix + word for word in TOKEN_RE.findall(text.lower()))


def index_memories(rows: list[tuple[int, str, str]]) -> None:
    """Add ``(pk, agent_id, text)`` rows to the SQLite index (PostgreSQL derives it)."""
    if connection.vendor != "sqlite" or not rows:
        return
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO memory_fts(rowid, ns, body) VALUES (%s, %s, %s)",
            [
                (pk, namespace_token(agent_id), scoped_text(agent_id, text))
                for pk, agent_id, text in rows
            ],
        )


def reindex_memories(rows: list[tuple[int, str, str]]) -> None:
    """Replace the SQLite index rows of ``(pk, agent_id, text)`` (after an update)."""
    if connection.vendor != "sqlite" or not rows:
        return
    with connection.cursor() as cursor:
        cursor.executemany("DELETE FROM memory_fts WHERE rowid = %s", [(pk,) for pk, _, _ in rows])
    index_memories(rows)


def lexical_candidates(
    *,
    agent_id: str,
    terms: list[str],
    base_sql: tuple[str, tuple] | None,
    limit: int = CANDIDATES,
) -> list[tuple[int, float, int | None]]:
    """Best lexical matches as ``(pk, score, matched)``, best first, higher scores better.

    ``matched`` is how many of ``terms`` the memory matches, counted by the SQLite index
    itself (``None`` on PostgreSQL: the caller counts with ``term_matcher``).
    ``base_sql`` is an optional ``SELECT id ...`` restricting the candidates (filters).
    """
    if not terms:
        return []
    if connection.vendor == "postgresql":
        return _postgres_candidates(agent_id=agent_id, terms=terms, base_sql=base_sql, limit=limit)
    return _sqlite_candidates(agent_id=agent_id, terms=terms, base_sql=base_sql, limit=limit)


def match_phrases(agent_id: str, terms: list[str]) -> list[str]:
    """One FTS5 ``MATCH`` expression per term: the term behind the namespace prefix."""
    prefix = namespace_prefix(agent_id)
    return ['body:"{}{}"'.format(prefix, term.replace('"', "")) for term in terms]


def _sqlite_candidates(
    *, agent_id: str, terms: list[str], base_sql: tuple[str, tuple] | None, limit: int
) -> list[tuple[int, float, int]]:
    """The ``limit`` memories matching the most terms, then the rarest ones.

    One statement reads each term's matches (rowids only, one ``MATCH`` per term) and
    the namespace's size; the score is BM25 with ``k1 = 0``: the sum of the matched
    terms' IDF, ``ln(1 + (N - n + 0.5) / (n + 0.5))`` with ``N`` the namespace's
    memories and ``n`` those matching the term (no term frequency, no length
    normalisation: memories are short and the ranking weighs coverage first). FTS5's
    ``bm25()`` over an ``OR`` of common words scored every one of thousands of matches
    to keep 200 and was most of a recall's time; reading rowids costs a fraction.
    """
    ids = "rowid"
    params: list[Any] = []
    sql = ""
    if base_sql is not None:
        # Read once for the statement (a list built once, not a plan that drives FTS5
        # one rowid at a time). The filters decide which memories compete, not the
        # terms' statistics: a memory left out comes back negated.
        sql = f"WITH allowed(id) AS ({base_sql[0]}) "
        ids = "CASE WHEN rowid IN allowed THEN rowid ELSE -rowid END"
        params.extend(base_sql[1])
    matches = f"SELECT group_concat({ids}) FROM memory_fts WHERE memory_fts MATCH %s"  # noqa: S608
    sql += "SELECT (SELECT count(*) FROM memory_memory WHERE agent_id = %s), "
    sql += ", ".join(f"({matches})" for _ in terms)
    params.append(agent_id)
    params.extend(match_phrases(agent_id, terms))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        total, *concatenated = cursor.fetchone()
    return best_matches(concatenated, total, limit, left_out=base_sql is not None)


def idf(total: int, matching: int) -> float:
    """BM25's inverse document frequency of a term ``matching`` of ``total`` memories."""
    total = max(total, matching)
    return math.log(1 + (total - matching + 0.5) / (matching + 0.5))


# Up to this many sets of terms, the memories on the cut are scored a set at a time.
_MAX_TERM_SETS = 64


def best_matches(
    concatenated: list[str | None], total: int, limit: int, *, left_out: bool = False
) -> list[tuple[int, float, int]]:
    """``(pk, score, matched)`` of the ``limit`` best memories matching some term: most
    terms matched first, then the highest sum of the matched terms' ``idf``, then the
    newest (highest pk).

    ``concatenated`` holds each term's matching pks as ``group_concat`` gives them
    (``"3,5,8"``; ``None`` for none); they stay strings until the best are chosen (the
    conversion of thousands of them cost more than the counting). With ``left_out``,
    the pks of memories the filters leave out come negated: they don't compete, but
    count in their terms' ``idf`` like every other match.
    """
    lists = [pks.split(",") if pks else [] for pks in concatenated]
    weights = [idf(total, len(pks)) for pks in lists]
    if left_out:
        lists = [[pk for pk in pks if not pk.startswith("-")] for pks in lists]
    matched: Counter[str] = Counter()
    for pks in lists:
        matched.update(pks)
    if not matched:
        return []
    # Most terms first; the memories matching as many terms as the limit-th one are on
    # the cut (often thousands of them): only those need their scores compared.
    ranked = sorted(matched, key=matched.__getitem__, reverse=True)
    cut = matched[ranked[min(limit, len(ranked)) - 1]]

    def fewer(pk: str) -> int:
        return -matched[pk]

    above = bisect.bisect_left(ranked, -cut, key=fewer)
    on_cut = ranked[above : bisect.bisect_right(ranked, -cut, key=fewer)]
    sets = [frozenset(pks) for pks in lists]

    def score(pk: str) -> float:
        return sum(w for pks, w in zip(sets, weights, strict=True) if pk in pks)

    best = sorted(((matched[pk], score(pk), int(pk)) for pk in ranked[:above]), reverse=True)
    best.extend(
        (cut, value, pk)
        for value, pk in _best_on_cut(on_cut, cut, sets, weights, score, limit - above)
    )
    return [(pk, value, count) for count, value, pk in best]


def _best_on_cut(
    pks: list[str],
    count: int,
    sets: list[frozenset[str]],
    weights: list[float],
    score: Callable[[str], float],
    room: int,
) -> list[tuple[float, int]]:
    """The ``room`` best ``(score, pk)`` of ``pks``, memories matching ``count`` terms
    each: a memory's score is that of its set of terms, so with few possible sets each
    set's memories come out of set intersections instead of a sum per memory."""
    if len(pks) <= room or math.comb(len(sets), count) > _MAX_TERM_SETS:
        return heapq.nlargest(room, ((score(pk), int(pk)) for pk in pks))
    remaining = set(pks)
    groups: dict[float, list[str]] = {}
    for combination in itertools.combinations(range(len(sets)), count):
        members = remaining.intersection(*(sets[t] for t in combination))
        if members:
            value = sum(weights[t] for t in combination)
            groups.setdefault(value, []).extend(members)
    best: list[tuple[float, int]] = []
    for value in sorted(groups, reverse=True):
        members = heapq.nlargest(room - len(best), map(int, groups[value]))
        best.extend((value, pk) for pk in members)
        if len(best) >= room:
            break
    return best


def _postgres_candidates(
    *, agent_id: str, terms: list[str], base_sql: tuple[str, tuple] | None, limit: int
) -> list[tuple[int, float, None]]:
    tsquery = " | ".join(terms)
    sql = (
        "SELECT m.id, ts_rank_cd(m.search, q) FROM memory_memory m, "
        "to_tsquery('english', %s) q WHERE m.agent_id = %s AND m.search @@ q"
    )
    params: list[Any] = [tsquery, agent_id]
    if base_sql is not None:
        sql += f" AND m.id IN ({base_sql[0]})"
        params.extend(base_sql[1])
    sql += " ORDER BY 2 DESC LIMIT %s"
    params.append(limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(pk, float(score), None) for pk, score in cursor.fetchall()]


def term_matcher(terms: list[str]) -> Callable[[str], set[str]]:
    """The query terms found in a text, for one query compiled once: call it on each
    candidate's text.

    A term matches a word it is a stem-prefix of, i.e. its stem occurs at the start of a
    word; one regular-expression search per term replaces a Python loop over every word.
    """
    patterns = [
        (
            term,
            re.compile(_WORD_START + re.escape(_stem(term))),
        )
        for term in terms
    ]

    def matched(text: str) -> set[str]:
        lowered = text.lower()
        return {term for term, pattern in patterns if pattern.search(lowered)}

    return matched


def _stem(term: str) -> str:
    return term if len(term) <= 4 else term[: max(4, len(term) - 2)]
