from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import path, re_path

from speech import views
from speech.api import build_api
from speech.errors import json_not_allowed
from speech.page_tokens import renew_page_token
from speech.requestid import with_request_id

app_name = "speech"

api = build_api()
api_patterns, api_app, api_namespace = api.urls


def finish(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    return renew_page_token(request, json_not_allowed(request, response))


for pattern in api_patterns:  # every API answer carries x-request-id; ninja's 405s are text
    assert pattern.callback is not None
    pattern.callback = with_request_id(pattern.callback, finish)

urlpatterns = [
    path("v1/", (api_patterns, api_app, api_namespace)),
    re_path(r"^v1/", with_request_id(views.api_not_found)),
    path("speech/stream", with_request_id(views.speech_stream, finish), name="stream"),
]
