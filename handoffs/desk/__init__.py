"""The agents' desk: the queue, the handoff card, accept, the conversation page, presence.

Owns the agents' views, their reads (``selectors``) and their sockets (``consumers``).
May import ``lifecycle`` (for every write), ``realtime``, ``delivery``, ``memory``,
``models`` and ``pages``; never ``customers``, ``api`` or ``supervision``.
"""
