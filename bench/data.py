"""Fast bulk loading of memories into the embedded store's tables.

``EmbeddedStore().store_batch`` runs at about 4,500 memories/s here (most of it the ORM
and, with ``DJANGO_DEBUG=1``, the debug cursor quoting every parameter of the bulk
INSERT): close to four minutes for a million rows on an idle machine. This loader writes
the very same rows with one ``executemany`` per 1,000-row transaction and fills the
full-text index through the store's own ``lexical.index_text`` / ``index_memories``.

``check_encoding`` proves the hand-written column values equal what Django itself
writes, and ``verify`` that the table and the index hold the same rows afterwards.

``bulk=True`` is for loads of hundreds of thousands of rows: it drops the table's
secondary indexes and recreates them afterwards (the same ``CREATE INDEX`` statements,
so the same indexes, only packed tighter than grown ones), and runs the loading
connection with ``synchronous=OFF`` and a larger page cache. The full-text index is
written exactly as the store writes it, 1,000 rows per transaction, so its segment
structure is the one a growing production database has.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import secrets
from collections.abc import Iterable, Iterator
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from handoffs.memory import lexical
from handoffs.memory.models import Memory

CHUNK = 1000
COLUMNS = (
    "id",
    "uid",
    "agent_id",
    "session_id",
    "memory_type",
    "content",
    "importance",
    "tags",
    "metadata",
    "created_at",
    "last_accessed_at",
    "access_count",
    "expires_at",
)
INSERT_SQL = "INSERT INTO memory_memory ({}) VALUES ({})".format(  # noqa: S608 - constants
    ", ".join(COLUMNS), ", ".join(["%s"] * len(COLUMNS))
)

# One memory's column values that don't depend on where it is stored:
# (memory_type, content, importance, tags JSON, metadata JSON, index text).
Prepared = tuple[str, str, float, str, str, str]


def prepare(item: dict[str, Any]) -> Prepared:
    """Encode a ``store`` item once; a prepared item can be stored many times."""
    return (
        item["memory_type"],
        item["content"],
        float(item["importance"]),
        json.dumps(item["tags"]),
        json.dumps(item["metadata"]),
        lexical.index_text(content=item["content"], tags=item["tags"], metadata=item["metadata"]),
    )


def stream(agent_id: str, items: Iterable[dict[str, Any]]) -> Iterator[tuple[str, Prepared]]:
    for item in items:
        yield agent_id, prepare(item)


def _db_datetime(value: dt.datetime) -> str:
    """SQLite's text form of an aware datetime, as Django stores it (naive UTC)."""
    return str(value.astimezone(dt.UTC).replace(tzinfo=None))


class _Uids:
    """``mem_`` + 24 hex digits like ``models.new_memory_id``, but increasing within a
    load (a random 8-digit run prefix, then a counter), so a million inserts append to
    the unique ``uid`` index instead of splitting random pages of it."""

    def __init__(self) -> None:
        self.prefix = f"mem_{secrets.token_hex(4)}"
        self.counter = itertools.count()

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


def _row(pk: int, uid: str, agent_id: str, prepared: Prepared, created: str) -> tuple:
    memory_type, content, importance, tags, metadata, _text = prepared
    return (
        pk,
        uid,
        agent_id,
        None,
        memory_type,
        content,
        importance,
        tags,
        metadata,
        created,
        created,
        0,
        None,
    )


def check_encoding() -> None:
    """Fail loudly if our column values differ from Django's for the same memory."""
    created = timezone.now() - dt.timedelta(days=3, microseconds=7)
    item = {
        "memory_type": "semantic",
        "content": "Customer ACC-1 reports a $1 refund, naïve café",
        "importance": 0.7,
        "tags": ["billing", "refund"],
        "metadata": {"type": "issue", "n": 1, "note": "ünïcode"},
    }
    uid = _Uids()()
    ours = _row(1, uid, "ns-check", prepare(item), _db_datetime(created))
    memory = Memory(
        pk=1,
        uid=uid,
        agent_id="ns-check",
        memory_type=item["memory_type"],
        content=item["content"],
        importance=item["importance"],
        tags=item["tags"],
        metadata=item["metadata"],
        created_at=created,
        last_accessed_at=created,
    )
    django_values = tuple(
        Memory._meta.get_field("session" if col == "session_id" else col).get_db_prep_save(
            getattr(memory, col), connection
        )
        for col in COLUMNS
    )
    if ours != django_values:
        raise AssertionError(f"bench row encoding drifted from Django's:\n{ours}\n{django_values}")
    if len(uid) != len(Memory._meta.get_field("uid").default()):
        raise AssertionError("bench uids no longer look like the store's")


def _next_pk() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM memory_memory")
        return cursor.fetchone()[0] + 1


def _secondary_indexes() -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = 'memory_memory' AND sql IS NOT NULL"
        )
        return cursor.fetchall()


def load(
    items: Iterable[tuple[str, Prepared]],
    total: int,
    *,
    bulk: bool = False,
    now: dt.datetime | None = None,
    spread_days: float = 90.0,
) -> int:
    """Insert ``total`` ``(agent_id, prepared)`` pairs in 1,000-row transactions.

    ``created_at`` runs evenly from ``spread_days`` ago up to ``now`` in insertion order,
    so recency varies as in a namespace that grew over months. Returns the row count.
    """
    now = now or timezone.now()
    step = dt.timedelta(days=spread_days) / max(total, 1)
    # Naive UTC, as Django stores it (see _db_datetime); str() of it is the column text.
    start = (now - dt.timedelta(days=spread_days)).astimezone(dt.UTC).replace(tzinfo=None)
    first_pk = _next_pk()
    uids = _Uids()
    indexes = _secondary_indexes() if bulk else []
    connection.ensure_connection()
    with connection.cursor() as cursor:
        if bulk:
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.execute("PRAGMA cache_size=-262144")
        for name, _sql in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    iterator = iter(items)
    done = 0
    try:
        while chunk := list(itertools.islice(iterator, CHUNK)):
            rows = [
                _row(
                    first_pk + done + i,
                    uids(),
                    agent_id,
                    prepared,
                    str(start + step * (done + i)),
                )
                for i, (agent_id, prepared) in enumerate(chunk)
            ]
            index = [
                (row[0], agent_id, prepared[5])
                for row, (agent_id, prepared) in zip(rows, chunk, strict=True)
            ]
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.executemany(INSERT_SQL, rows)
                lexical.index_memories(index)
            done += len(chunk)
    finally:
        with connection.cursor() as cursor:
            for _name, sql in indexes:
                cursor.execute(sql)
            if bulk:
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.execute("PRAGMA cache_size=-2000")
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return done


def verify(expected_total: int) -> None:
    """The memory table and the FTS index both hold exactly ``expected_total`` rows."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM memory_memory")
        memories = cursor.fetchone()[0]
        cursor.execute("SELECT COUNT(*) FROM memory_fts")
        indexed = cursor.fetchone()[0]
    if memories != expected_total or indexed != expected_total:
        raise AssertionError(
            f"expected {expected_total} memories, table has {memories}, index has {indexed}"
        )
