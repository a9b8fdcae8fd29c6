"""The console's own bot API: handoff intake and the conversations channel."""

from django.urls import path, re_path

from ..memory.http import not_found
from . import attachments, docs, intake, satisfaction

urlpatterns = [
    path("api/schema/", docs.schema, name="api-schema"),
    path("api/docs/", docs.docs, name="api-docs"),
    path("api/v1/handoffs", intake.handoff_create, name="api-handoff-create"),
    path("api/v1/handoffs/<uuid:public_id>", intake.handoff_detail, name="api-handoff-detail"),
    path(
        "api/v1/conversations/<uuid:public_id>/messages",
        intake.conversation_messages,
        name="api-conversation-messages",
    ),
    path(
        "api/v1/conversations/<uuid:public_id>/attachments",
        attachments.conversation_attachments,
        name="api-conversation-attachments",
    ),
    path(
        "api/v1/conversations/<uuid:public_id>/attachments/<uuid:attachment_id>",
        attachments.conversation_attachment,
        name="api-conversation-attachment",
    ),
    path("files/s/<str:signed>/", attachments.signed_download, name="attachment-signed"),
    path(
        "api/v1/conversations/<uuid:public_id>/csat",
        satisfaction.conversation_csat,
        name="api-conversation-csat",
    ),
    path(
        "api/v1/conversations/<uuid:public_id>/csat/ask",
        satisfaction.conversation_csat_ask,
        name="api-conversation-csat-ask",
    ),
    re_path(r"^api/", not_found),
]
