"""The API reference renders in Chromium from this origin alone."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_api_docs_render_with_no_request_leaving_the_machine(new_context, live_server_url):
    context = new_context()
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = context.new_page()
    page.goto(f"{live_server_url}/api/docs/")
    page.locator(".swagger-ui .opblock").first.wait_for()
    operations = page.locator(".swagger-ui .opblock").count()
    assert operations >= 20
    assert page.get_by_text("/v1/memory/recall", exact=True).first.is_visible()
    assert requested
    foreign = [url for url in requested if not url.startswith(live_server_url)]
    assert not foreign, foreign
