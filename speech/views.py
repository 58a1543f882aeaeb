from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from speech.api import error_response
from speech.errors import NotFound


def api_not_found(request: HttpRequest) -> JsonResponse:
    return error_response(NotFound(f"No such endpoint: {request.method} {request.path}.", code="not_found"))
