"""Lexical relevance behind one interface: SQLite FTS5 or PostgreSQL ``tsvector``.

The text index holds each memory's content plus its tags and ``metadata.type`` /
``metadata.kind`` words, so a query for "handoff summary" finds a memory marked as a
handoff even when its prose never says so. The index is created by migration
``memory.0002_text_index`` for the database in use.
"""

from __future__ import annotations

import hashlib
import re
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
) -> list[tuple[int, float]]:
    """Best lexical matches as ``(pk, score)`` with higher scores better.

    ``base_sql`` is an optional ``SELECT id ...`` restricting the candidates (filters).
    """
    if not terms:
        return []
    if connection.vendor == "postgresql":
        return _postgres_candidates(agent_id=agent_id, terms=terms, base_sql=base_sql, limit=limit)
    return _sqlite_candidates(agent_id=agent_id, terms=terms, base_sql=base_sql, limit=limit)


def _sqlite_candidates(
    *, agent_id: str, terms: list[str], base_sql: tuple[str, tuple] | None, limit: int
) -> list[tuple[int, float]]:
    prefix = namespace_prefix(agent_id)
    match = " OR ".join('body:"{}{}"'.format(prefix, term.replace('"', "")) for term in terms)
    sql = "SELECT rowid, bm25(memory_fts, 0.0, 1.0) FROM memory_fts WHERE memory_fts MATCH %s"
    params: list[Any] = [match]
    if base_sql is not None:
        sql += f" AND rowid IN ({base_sql[0]})"
        params.extend(base_sql[1])
    sql += " ORDER BY 2 LIMIT %s"
    params.append(limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        # bm25() is negative, lower is better: flip it so higher is better.
        return [(pk, -score) for pk, score in cursor.fetchall()]


def _postgres_candidates(
    *, agent_id: str, terms: list[str], base_sql: tuple[str, tuple] | None, limit: int
) -> list[tuple[int, float]]:
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
        return [(pk, float(score)) for pk, score in cursor.fetchall()]


def term_matcher(terms: list[str]) -> Callable[[str], set[str]]:
    """``matched_terms`` for one query, compiled once: call it on each candidate's text.

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


def indexed_matcher(agent_id: str, terms: list[str]) -> Callable[[str], int]:
    """How many of ``terms`` match a memory, counted on its SQLite index body.

    The body is ``scoped_text``: the memory's ``index_text``, lower-cased, as
    ``TOKEN_RE`` words, each behind the namespace prefix. ``term_matcher`` counts a
    term where its stem starts at a word start of the lower-cased text; a stem is made
    of word characters only, so such a match is a ``TOKEN_RE`` word that starts with
    the stem: the same count, read with one substring test per term instead of a
    regular expression over the text (and without decoding the row's JSON).
    """
    prefix = " " + namespace_prefix(agent_id)
    needles = [" " + _stem(term) for term in terms]

    def count(body: str) -> int:
        words = (" " + body).replace(prefix, " ")
        return sum(1 for needle in needles if needle in words)

    return count


def matched_terms(text: str, terms: list[str]) -> set[str]:
    """Query terms found in ``text`` (a term matches a word it is a stem-prefix of)."""
    return term_matcher(terms)(text)
