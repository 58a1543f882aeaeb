from django.urls import path, re_path

from speech import views
from speech.api import build_api

app_name = "speech"

# Nested under this app's namespace: ninja reverses "<namespace>:api-root" for /v1/openapi.json.
api = build_api(urls_namespace=f"{app_name}:speech-api")

urlpatterns = [
    path("v1/", api.urls),
    re_path(r"^v1/", views.api_not_found),
]
