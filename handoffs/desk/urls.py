"""The agents' pages."""

from django.urls import path

from . import composer, inbox_views, lookback, saved_replies, shift_views, views

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
    path(
        "conversations/<int:pk>/attachments",
        composer.conversation_attachment,
        name="conversation-attachments",
    ),
    path(
        "conversations/<int:pk>/saved-replies",
        composer.conversation_saved_replies,
        name="conversation-saved-replies",
    ),
    path(
        "conversations/<int:pk>/saved-replies/<int:reply_id>/fill",
        composer.saved_reply_fill,
        name="saved-reply-fill",
    ),
    path("files/<uuid:public_id>/", composer.agent_file, name="agent-file"),
    path("saved-replies/", saved_replies.saved_reply_list, name="saved-replies"),
    path("saved-replies/<int:reply_id>/", saved_replies.saved_reply_edit, name="saved-reply-edit"),
    path(
        "saved-replies/<int:reply_id>/delete",
        saved_replies.saved_reply_delete,
        name="saved-reply-delete",
    ),
    path("presence", views.presence, name="presence"),
    path("alerts", views.alerts, name="alerts"),
    path("offers/<int:pk>/decline", shift_views.offer_decline, name="offer-decline"),
    path("shift/end", shift_views.shift_end, name="shift-end"),
    path("shift/start", shift_views.shift_start, name="shift-start"),
]
