"""Lexical relevance behind one interface: SQLite FTS5 or PostgreSQL ``tsvector``.

The text index holds each memory's content plus its tags and ``metadata.type`` /
``metadata.kind`` words, so a query for "handoff summary" finds a memory marked as a
handoff even when its prose never says so. The index is created by migration
``memory.0002_text_index`` for the database in use.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from django.db import connection

TOKEN_RE = re.compile(r"[^\W_]+", re.UNICODE)
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
    """One index token per namespace, so FTS5 restricts a match to one agent_id."""
    return "ns" + hashlib.blake2b(agent_id.encode(), digest_size=10).hexdigest()


def index_memories(rows: list[tuple[int, str, str]]) -> None:
    """Add ``(pk, agent_id, text)`` rows to the SQLite index (PostgreSQL derives it)."""
    if connection.vendor != "sqlite" or not rows:
        return
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO memory_fts(rowid, ns, body) VALUES (%s, %s, %s)",
            [(pk, namespace_token(agent_id), text) for pk, agent_id, text in rows],
        )


def lexical_candidates(
    *, agent_id: str, terms: list[str], base_sql: tuple[str, tuple] | None
) -> list[tuple[int, float]]:
    """Best lexical matches as ``(pk, score)`` with higher scores better.

    ``base_sql`` is an optional ``SELECT id ...`` restricting the candidates (filters).
    """
    if not terms:
        return []
    if connection.vendor == "postgresql":
        return _postgres_candidates(agent_id=agent_id, terms=terms, base_sql=base_sql)
    return _sqlite_candidates(agent_id=agent_id, terms=terms, base_sql=base_sql)


def _sqlite_candidates(
    *, agent_id: str, terms: list[str], base_sql: tuple[str, tuple] | None
) -> list[tuple[int, float]]:
    match = "ns:{} AND ({})".format(
        namespace_token(agent_id),
        " OR ".join('body:"{}"'.format(term.replace('"', "")) for term in terms),
    )
    sql = "SELECT rowid, bm25(memory_fts, 0.0, 1.0) FROM memory_fts WHERE memory_fts MATCH %s"
    params: list[Any] = [match]
    if base_sql is not None:
        sql += f" AND rowid IN ({base_sql[0]})"
        params.extend(base_sql[1])
    sql += " ORDER BY 2 LIMIT %s"
    params.append(CANDIDATES)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        # bm25() is negative, lower is better: flip it so higher is better.
        return [(pk, -score) for pk, score in cursor.fetchall()]


def _postgres_candidates(
    *, agent_id: str, terms: list[str], base_sql: tuple[str, tuple] | None
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
    params.append(CANDIDATES)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(pk, float(score)) for pk, score in cursor.fetchall()]


def matched_terms(text: str, terms: list[str]) -> set[str]:
    """Query terms found in ``text`` (a term matches a word it is a stem-prefix of)."""
    words = set(TOKEN_RE.findall(text.lower()))
    found = set()
    for term in terms:
        stem = term if len(term) <= 4 else term[: max(4, len(term) - 2)]
        if term in words or any(w.startswith(stem) for w in words):
            found.add(term)
    return found
