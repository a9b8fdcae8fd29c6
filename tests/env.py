"""Loaded early (``-p tests.env``): test-run defaults, set before Django reads settings."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("DJANGO_DEBUG", "1")
# Many tests send wrong keys on purpose from one address (and in the PostgreSQL pass the
# failure count lives in the shared Redis cache): key-guessing throttling is tested on its
# own (tests/console/test_throttling.py), with its own limits.
os.environ.setdefault("BOT_AUTH_FAILURE_LIMIT", "100000")
# The serving process's own timer loop (SERVING_TIMERS, on by default in embedded mode)
# would fire timers and sweep presence in every test server; tests that need it set it.
os.environ.setdefault("SERVING_TIMERS", "0")
