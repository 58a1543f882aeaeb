"""Cross-origin access to the API, through django-cors-headers (the middleware host sites already run).

The app decides which origins may call its API: ``SPEECH["CORS_ORIGINS"]``, answered through
corsheaders' ``check_request_enabled`` signal for the app's URLs only. The headers are the site's
corsheaders settings; browser clients need the ones below (checked by ``speech.W005``).
"""

from __future__ import annotations

from typing import Any

from corsheaders.defaults import default_headers
from django.http import HttpRequest
from django.urls import Resolver404, resolve

# What browser clients send: the OpenAI JS SDK its x-stainless-* headers, kvsur's player Cache-Control,
# the page's own player Range.
ALLOW_HEADERS = (
    *default_headers,
    "cache-control",
    "range",
    "x-request-id",
    "x-stainless-arch",
    "x-stainless-lang",
    "x-stainless-os",
    "x-stainless-package-version",
    "x-stainless-retry-count",
    "x-stainless-runtime",
    "x-stainless-runtime-version",
    "x-stainless-timeout",
)
EXPOSE_HEADERS = (
    "x-request-id",
    "x-speech-engine",
    "x-speech-cache",
    "x-speech-id",
    "x-speech-sample-rate",
    "retry-after",
    "content-range",
    "accept-ranges",
)


def allow_api_origins(sender: Any, request: HttpRequest, **kwargs: Any) -> bool:
    """corsheaders asks: may this request's Origin read the answer? Yes for listed origins, on our URLs."""
    from speech.conf import get_config  # settings import this module: keep its import light

    origin = request.headers.get("Origin")
    allowed: list[str] = get_config()["CORS_ORIGINS"]
    return bool(origin) and (origin in allowed or "*" in allowed) and _is_speech(request)


def _is_speech(request: HttpRequest) -> bool:
    try:
        return "speech" in resolve(request.path_info).namespaces
    except Resolver404:
        return False
