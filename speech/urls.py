from django.urls import path, re_path

from speech import views
from speech.api import build_api

app_name = "speech"

api = build_api()

urlpatterns = [
    path("v1/", api.urls),
    re_path(r"^v1/", views.api_not_found),
    path("speech/stream", views.speech_stream, name="stream"),
]
