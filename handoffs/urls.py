"""Every HTTP route of the product, package by package (the composition root)."""

from django.urls import include, path

urlpatterns = [
    path("", include("handoffs.memory.urls")),
    path("", include("handoffs.api.urls")),
    path("", include("handoffs.desk.urls")),
    path("", include("handoffs.customers.urls")),
    path("", include("handoffs.supervision.urls")),
]
