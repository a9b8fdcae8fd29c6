"""The published OpenAPI description covers every bot-facing route and is valid."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from jsonschema import Draft202012Validator

from handoffs.api.schema import openapi

CATCH_ALL = {r"^v1/", r"^api/"}


def routes(patterns=None, prefix: str = "") -> list[tuple[str, URLPattern]]:
    found = []
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        text = str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found += routes(pattern.url_patterns, prefix + text)
        else:
            found.append((prefix + text, pattern))
    return found


def openapi_path(django_path: str) -> str:
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", django_path)


def test_every_v1_and_api_route_is_in_the_schema():
    paths = openapi()["paths"]
    served = {
        openapi_path(text)
        for text, _ in routes()
        if text.startswith(("v1/", "api/")) and text not in CATCH_ALL
    }
    assert len(served) >= 15
    missing = sorted(served - set(paths))
    assert not missing, f"routes missing from the schema: {missing}"
    stale = sorted(p for p in paths if p not in served and not p.startswith("/health"))
    assert not stale, f"schema paths no route serves: {stale}"


def test_the_schemas_are_valid_json_schema():
    document = openapi()
    for name, schema in document["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema), name


def test_the_schema_is_served_and_rendered_without_a_key(client):
    served = client.get("/api/schema/")
    assert served.status_code == 200
    assert served.json()["openapi"] == "3.1.0"
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "https://" not in html and "http://" not in html


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_schema_routes_refuse_writes_in_json(client, path):
    response = client.post(path)
    assert response.status_code == 405
    assert response.json()["code"] == "METHOD_NOT_ALLOWED"
