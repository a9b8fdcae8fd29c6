"""The full-text index recall ranks with: FTS5 on SQLite, a tsvector on PostgreSQL.

Django's model state doesn't know these objects; ``handoffs.memory.lexical`` is their
only reader. SQLite's index is written by the store (it holds a namespace token the
database can't compute) and cleaned by a trigger, so deletes from anywhere (admin,
cascades, ``forget``) keep it true.
"""

from django.db import migrations

SQLITE_FORWARD = [
    "CREATE VIRTUAL TABLE memory_fts USING fts5(ns, body, tokenize='porter unicode61')",
    "CREATE TRIGGER memory_fts_delete AFTER DELETE ON memory_memory BEGIN "
    "DELETE FROM memory_fts WHERE rowid = old.id; END",
]
SQLITE_BACKWARD = ["DROP TRIGGER IF EXISTS memory_fts_delete", "DROP TABLE IF EXISTS memory_fts"]
POSTGRES_FORWARD = [
    "ALTER TABLE memory_memory ADD COLUMN search tsvector GENERATED ALWAYS AS ("
    "to_tsvector('english', content || ' ' || coalesce(tags::text, '') || ' ' || "
    "coalesce(metadata->>'type', '') || ' ' || coalesce(metadata->>'kind', '') || ' ' || "
    "coalesce(metadata->>'agent', '') || ' ' || coalesce(metadata->>'from_agent', '') || ' ' || "
    "coalesce(metadata->>'to_agent', ''))) STORED",
    "CREATE INDEX memory_search_gin ON memory_memory USING gin (search)",
]
POSTGRES_BACKWARD = [
    "DROP INDEX IF EXISTS memory_search_gin",
    "ALTER TABLE memory_memory DROP COLUMN IF EXISTS search",
]


def run(statements_by_vendor):
    def apply(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [("memory", "0001_initial")]

    operations = [
        migrations.RunPython(
            run({"sqlite": SQLITE_FORWARD, "postgresql": POSTGRES_FORWARD}),
            run({"sqlite": SQLITE_BACKWARD, "postgresql": POSTGRES_BACKWARD}),
        )
    ]
