"""The published API description: ``/api/schema/`` (OpenAPI 3.1 JSON) and ``/api/docs/``."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from ..memory.http import public_json
from .schema import openapi


@public_json(("GET",))
def schema(request: HttpRequest) -> JsonResponse:
    return JsonResponse(openapi(), json_dumps_params={"indent": 1})


@public_json(("GET",))
def docs(request: HttpRequest) -> HttpResponse:
    """Swagger UI, served from this origin (drf-spectacular-sidecar's static files)."""
    return render(request, "handoffs/api/docs.html")
