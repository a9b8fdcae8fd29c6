"""The agents' desk: the queue, the handoff card, accept, the conversation page, presence;
history, read-only transcripts and search (``lookback``, reading from ``search``).

Owns the agents' views, their reads (``selectors``) and their sockets (``consumers``).
May import ``lifecycle`` (for every write), ``search``, ``realtime``, ``delivery``,
``memory``, ``models`` and ``pages``; never ``customers``, ``api`` or ``supervision``.
"""
