from django.contrib import admin
from django.urls import include, path
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.generic import TemplateView

urlpatterns = [
    path("", ensure_csrf_cookie(TemplateView.as_view(template_name="index.html")), name="home"),
    path("admin/", admin.site.urls),
    path("", include("speech.urls")),
]
