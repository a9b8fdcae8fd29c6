"""Text namespaces on the wire (embedded mode): ``/v1/namespaces...``.

Ranking is lexical (``documents``): no embeddings in embedded mode. Scopes: listing,
reading and querying need read; creating, configuring, upserting and deleting need write.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from . import documents
from .http import bot_api, json_body


@bot_api(("GET", "POST"))
def namespaces(request: HttpRequest) -> JsonResponse:
    """``GET /v1/namespaces`` (read) lists; ``POST`` (write) creates, 409 if it exists."""
    if request.method == "GET":
        return JsonResponse(documents.list_namespaces())
    data = json_body(request)
    return JsonResponse(
        documents.create_namespace(
            name=data.get("name", data.get("namespace")),
            dimension=data.get("dimension", data.get("dimensions")),
            distance=data.get("distance"),
            index_type=data.get("index_type"),
            metadata=data.get("metadata"),
        ),
        status=201,
    )


@bot_api(("GET", "PUT", "DELETE"))
def namespace_detail(request: HttpRequest, namespace: str) -> JsonResponse:
    """``GET`` (read), ``PUT`` create-or-configure (write), ``DELETE`` (write)."""
    if request.method == "GET":
        return JsonResponse(documents.get_namespace(name=namespace))
    if request.method == "DELETE":
        return JsonResponse(documents.delete_namespace(name=namespace))
    data = json_body(request)
    return JsonResponse(
        documents.configure_namespace(
            name=namespace,
            dimension=data.get("dimension", data.get("dimensions")),
            distance=data.get("distance"),
        )
    )


@bot_api(("POST",))
def upsert_text(request: HttpRequest, namespace: str) -> JsonResponse:
    """``POST /v1/namespaces/{ns}/upsert-text`` and ``/fulltext/index`` (write)."""
    docs = documents.validate_documents(json_body(request).get("documents"))
    return JsonResponse(documents.upsert_documents(name=namespace, documents=docs))


@bot_api(("POST",))
def query_text(request: HttpRequest, namespace: str) -> JsonResponse:
    """``POST /v1/namespaces/{ns}/query-text`` (read)."""
    query = documents.validate_query(json_body(request), "text")
    return JsonResponse(documents.query_text(name=namespace, query=query))


@bot_api(("POST",))
def batch_query_text(request: HttpRequest, namespace: str) -> JsonResponse:
    """``POST /v1/namespaces/{ns}/batch-query-text`` (read)."""
    data = json_body(request)
    return JsonResponse(
        documents.batch_query_text(
            name=namespace,
            queries=data.get("queries"),
            top_k=data.get("top_k"),
            filter=data.get("filter"),
        )
    )


@bot_api(("POST",))
def hybrid(request: HttpRequest, namespace: str) -> JsonResponse:
    """``POST /v1/namespaces/{ns}/hybrid`` (read): lexical only; a ``vector`` is a 501."""
    query = documents.validate_query(json_body(request), "text")
    return JsonResponse(documents.hybrid(name=namespace, query=query))


@bot_api(("POST",))
def fulltext_search(request: HttpRequest, namespace: str) -> JsonResponse:
    """``POST /v1/namespaces/{ns}/fulltext/search`` (read)."""
    query = documents.validate_query(json_body(request), "query")
    return JsonResponse(documents.fulltext_search(name=namespace, query=query))


@bot_api(("GET",))
def fulltext_stats(request: HttpRequest, namespace: str) -> JsonResponse:
    """``GET /v1/namespaces/{ns}/fulltext/stats`` (read)."""
    return JsonResponse(documents.fulltext_stats(name=namespace))


@bot_api(("POST",))
def delete_by_ids(request: HttpRequest, namespace: str) -> JsonResponse:
    """``POST /v1/namespaces/{ns}/fulltext/delete`` and ``/vectors/delete`` ``{ids}``
    (write)."""
    ids = documents.validate_ids(json_body(request).get("ids"))
    return JsonResponse(documents.delete_documents(name=namespace, ids=ids))


@bot_api(("POST", "DELETE"))
def delete_by_filter(request: HttpRequest, namespace: str) -> JsonResponse:
    """``POST /v1/namespaces/{ns}/vectors/bulk-delete`` ``{filter}`` (write; the
    LlamaIndex store deletes a document's nodes this way)."""
    return JsonResponse(
        documents.delete_documents(name=namespace, filter=json_body(request).get("filter"))
    )
