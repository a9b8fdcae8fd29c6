"""Text namespaces on the wire (embedded mode): ``/v1/namespaces...``.

Ranking is lexical (``documents``): no embeddings in embedded mode. Scopes: listing,
reading and querying need read; creating, configuring, upserting and deleting need write.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from ..access.bots import namespace_allowed
from . import documents
from .http import bot_api, bot_namespace, json_body


@bot_api(("GET", "POST"), scope={"GET": "read", "POST": "write"})
def namespaces(request: HttpRequest) -> JsonResponse:
    """``GET /v1/namespaces`` (read) lists; ``POST`` (write) creates, 409 if it exists."""
    if request.method == "GET":
        # A key limited to some namespaces sees only those.
        listed = documents.list_namespaces()
        names = [n for n in listed["namespaces"] if namespace_allowed(request.bot, n)]
        return JsonResponse({"namespaces": names, "kinds": {n: listed["kinds"][n] for n in names}})
    data = json_body(request)
    name = data.get("name", data.get("namespace"))
    bot_namespace(request, name)
    return JsonResponse(
        documents.create_namespace(
            name=name,
            dimension=data.get("dimension", data.get("dimensions")),
            distance=data.get("distance"),
            index_type=data.get("index_type"),
            metadata=data.get("metadata"),
        ),
        status=201,
    )


@bot_api(("GET", "PUT", "DELETE"), scope={"GET": "read", "PUT": "write", "DELETE": "write"})
def namespace_detail(request: HttpRequest, namespace: str) -> JsonResponse:
    """``GET`` (read), ``PUT`` create-or-configure (write), ``DELETE`` (write)."""
    bot_namespace(request, namespace)
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


@bot_api(("POST",), scope="write")
def upsert_text(request: HttpRequest, namespace: str) -> JsonResponse:
    """``POST /v1/namespaces/{ns}/upsert-text`` and ``/fulltext/index`` (write)."""
    bot_namespace(request, namespace)
    docs = documents.validate_documents(json_body(request).get("documents"))
    return JsonResponse(documents.upsert_documents(name=namespace, documents=docs))


@bot_api(("POST",), scope="read")
def query_text(request: HttpRequest, namespace: str) -> JsonResponse:
    """``POST /v1/namespaces/{ns}/query-text`` (read)."""
    bot_namespace(request, namespace)
    query = documents.validate_query(json_body(request), "text")
    return JsonResponse(documents.query_text(name=namespace, query=query))


@bot_api(("POST",), scope="read")
def batch_query_text(request: HttpRequest, namespace: str) -> JsonResponse:
    """``POST /v1/namespaces/{ns}/batch-query-text`` (read)."""
    bot_namespace(request, namespace)
    data = json_body(request)
    return JsonResponse(
        documents.batch_query_text(
            name=namespace,
            queries=data.get("queries"),
            top_k=data.get("top_k"),
            filter=data.get("filter"),
        )
    )


@bot_api(("POST",), scope="read")
def hybrid(request: HttpRequest, namespace: str) -> JsonResponse:
    """``POST /v1/namespaces/{ns}/hybrid`` (read): lexical only; a ``vector`` is a 501."""
    bot_namespace(request, namespace)
    query = documents.validate_query(json_body(request), "text")
    return JsonResponse(documents.hybrid(name=namespace, query=query))


@bot_api(("POST",), scope="read")
def fulltext_search(request: HttpRequest, namespace: str) -> JsonResponse:
    """``POST /v1/namespaces/{ns}/fulltext/search`` (read)."""
    bot_namespace(request, namespace)
    query = documents.validate_query(json_body(request), "query")
    return JsonResponse(documents.fulltext_search(name=namespace, query=query))


@bot_api(("GET",), scope="read")
def fulltext_stats(request: HttpRequest, namespace: str) -> JsonResponse:
    """``GET /v1/namespaces/{ns}/fulltext/stats`` (read)."""
    bot_namespace(request, namespace)
    return JsonResponse(documents.fulltext_stats(name=namespace))


@bot_api(("POST",), scope="write")
def delete_by_ids(request: HttpRequest, namespace: str) -> JsonResponse:
    """``POST /v1/namespaces/{ns}/fulltext/delete`` and ``/vectors/delete`` ``{ids}``
    (write)."""
    bot_namespace(request, namespace)
    ids = documents.validate_ids(json_body(request).get("ids"))
    return JsonResponse(documents.delete_documents(name=namespace, ids=ids))


@bot_api(("POST", "DELETE"), scope="write")
def delete_by_filter(request: HttpRequest, namespace: str) -> JsonResponse:
    """``POST /v1/namespaces/{ns}/vectors/bulk-delete`` ``{filter}`` (write; the
    LlamaIndex store deletes a document's nodes this way)."""
    bot_namespace(request, namespace)
    return JsonResponse(
        documents.delete_documents(name=namespace, filter=json_body(request).get("filter"))
    )
