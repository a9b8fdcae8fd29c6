"""The supervisors' pages."""

from django.urls import path

from . import metrics, views

urlpatterns = [
    path("metrics", metrics.metrics, name="metrics"),
    path("floor/", views.floor_page, name="floor"),
    path("floor/handoffs/<int:pk>/reassign", views.floor_reassign, name="reassign"),
    path("reports/transfers/", views.transfer_report, name="transfer-report"),
    path("reports/transfers.csv", views.transfer_report_csv, name="transfer-csv"),
    path("reports/routing/", views.routing_report, name="routing-report"),
]
