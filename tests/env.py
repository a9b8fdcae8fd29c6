"""Loaded early (``-p tests.env``): test-run defaults, set before Django reads settings."""

import os
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("DJANGO_DEBUG", "1")
# Many tests send wrong keys on purpose from one address (and in the PostgreSQL pass the
# failure count lives in the shared Redis cache): key-guessing throttling is tested on its
# own (tests/console/test_throttling.py), with its own limits.
os.environ.setdefault("BOT_AUTH_FAILURE_LIMIT", "100000")
# Uploaded attachments go to a throw-away folder (shared with the live Daphnes, which
# inherit this environment), never the checkout's media/.
os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="handoff-media-"))
# The serving process's own timer loop (SERVING_TIMERS, on by default in embedded mode)
# would fire timers and sweep presence in every test server; tests that need it set it.
os.environ.setdefault("SERVING_TIMERS", "0")
# The in-process tests race dozens of threads on PostgreSQL rows (tests/lifecycle/
# test_accept_race.py): each holds its own connection, more than a pool of 16 allows, so
# the test process itself runs unpooled. The scale-out tests' Daphnes use the pool, as
# production does (tests/scaleout/conftest.py).
os.environ.setdefault("DATABASE_POOL_MAX_SIZE", "0")
