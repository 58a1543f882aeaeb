from django.urls import include, path
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.generic import TemplateView

urlpatterns = [
    path("", ensure_csrf_cookie(TemplateView.as_view(template_name="host/home.html")), name="home"),
    path("article/", TemplateView.as_view(template_name="host/article.html")),  # {% speech_reader %}
    path("tts/", include("speech.urls")),  # 2. the URLs, under any prefix
]
