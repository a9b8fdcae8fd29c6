"""Delivery of what a transaction queued: memory copies and signed webhooks (the durable
outboxes), the per-process kicker that applies them right after commit, and the worker
loop (``manage.py run_worker``) that retries them.

May import ``memory`` and ``models`` only.
"""
