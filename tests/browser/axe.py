"""axe-core checks for browser tests: ``assert_no_serious_violations(page)``.

axe-core comes vendored in the ``axe-playwright-python`` wheel (``axe.min.js``, read from
the installed package and injected with ``page.evaluate``, which the page's CSP does not
govern): nothing is downloaded at run time. Only "critical" and "serious" findings fail
a test; each is reported with its rule, help text and first offending nodes.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

FAILING = ("critical", "serious")


@cache
def _axe() -> Axe:
    return Axe()  # reads the wheel's axe.min.js once


def violations(page: Page, *, impacts: tuple[str, ...] = FAILING, **options: Any) -> list[str]:
    """The page's axe-core violations of these impacts, one readable line each."""
    results = _axe().run(page, options={"resultTypes": ["violations"], **options})
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(n["target"]) for n in v["nodes"][:3])
        for v in results.response["violations"]
        if v["impact"] in impacts
    ]


def assert_no_serious_violations(page: Page, *, where: str = "") -> None:
    """Fail with every critical or serious axe-core finding on ``page`` as it is now."""
    found = violations(page)
    assert not found, f"axe-core on {where or page.url}:\n" + "\n".join(found)
