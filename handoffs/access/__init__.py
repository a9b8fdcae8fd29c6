"""Who may see and do what: one module per kind of principal, asked by every entry point.

- ``bots``: a bot's key (scope ``read`` ⊂ ``write`` ⊂ ``admin`` and a namespace
  allowlist of glob patterns) and the conversations it owns. Asked by
  ``memory.http.bot_api`` for every memory, session, intake and conversation call.
- ``agents``: people (agents, supervisors, admins) by team, role and ownership. Asked by
  the desk's and the floor's pages and htmx endpoints, by their sockets when they open
  and again when a right changes (``rights.changed``), by each pushed chat frame, and by
  ``realtime.broadcast`` for the audience of a queue row.

- ``links``: signed, short-lived links to one attachment (for bots and the channels they
  relay to); holding an unexpired one is the right to that file.

Files follow their message: ``agents.may_see_message`` for people; the customer's link
for the customer; ``bots`` ownership (or a signed link) for bots.

Customers are not principals here: whoever holds a conversation's unguessable link may
use it while it is open (``customers``).

The answers are pure functions of the database's current state, so a right that ends
(transfer, hand back, reassign, a team or role change, deactivation) ends everywhere at
once. Sits between ``memory`` and ``pages`` in the layers: imports only ``models``.
"""
