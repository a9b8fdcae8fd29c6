"""The agents' pages."""

from django.urls import path

from . import inbox_views, lookback, views

urlpatterns = [
    path("", views.queue, name="queue"),
    path("handoffs/<int:pk>/", views.handoff_detail, name="handoff"),
    path("handoffs/<int:pk>/accept", views.handoff_accept, name="handoff-accept"),
    path("conversations/", inbox_views.my_conversations, name="my-conversations"),
    path("conversations/<int:pk>/", views.conversation, name="conversation"),
    path(
        "conversations/<int:pk>/messages",
        views.conversation_message,
        name="conversation-messages",
    ),
    path("conversations/<int:pk>/close", views.conversation_close, name="conversation-close"),
    path("conversations/<int:pk>/read", inbox_views.conversation_read, name="conversation-read"),
    path("profile/", inbox_views.profile, name="profile"),
    path("history/", lookback.history, name="history"),
    path("history/<int:pk>/", lookback.transcript, name="transcript"),
    path("search/", lookback.search, name="search"),
    path("presence", views.presence, name="presence"),
    path("alerts", views.alerts, name="alerts"),
]
