"""The supervisors' side: the live floor, reassigning, the transfer report and its charts.

Owns the floor's reads and socket, the report's aggregation and CSV, and their pages.
Built on the desk (supervisors are agents with a role), so it may import ``desk`` and
everything below it.
"""
