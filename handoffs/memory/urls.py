"""The Dakera memory API routes (embedded mode) and the health checks."""

from django.urls import path, re_path

from . import views
from .http import not_found

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
    re_path(r"^v1/", not_found),
]
