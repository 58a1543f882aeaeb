"""Errors as types with a status and an OpenAI-shaped body, and the one function that renders them.

Engines raise these, the API and the views render them with ``error_response``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.http import HttpRequest, HttpResponseNotAllowed, JsonResponse
from django.http.response import HttpResponseBase
from ninja.errors import HttpError


class SpeechError(HttpError):
    """A failure with an HTTP status. Being ninja's ``HttpError`` keeps the status right on a host's own
    ``NinjaAPI`` that mounts ``speech.api.router`` without the app's handlers."""

    status = 400
    type = "invalid_request_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if status is not None:
            self.status = status
        super().__init__(self.status, message)
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequest(SpeechError):
    pass


class AuthenticationFailed(SpeechError):
    status = 401
    type = "authentication_error"


class PermissionDenied(SpeechError):
    status = 403
    type = "permission_error"


class NotFound(SpeechError):
    status = 404


class MethodNotAllowed(SpeechError):
    status = 405


class RangeNotSatisfiable(SpeechError):
    status = 416


class RateLimited(SpeechError):
    status = 429
    type = "rate_limit_error"


class UpstreamError(SpeechError):
    """The upstream engine failed; not the client's fault."""

    status = 502
    type = "upstream_error"


class UpstreamTimeout(UpstreamError):
    status = 504


class ClientClosed(SpeechError):
    """The client hung up before it got an answer (nginx's 499): nobody reads this, usage records keep it."""

    status = 499


class Overloaded(SpeechError):
    status = 503
    type = "server_error"


def error_response(error: SpeechError) -> JsonResponse:
    from django.http import JsonResponse  # here: speech.client uses these errors without Django

    response = JsonResponse(error.body(), status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


def invalid_request(errors: Sequence[Mapping[str, Any]]) -> InvalidRequest:
    """The first of pydantic's (or ninja's) validation errors, OpenAI-shaped, ``param`` naming the field."""
    first = errors[0] if errors else {}
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "payload", "query")]
    param = ".".join(loc) or None
    message = first.get("msg", "Invalid request.")
    if first.get("type") == "missing":
        message = f"Missing required parameter: '{param}'." if param else "The request has no body: send a JSON object."
    elif param:
        message = f"Invalid value for '{param}': {message}."
    return InvalidRequest(message, param=param, code=first.get("type"))


def json_not_allowed(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    """Django's and ninja's plain-text 405, OpenAI-shaped."""
    if not isinstance(response, HttpResponseNotAllowed):
        return response
    allowed = response["Allow"]
    return error_response(MethodNotAllowed(
        f"Method {request.method} is not allowed on {request.path}; use {allowed}.",
        code="method_not_allowed",
        headers={"Allow": allowed},
    ))  # fmt: skip
