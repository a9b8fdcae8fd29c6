"""The Dakera memory API routes (embedded mode) and the health checks.

Every path under ``/v1/`` answers JSON: a served route, a 501 for the Dakera routes the
embedded server does not serve (``UNSUPPORTED``), or a 404; a bad key is a 401 first.
"""

from django.urls import path, re_path

from . import agent_views, namespace_views, views
from .http import not_found, not_supported

NS = "v1/namespaces/<str:namespace>"

#: Dakera routes outside the embedded subset (knowledge graph, extraction, admin): 501.
UNSUPPORTED = [
    r"^v1/knowledge(/.*)?$",
    r"^v1/memories/extract$",
    r"^v1/memories/[^/]+/(graph|path|links|feedback|importance)$",
    r"^v1/memory/entities/[^/]+$",
    r"^v1/admin(/.*)?$",
    r"^v1/agents/[^/]+/(graph/export|compress|consolidate|consolidation/.*|feedback/.*)$",
]

urlpatterns = [
    path("health", views.health, name="health"),
    path("health/live", views.health_live, name="health-live"),
    path("health/ready", views.health_ready, name="health-ready"),
    path("v1/sessions/start", views.session_start),
    path("v1/sessions", views.session_list),
    path("v1/sessions/<str:session_id>", views.session_detail),
    path("v1/sessions/<str:session_id>/end", views.session_end),
    path("v1/sessions/<str:session_id>/memories", views.session_memories),
    path("v1/sessions/<str:session_id>/touch", views.session_touch),
    path("v1/memory/store", views.memory_store),
    path("v1/memories/store/batch", views.memory_store_batch),
    path("v1/memory/recall", views.memory_recall),
    path("v1/memory/search", views.memory_search),
    path("v1/memory/get/<str:memory_id>", views.memory_get),
    path("v1/memory/forget", views.memory_forget),
    # 1-6: the memory calls the framework packages and the JS SDK make
    path("v1/memory/update/<str:memory_id>", agent_views.memory_update),
    path("v1/memory/importance", agent_views.memory_importance),
    path("v1/memory/feedback", agent_views.memory_feedback),
    path("v1/memory/consolidate", agent_views.memory_consolidate),
    path("v1/memories/recall/batch", agent_views.memories_recall_batch),
    path("v1/memories/forget/batch", agent_views.memories_forget_batch),
    path("v1/agents", agent_views.agent_list),
    path("v1/agents/<str:agent_id>/stats", agent_views.agent_stats),
    path("v1/agents/<str:agent_id>/memories", agent_views.agent_memories),
    path("v1/agents/<str:agent_id>/sessions", agent_views.agent_sessions),
    path("v1/agents/<str:agent_id>/wake-up", agent_views.agent_wake_up),
    path("v1/export", agent_views.export),
    # 7: text namespaces (ranked lexically: no embeddings in embedded mode)
    path("v1/namespaces", namespace_views.namespaces),
    path(NS, namespace_views.namespace_detail),
    path(f"{NS}/upsert-text", namespace_views.upsert_text),
    path(f"{NS}/fulltext/index", namespace_views.upsert_text),
    path(f"{NS}/query-text", namespace_views.query_text),
    path(f"{NS}/batch-query-text", namespace_views.batch_query_text),
    path(f"{NS}/hybrid", namespace_views.hybrid),
    path(f"{NS}/fulltext/search", namespace_views.fulltext_search),
    path(f"{NS}/fulltext/stats", namespace_views.fulltext_stats),
    path(f"{NS}/fulltext/delete", namespace_views.delete_by_ids),
    path(f"{NS}/vectors/delete", namespace_views.delete_by_ids),
    path(f"{NS}/vectors/bulk-delete", namespace_views.delete_by_filter),
    # 8: not served here (remote mode serves them)
    *[re_path(pattern, not_supported) for pattern in UNSUPPORTED],
    re_path(r"^v1/", not_found),
]
