"""Request ids: every API response carries ``x-request-id``, as OpenAI's do; logs and usage records name it.

SDKs expose the header (``response.request_id`` in openai-python, ``_request_id`` in the JS SDK) and
LiveKit warns on every synthesis without one. An incoming ``X-Request-ID`` is kept when a trusted
proxy (``SPEECH["TRUSTED_PROXIES"]``) sent it and it is short and plain (it goes into log lines), so
one id follows a request through every hop; anything else is replaced by a fresh ``req_…``: a client
could otherwise name its request after another one in the logs and usage records.
"""

from __future__ import annotations

import functools
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, cast

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from speech.clients import from_trusted_proxy

HEADER = "X-Request-ID"
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
# Set for the request being served; streaming generators run in the same context after the view returns.
_current: ContextVar[str] = ContextVar("speech_request_id", default="-")

Finish = Callable[[HttpRequest, HttpResponseBase], HttpResponseBase]


def current() -> str:
    """The id of the request being served here, or ``-`` outside one."""
    return _current.get()


def assign(request: HttpRequest) -> str:
    incoming = request.headers.get(HEADER, "")
    kept = _SAFE.fullmatch(incoming) and from_trusted_proxy(request)
    request_id = incoming if kept else f"req_{uuid.uuid4().hex}"
    _current.set(request_id)
    return request_id


def with_request_id(
    view: Callable[..., Any], finish: Finish = lambda request, response: response
) -> Callable[..., Any]:
    """Wrap a view (sync or async): its request gets an id, its response ``finish``-ed and the header."""
    if iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            request_id = assign(request)
            response = await cast(Callable[..., Awaitable[HttpResponseBase]], view)(request, *args, **kwargs)
            response = finish(request, response)
            response[HEADER] = request_id
            return response

        return async_view

    @functools.wraps(view)
    def sync_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        request_id = assign(request)
        response = finish(request, view(request, *args, **kwargs))
        response[HEADER] = request_id
        return response

    return sync_view


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to log records, for a format such as ``%(request_id)s %(message)s``."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current()
        return True
