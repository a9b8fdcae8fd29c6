"""The customer's chat link, its transcript, and the widget for a company's site."""

from django.urls import path

from . import files, views

urlpatterns = [
    path("c/<str:token>/", views.customer_chat, name="customer-chat"),
    path("c/<str:token>/messages", views.customer_message, name="customer-messages"),
    path("c/<str:token>/attachments", files.customer_attachment, name="customer-attachments"),
    path("c/<str:token>/files/<uuid:public_id>/", files.customer_file, name="customer-file"),
    path("c/<str:token>/rating", views.customer_rating, name="customer-rating"),
    path("c/<str:token>/transcript.txt", views.transcript_text, name="customer-transcript-txt"),
    path("c/<str:token>/transcript.html", views.transcript_html, name="customer-transcript-html"),
    path(
        "c/<str:token>/transcript/email", views.transcript_email, name="customer-transcript-email"
    ),
    path("widget.js", views.widget_js, name="widget-js"),
    path("demo/widget/", views.widget_demo, name="widget-demo"),
]
