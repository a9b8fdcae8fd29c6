"""The agents' desk: the queue, the handoff card, accept, the conversation page, presence,
offers and the end of shift; history, read-only transcripts and search (``lookback``,
reading from ``search``).

Owns the agents' views, their reads (``selectors``) and their sockets (``consumers``; the
desk socket every page opens, with the offer panel, in ``desk_socket``; offers' decline
and End shift in ``shift_views``).
May import ``lifecycle`` (for every write), ``search``, ``realtime``, ``delivery``,
``memory``, ``models`` and ``pages``; never ``customers``, ``api`` or ``supervision``.
"""
