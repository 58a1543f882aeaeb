from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_GET
from pydantic import ValidationError

from speech import keys, limits, schemas
from speech.api import create_speech
from speech.errors import NotFound, SpeechError, error_response, invalid_request


def api_not_found(request: HttpRequest) -> JsonResponse:
    return error_response(NotFound(f"No such endpoint: {request.method} {request.path}.", code="not_found"))


@require_GET
def speech_stream(request: HttpRequest) -> HttpResponseBase:
    """The speech stream as a GET, for a plain <audio src>: the fallback where MSE and Web Audio are missing.

    Only the page's own browser may use it: ``?token=`` is the page's token, which needs that
    browser's session cookie (SameSite=Lax: not sent on another site's <audio> or <img> requests).
    """
    try:
        client = request.auth = keys.stream_client(request)  # type: ignore[attr-defined]
        limits.check_rate(client)
        params = {key: value for key, value in request.GET.items() if key != "token"}
        try:
            body = schemas.SpeechBody.model_validate(params, strict=False)
        except ValidationError as error:
            raise invalid_request(error.errors()) from None
        return create_speech(request, body)
    except SpeechError as error:
        return error_response(error)
