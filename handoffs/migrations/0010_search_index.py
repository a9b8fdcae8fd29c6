"""The console's full-text index (``handoffs.search``): FTS5 on SQLite, tsvector on PostgreSQL.

Three things are searchable: messages (``body``), hops (the handoff summary, the reason,
the closing or transfer note and the customer's name) and conversations (the customer's
namespace and name). The database keeps the index current by itself on every write,
whoever makes it (the lifecycle, the admin, bulk loads, cascades):

- SQLite: one external-content FTS5 table per source (``search_message_fts`` ...), which
  stores only the index (the text stays in the source table), filled and cleaned by
  ``AFTER INSERT / UPDATE OF <columns> / DELETE`` triggers, the pattern the SQLite manual
  gives for external-content tables. Porter stemming over unicode61, like ``memory_fts``.
- PostgreSQL: a ``search`` column ``GENERATED ALWAYS AS (to_tsvector('english', ...))
  STORED`` on each source table with a GIN index; PostgreSQL recomputes it on every
  INSERT and UPDATE.

Django's model state doesn't know these objects; ``handoffs.search.index`` is their only
reader. Existing rows are indexed here ('rebuild' on SQLite; the generated column fills
itself on PostgreSQL).
"""

from django.db import migrations, models

# (source table, FTS table, indexed columns as the index sees them)
SOURCES = [
    ("handoffs_message", "search_message_fts", ["body"]),
    ("handoffs_handoff", "search_handoff_fts", ["summary", "reason", "closing_note", "customer_name"]),
    ("handoffs_conversation", "search_conversation_fts", ["customer", "customer_name"]),
]


def _sqlite_forward():
    statements = []
    for table, fts, columns in SOURCES:
        cols = ", ".join(columns)
        new = ", ".join(f"new.{c}" for c in columns)
        old = ", ".join(f"old.{c}" for c in columns)
        statements += [
            f"CREATE VIRTUAL TABLE {fts} USING fts5({cols}, content='{table}', "
            "content_rowid='id', tokenize='porter unicode61')",
            f"CREATE TRIGGER {fts}_ai AFTER INSERT ON {table} BEGIN "
            f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.id, {new}); END",
            f"CREATE TRIGGER {fts}_ad AFTER DELETE ON {table} BEGIN "
            f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.id, {old}); END",
            f"CREATE TRIGGER {fts}_au AFTER UPDATE OF {cols} ON {table} BEGIN "
            f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.id, {old}); "
            f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.id, {new}); END",
            f"INSERT INTO {fts}({fts}) VALUES ('rebuild')",
        ]
    return statements


def _sqlite_backward():
    statements = []
    for _table, fts, _columns in SOURCES:
        statements += [
            f"DROP TRIGGER IF EXISTS {fts}_ai",
            f"DROP TRIGGER IF EXISTS {fts}_ad",
            f"DROP TRIGGER IF EXISTS {fts}_au",
            f"DROP TABLE IF EXISTS {fts}",
        ]
    return statements


def _postgres_forward():
    statements = []
    for table, _fts, columns in SOURCES:
        text = " || ' ' || ".join(f"coalesce({c}, '')" for c in columns)
        statements += [
            f"ALTER TABLE {table} ADD COLUMN search tsvector "
            f"GENERATED ALWAYS AS (to_tsvector('english', {text})) STORED",
            f"CREATE INDEX {table}_search_gin ON {table} USING gin (search)",
        ]
    return statements


def _postgres_backward():
    statements = []
    for table, _fts, _columns in SOURCES:
        statements += [
            f"DROP INDEX IF EXISTS {table}_search_gin",
            f"ALTER TABLE {table} DROP COLUMN IF EXISTS search",
        ]
    return statements


def run(statements_by_vendor):
    def apply(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, lambda: [])():
            schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [("handoffs", "0009_inbox_read_state_time_zone")]

    operations = [
        migrations.AddIndex(
            model_name="message",
            index=models.Index(fields=["handoff", "seq"], name="message_hop_seq"),
        ),
        migrations.RunPython(
            run({"sqlite": _sqlite_forward, "postgresql": _postgres_forward}),
            run({"sqlite": _sqlite_backward, "postgresql": _postgres_backward}),
        )
    ]
