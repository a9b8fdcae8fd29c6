from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("handoffs.urls")),
]

handler404 = "console.boundary.page_not_found"
handler500 = "console.boundary.server_error"
