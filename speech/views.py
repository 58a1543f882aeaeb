from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.middleware.csrf import get_token
from django.utils.crypto import constant_time_compare, salted_hmac
from django.views.decorators.http import require_GET
from pydantic import ValidationError

from speech import limits, schemas, security
from speech.api import create_speech
from speech.errors import AuthenticationFailed, NotFound, SpeechError, error_response, invalid_request

TOKEN_SALT = "speech.stream"


def api_not_found(request: HttpRequest) -> JsonResponse:
    return error_response(NotFound(f"No such endpoint: {request.method} {request.path}.", code="not_found"))


def stream_token(request: HttpRequest) -> str:
    """A token for the GET stream, bound to this browser's CSRF cookie (set on the page's response)."""
    get_token(request)
    return _token_for(request.META["CSRF_COOKIE"])


def _token_for(secret: str) -> str:
    return salted_hmac(TOKEN_SALT, secret).hexdigest()


@require_GET
def speech_stream(request: HttpRequest) -> HttpResponseBase:
    """The speech stream as a GET, for a plain <audio src>: the fallback where MSE and Web Audio are missing.

    Only the page's own browser may use it: the token must match the CSRF cookie, which (SameSite=Lax)
    browsers do not send on another site's <audio> or <img> requests.
    """
    cookie = request.COOKIES.get(settings.CSRF_COOKIE_NAME, "")
    token = request.GET.get("token", "")
    try:
        if not cookie or not constant_time_compare(token, _token_for(cookie)):
            raise AuthenticationFailed("This stream URL needs the token of the page that made it.", code="bad_token")
        if request.headers.get("Sec-Fetch-Site") == "cross-site":
            raise AuthenticationFailed("This stream URL is not for use from other sites.", code="cross_site")
        limits.check_rate(security.address(request))
        params = {key: value for key, value in request.GET.items() if key != "token"}
        try:
            body = schemas.SpeechBody(**params)  # type: ignore[arg-type]
        except ValidationError as error:
            raise invalid_request(error.errors()) from None
        return create_speech(request, body)
    except SpeechError as error:
        return error_response(error)
