"""Loaded early (``-p tests.env``): test-run defaults, set before Django reads settings."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("DJANGO_DEBUG", "1")
