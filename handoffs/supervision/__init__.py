"""The supervisors' side: the live floor, reassigning, the transfer report and its charts,
offers and shift handovers (``routing``: the floor's offers, the routing report).

Owns the floor's reads and socket, the report's aggregation and CSV, and their pages.
Built on the desk (supervisors are agents with a role), so it may import ``desk`` and
everything below it.
"""
