"""The realtime plumbing: group names and every broadcast, the embedded channel layer,
the consumer base every socket builds on, and the receivers that close sockets.

The channel layer is a doorbell (at-most-once); the database is the record. Imports only
``models`` (and templates); what the floor shows is registered by ``supervision`` at
start-up. Socket routing is ``handoffs.routing``, beside ``handoffs.urls``.
"""
