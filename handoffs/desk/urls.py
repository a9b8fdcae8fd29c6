"""The agents' pages."""

from django.urls import path

from . import shift_views, views

urlpatterns = [
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
    path("presence", views.presence, name="presence"),
    path("alerts", views.alerts, name="alerts"),
    path("offers/<int:pk>/decline", shift_views.offer_decline, name="offer-decline"),
    path("shift/end", shift_views.shift_end, name="shift-end"),
    path("shift/start", shift_views.shift_start, name="shift-start"),
]
