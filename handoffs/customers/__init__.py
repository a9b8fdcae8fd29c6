"""The customer's side: the chat page behind the conversation's link, and its socket.

May import ``lifecycle``, ``realtime``, ``models`` and ``pages``; never ``desk``, ``api``
or ``supervision``.
"""
