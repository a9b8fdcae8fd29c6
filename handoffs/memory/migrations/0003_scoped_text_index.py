"""Rebuild the SQLite text index with namespace-scoped terms (see lexical.scoped_text).

Every indexed word now carries its namespace's prefix, so a recall reads only its own
namespace's doclists. PostgreSQL's generated tsvector column is unchanged.
"""

import hashlib
import json
import re

from django.db import migrations

TOKEN_RE = re.compile(r"[^\W_]+", re.UNICODE)
INDEXED_METADATA = ("type", "kind", "agent", "from_agent", "to_agent")
LETTERS = "bcdfghjklmnpqrstvwxz"


def _token(agent_id):
    return "ns" + hashlib.blake2b(agent_id.encode(), digest_size=10).hexdigest()


def _prefix(agent_id):
    value = int.from_bytes(hashlib.blake2b(agent_id.encode(), digest_size=10).digest(), "big")
    letters = []
    for _ in range(19):
        value, digit = divmod(value, 20)
        letters.append(LETTERS[digit])
    return "".join(letters)


def _text(content, tags, metadata):
    tags, metadata = json.loads(tags or "[]"), json.loads(metadata or "{}")
    extra = [str(metadata[key]) for key in INDEXED_METADATA if metadata.get(key)]
    return " ".join([content, *tags, *extra])


def rebuild(scoped):
    def apply(apps, schema_editor):
        connection = schema_editor.connection
        if connection.vendor != "sqlite":
            return
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM memory_fts")
            cursor.execute("SELECT id, agent_id, content, tags, metadata FROM memory_memory")
            while batch := cursor.fetchmany(1000):
                rows = []
                for pk, agent_id, content, tags, metadata in batch:
                    text = _text(content, tags, metadata)
                    if scoped:
                        prefix = _prefix(agent_id)
                        text = " ".join(prefix + w for w in TOKEN_RE.findall(text.lower()))
                    rows.append((pk, _token(agent_id), text))
                with connection.cursor() as writer:
                    writer.executemany(
                        "INSERT INTO memory_fts(rowid, ns, body) VALUES (%s, %s, %s)", rows
                    )

    return apply


class Migration(migrations.Migration):
    dependencies = [("memory", "0002_text_index")]

    operations = [migrations.RunPython(rebuild(scoped=True), rebuild(scoped=False))]
