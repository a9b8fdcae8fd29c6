from django.urls import path, re_path

from . import supervisor_views, views
from .api import intake
from .api import memory as wire

api_patterns = [
    path("health", wire.health, name="health"),
    path("health/live", wire.health_live, name="health-live"),
    path("health/ready", wire.health_ready, name="health-ready"),
    path("v1/sessions/start", wire.session_start),
    path("v1/sessions", wire.session_list),
    path("v1/sessions/<str:session_id>", wire.session_detail),
    path("v1/sessions/<str:session_id>/end", wire.session_end),
    path("v1/sessions/<str:session_id>/memories", wire.session_memories),
    path("v1/sessions/<str:session_id>/touch", wire.session_touch),
    path("v1/memory/store", wire.memory_store),
    path("v1/memories/store/batch", wire.memory_store_batch),
    path("v1/memory/recall", wire.memory_recall),
    path("v1/memory/search", wire.memory_search),
    path("v1/memory/get/<str:memory_id>", wire.memory_get),
    path("v1/memory/forget", wire.memory_forget),
    re_path(r"^v1/", wire.not_found),
    path("api/v1/handoffs", intake.handoff_create, name="api-handoff-create"),
    path("api/v1/handoffs/<uuid:public_id>", intake.handoff_detail, name="api-handoff-detail"),
    path(
        "api/v1/conversations/<uuid:public_id>/messages",
        intake.conversation_messages,
        name="api-conversation-messages",
    ),
    re_path(r"^api/", wire.not_found),
]

console_patterns = [
    path("", views.queue, name="queue"),
    path("handoffs/<int:pk>/", views.handoff_detail, name="handoff"),
    path("handoffs/<int:pk>/accept", views.handoff_accept, name="handoff-accept"),
    path("conversations/", views.my_conversations, name="my-conversations"),
    path("conversations/<int:pk>/", views.conversation, name="conversation"),
    path(
        "conversations/<int:pk>/messages",
        views.conversation_message,
        name="conversation-messages",
    ),
    path("conversations/<int:pk>/close", views.conversation_close, name="conversation-close"),
    path("c/<str:token>/", views.customer_chat, name="customer-chat"),
    path("c/<str:token>/messages", views.customer_message, name="customer-messages"),
    path("presence", views.presence, name="presence"),
]

urlpatterns = api_patterns + console_patterns

# The supervisors' pages (issue 5).
urlpatterns += [
    path("floor/", supervisor_views.floor_page, name="floor"),
    path("floor/handoffs/<int:pk>/reassign", supervisor_views.floor_reassign, name="reassign"),
    path("reports/transfers/", supervisor_views.transfer_report, name="transfer-report"),
    path("reports/transfers.csv", supervisor_views.transfer_report_csv, name="transfer-csv"),
]
