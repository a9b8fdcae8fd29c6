"""The serving process's heap, frozen once it is loaded (``GC_FREEZE``).

CPython's full (generation 2) collection walks every tracked object in the process.
A Daphne serving the console holds a few hundred thousand of them from start-up alone
(Django, the URL resolvers, the models' metadata, compiled templates, the apps), none
of which ever becomes garbage, and each full collection walked them all: measured in
``bench.sustained_intake`` (16 bots, one Daphne), nine full collections in 30 s took up
to 148 ms each, and every request in flight waited for them: most of the POST p99.
``gc.freeze()`` moves everything alive at that moment into a permanent generation the
collector no longer scans; the longest pause in the same run fell to 15 ms.

Frozen objects are never collected, so this runs once, after the application is built
(``console.asgi``), when what exists is what the process keeps anyway. Cycles created
later are collected as before. ``GC_FREEZE=0`` turns it off.
"""

from __future__ import annotations

import gc

from django.conf import settings


def freeze_loaded_heap() -> int:
    """Collect once, then freeze what is left; returns how many objects were frozen."""
    if not settings.GC_FREEZE:
        return 0
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
