"""History, search and the customer's past: the reads an agent uses to look back.

- ``index``: the database's own full-text index behind one interface (SQLite FTS5
  tables kept by triggers, PostgreSQL generated ``tsvector`` columns with GIN indexes;
  both made by migration ``handoffs.0010_search_index``), queried with the viewer's
  rights inside the SQL.
- ``finder``: the search an agent runs from the navigation (customers, handoff summaries
  and notes, messages), ranked, with the matching words highlighted from escaped text.
- ``history``: the closed hops an agent may read, filtered and ordered.
- ``past``: a customer's earlier conversations, as the card and the conversation show.

Every answer is limited by ``access.agents`` (``history_filter``, ``findable_filter``,
``whole_filter``, ``transcript_view``). Sits beside ``lifecycle`` in the layers (neither
imports the other): imports ``memory.lexical`` (query words), ``access`` and ``models``.
"""
