from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.generic import TemplateView


def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """Browsers ask for /favicon.ico on every page that names no icon (the API docs, the admin)."""
    return HttpResponseRedirect(static("favicon.svg"))


urlpatterns = [
    path("favicon.ico", favicon),
    path("", ensure_csrf_cookie(TemplateView.as_view(template_name="index.html")), name="home"),
    # A long page read aloud by {% speech_reader %} (docs/reader.md).
    path("read/", TemplateView.as_view(template_name="article.html"), name="article"),
    path("admin/", admin.site.urls),
    path("", include("speech.urls")),
]
