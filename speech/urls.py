from django.urls import path, re_path

from speech import views
from speech.api import build_api
from speech.errors import json_not_allowed
from speech.requestid import with_request_id

app_name = "speech"

api = build_api()
api_patterns, api_app, api_namespace = api.urls
for pattern in api_patterns:  # every API answer carries x-request-id; ninja's 405s are text
    assert pattern.callback is not None
    pattern.callback = with_request_id(pattern.callback, json_not_allowed)

urlpatterns = [
    path("v1/", (api_patterns, api_app, api_namespace)),
    re_path(r"^v1/", with_request_id(views.api_not_found)),
    path("speech/stream", with_request_id(views.speech_stream, json_not_allowed), name="stream"),
]
