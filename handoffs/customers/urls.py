"""The customer's chat link."""

from django.urls import path

from . import views

urlpatterns = [
    path("c/<str:token>/", views.customer_chat, name="customer-chat"),
    path("c/<str:token>/messages", views.customer_message, name="customer-messages"),
]
