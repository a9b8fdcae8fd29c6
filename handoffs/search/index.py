"""The console's full-text index behind one interface: SQLite FTS5 or PostgreSQL tsvector.

Made by migration ``handoffs.0010_search_index``, which says how each database keeps it
current on every write (triggers on SQLite, generated columns on PostgreSQL), so nothing
here writes. Every query takes the viewer's rights as a SQL condition on the hop table
(compiled from the ``Q`` that ``access.agents`` returns, so the rule is written once)
and applies it inside the query, before ranking and ``LIMIT``: a row the viewer may not
see never leaves the database.

Words are matched with stemming (porter on SQLite, the ``english`` configuration on
PostgreSQL) and all of a query's words must occur (AND), as in a help desk's search box.

SQL is put together only from this module's table names and the conditions Django
compiles from ``access``; every value (the query, ids, statuses) is a parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Q

from ..access.agents import HANDOVER_SEQ_SQL
from ..models import Handoff

HOP = "handoffs_handoff"
# How many of the newest visible matches are ranked (``TextIndex._ranked``).
WINDOW = 400
# SQLite's index tables and the triggers that keep them (see the migration).
FTS_TABLES = {
    "handoffs_message": ("search_message_fts", ["body"]),
    "handoffs_handoff": (
        "search_handoff_fts",
        ["summary", "reason", "closing_note", "customer_name"],
    ),
    "handoffs_conversation": ("search_conversation_fts", ["customer", "customer_name"]),
}


@dataclass(frozen=True)
class HopCondition:
    """A rights ``Q`` on ``Handoff`` as SQL over the unaliased ``handoffs_handoff`` table;
    ``sql`` is None when it can match nothing."""

    sql: str | None
    params: tuple[Any, ...]

    @classmethod
    def of(cls, q: Q) -> HopCondition:
        query = Handoff.objects.filter(q).query
        try:
            sql, params = query.get_compiler(connection=connection).compile(query.where)
        except EmptyResultSet:
            return cls(None, ())
        return cls(sql or "1 = 1", tuple(params))


@dataclass(frozen=True)
class Rights:
    """What one viewer may find: ``findable`` hops, and the ``whole`` ones among them
    whose conversation they read whole (the others up to the hop's handover)."""

    findable: HopCondition
    whole: HopCondition

    @property
    def nothing(self) -> bool:
        return self.findable.sql is None


class TextIndex:
    """One database's full-text queries; ``text_index()`` picks the one in use."""

    vendor = ""

    def match(self, table: str, alias: str) -> str:
        """The FROM clause and first WHERE term matching ``%s`` (the query) on ``table``."""
        raise NotImplementedError

    def rank(self, table: str, alias: str) -> str:
        """A rank expression over the matched rows: higher is better."""
        raise NotImplementedError

    def query_param(self, terms: list[str]) -> str:
        raise NotImplementedError

    def newest(self, table: str, alias: str) -> str:
        """An ORDER BY term walking the matches newest first (highest id)."""
        raise NotImplementedError

    def _ranked(
        self, *, table: str, alias: str, where: str, params: list[Any], window: int, limit: int
    ) -> list[tuple[int, float]]:
        """The ``limit`` best of the newest ``window`` matches on ``table`` that pass
        ``where`` (the rights), best first: ``(id, rank)``.

        Ranking every match of two common words in a million messages costs a scan of
        all of them; walking the matches newest first stops after ``window`` visible
        ones, so a search costs the same at any table size, and a help desk's search
        prefers the recent past where a word matches more than ``window`` rows.
        """
        sql = (
            f"SELECT id, score FROM (SELECT {alias}.id AS id, "  # noqa: S608
            f"{self.rank(table, alias)} AS score {self.match(table, alias)} AND {where} "
            f"ORDER BY {self.newest(table, alias)} LIMIT %s) AS window_ "
            "ORDER BY score DESC, id DESC LIMIT %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, window, limit])
            return [(pk, float(score)) for pk, score in cursor.fetchall()]

    # ------------------------------------------------------------ the three sources
    def messages(
        self, *, terms: list[str], rights: Rights, limit: int, window: int = WINDOW
    ) -> list[tuple[int, float]]:
        """``(message id, rank)``, best first, of the messages the viewer may read: in a
        conversation with a findable hop, and within that hop's horizon unless whole."""
        if not terms or rights.nothing:
            return []
        whole = rights.whole.sql or "1 = 0"
        horizon = HANDOVER_SEQ_SQL.format(hop=HOP)
        where = (
            f"EXISTS (SELECT 1 FROM {HOP} WHERE {HOP}.conversation_id = m.conversation_id "  # noqa: S608
            f"AND {rights.findable.sql} AND ({whole} OR m.seq <= {horizon}))"
        )
        params = [self.query_param(terms), *rights.findable.params, *rights.whole.params]
        return self._ranked(
            table="handoffs_message",
            alias="m",
            where=where,
            params=params,
            window=window,
            limit=limit,
        )

    def handoffs(
        self, *, terms: list[str], rights: Rights, limit: int, window: int = WINDOW
    ) -> list[tuple[int, float]]:
        """``(hop id, rank)`` of the findable hops whose summary, reason, closing or
        transfer note or customer name match."""
        if not terms or rights.nothing:
            return []
        params = [self.query_param(terms), *rights.findable.params]
        return self._ranked(
            table=HOP,
            alias=HOP,
            where=rights.findable.sql,
            params=params,
            window=window,
            limit=limit,
        )

    def conversations(
        self, *, terms: list[str], rights: Rights, limit: int, window: int = WINDOW
    ) -> list[tuple[int, float]]:
        """``(conversation id, rank)`` of conversations with a findable hop whose
        customer (namespace or name) matches."""
        if not terms or rights.nothing:
            return []
        where = (
            f"EXISTS (SELECT 1 FROM {HOP} WHERE {HOP}.conversation_id = c.id "  # noqa: S608
            f"AND {rights.findable.sql})"
        )
        params = [self.query_param(terms), *rights.findable.params]
        return self._ranked(
            table="handoffs_conversation",
            alias="c",
            where=where,
            params=params,
            window=window,
            limit=limit,
        )


class SqliteIndex(TextIndex):
    """FTS5 external-content tables (``search_*_fts``) ranked by bm25."""

    vendor = "sqlite"

    def match(self, table: str, alias: str) -> str:
        fts = FTS_TABLES[table][0]
        joined = f"JOIN {table} {alias} ON" if alias != table else f"JOIN {table} ON"
        return f"FROM {fts} {joined} {alias}.id = {fts}.rowid WHERE {fts} MATCH %s"

    def newest(self, table: str, alias: str) -> str:
        # FTS5 hands out its matches in rowid order: no sort, and LIMIT stops the walk.
        return f"{FTS_TABLES[table][0]}.rowid DESC"

    def rank(self, table: str, alias: str) -> str:
        # bm25() is negative, lower is better: flipped so that higher is better.
        return f"-bm25({FTS_TABLES[table][0]})"

    def query_param(self, terms: list[str]) -> str:
        # Query terms are word characters only (``memory.lexical.query_terms``); quoted,
        # none of them can be read as FTS5 syntax.
        return " AND ".join(f'"{term}"' for term in terms)


class PostgresIndex(TextIndex):
    """Generated ``search`` tsvector columns with GIN indexes, ranked by ``ts_rank_cd``."""

    vendor = "postgresql"

    def match(self, table: str, alias: str) -> str:
        named = f"{table} {alias}" if alias != table else table
        return (
            f"FROM {named}, plainto_tsquery('english', %s) AS query WHERE {alias}.search @@ query"
        )

    def newest(self, table: str, alias: str) -> str:
        return f"{alias}.id DESC"

    def rank(self, table: str, alias: str) -> str:
        return f"ts_rank_cd({alias}.search, query)"

    def query_param(self, terms: list[str]) -> str:
        return " ".join(terms)


def text_index() -> TextIndex:
    """The index of the database in use."""
    if connection.vendor == "postgresql":
        return PostgresIndex()
    if connection.vendor == "sqlite":
        return SqliteIndex()
    raise NotImplementedError(f"no full-text search for {connection.vendor}")


# ---------------------------------------------------------------- keeping SQLite's index
def ensure_sqlite_index(using: str = DEFAULT_DB_ALIAS, **_: Any) -> bool:
    """Recreate any missing SQLite trigger and rebuild that table's index; True if so.

    Django rebuilds a SQLite table for some schema changes (copy, drop, rename), which
    drops the triggers on it; run after every ``migrate`` (``post_migrate``), so a later
    migration of ``Message`` can't leave the index silently stale.
    """
    db = connections[using]
    if db.vendor != "sqlite":
        return False
    repaired = False
    with db.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")
        names = {row[0] for row in cursor.fetchall()}
        for table, (fts, columns) in FTS_TABLES.items():
            if fts not in names or table not in names:
                continue  # before the migration (or after rolling it back)
            cols = ", ".join(columns)
            new = ", ".join(f"new.{c}" for c in columns)
            old = ", ".join(f"old.{c}" for c in columns)
            triggers = {
                f"{fts}_ai": f"AFTER INSERT ON {table} BEGIN "  # noqa: S608
                f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.id, {new}); END",
                f"{fts}_ad": f"AFTER DELETE ON {table} BEGIN "  # noqa: S608
                f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.id, {old}); END",
                f"{fts}_au": f"AFTER UPDATE OF {cols} ON {table} BEGIN "  # noqa: S608
                f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.id, {old}); "
                f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.id, {new}); END",
            }
            missing = [name for name in triggers if name not in names]
            for name in missing:
                cursor.execute(f"CREATE TRIGGER {name} {triggers[name]}")
            if missing:
                cursor.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")  # noqa: S608
                repaired = True
    return repaired
