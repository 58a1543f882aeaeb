"""Who may call /v1/*: bearer keys for API clients, the site's own pages through CSRF; CORS and CSP.

``authenticate`` is the API's ninja ``auth`` callable. It returns the client's identity (used for
rate limits, stream caps and usage records) or raises ``AuthenticationFailed`` (401, OpenAI-shaped).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import secrets
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import Resolver404, resolve
from django.utils.cache import patch_vary_headers

from speech import limits, proxies
from speech.conf import get_config
from speech.errors import AuthenticationFailed

EXPOSED = "X-Speech-Engine, X-Speech-Cache, X-Speech-Id, Retry-After, Content-Range, Accept-Ranges"


def authenticate(request: HttpRequest) -> str:
    client = identify(request)
    limits.check_rate(client)
    return client


def address(request: HttpRequest) -> str:
    """The identity of a client known only by its address: the socket peer, or whom a trusted proxy
    (``SPEECH["TRUSTED_PROXIES"]``) says it forwarded the request for."""
    meta = request.META
    trusted = proxies.networks(tuple(get_config()["TRUSTED_PROXIES"]))
    return f"ip:{proxies.real_client(meta.get('REMOTE_ADDR', ''), meta.get('HTTP_X_FORWARDED_FOR', ''), trusted)}"


def identify(request: HttpRequest) -> str:
    keys: list[str] = get_config()["API_KEYS"]
    if not keys:
        return address(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        if any(hmac.compare_digest(token.encode(), key.encode()) for key in keys):
            return f"key:{hashlib.sha256(token.encode()).hexdigest()[:16]}"
        raise AuthenticationFailed(
            "Incorrect API key provided.", code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"}
        )
    if same_site_page(request):
        return address(request)
    raise AuthenticationFailed(
        "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'.",
        code="missing_api_key",
        headers={"WWW-Authenticate": "Bearer"},
    )


def same_site_page(request: HttpRequest) -> bool:
    """A request from one of the site's own pages: Django's CSRF cookie and token agree (and Origin fits)."""
    if settings.CSRF_HEADER_NAME not in request.META:
        return False
    middleware = CsrfViewMiddleware(_no_response)
    middleware.process_request(request)
    # Django checks nothing for safe methods; the page's GETs must prove the same token as a POST.
    probe = copy.copy(request)
    probe.method = "POST"
    return middleware.process_view(probe, _no_response, (), {}) is None


def _no_response(request: HttpRequest) -> HttpResponse:
    raise AssertionError("only used for its checks")


def _is_speech(request: HttpRequest) -> bool:
    try:
        return "speech" in resolve(request.path_info).namespaces
    except Resolver404:
        return False


class CorsMiddleware:
    """Cross-origin access to the speech API for the origins in ``SPEECH["CORS_ORIGINS"]`` only."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        origin = request.headers.get("Origin")
        allowed: list[str] = get_config()["CORS_ORIGINS"]
        if not origin or not (origin in allowed or "*" in allowed) or not _is_speech(request):
            return self.get_response(request)
        response: HttpResponseBase
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response = HttpResponse(status=204)
            response["Access-Control-Allow-Methods"] = "GET, POST"
            response["Access-Control-Allow-Headers"] = "Authorization, Content-Type, Range"
            response["Access-Control-Max-Age"] = "600"
        else:
            response = self.get_response(request)
            response["Access-Control-Expose-Headers"] = EXPOSED
        response["Access-Control-Allow-Origin"] = origin
        patch_vary_headers(response, ["Origin"])
        return response


class ContentSecurityPolicyMiddleware:
    """Sets ``SPEECH["CSP"]`` on HTML responses that have no policy of their own.

    ``request.csp_nonce`` is added to ``script-src`` for the few non-code inline blocks a page
    needs (an import map): ``<script type="importmap" nonce="{{ request.csp_nonce }}">``.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        nonce = secrets.token_urlsafe(16)
        request.csp_nonce = nonce  # type: ignore[attr-defined]
        response = self.get_response(request)
        policy: str = get_config()["CSP"]
        if policy and response.get("Content-Type", "").startswith("text/html"):
            policy = policy.replace("script-src ", f"script-src 'nonce-{nonce}' ", 1)
            response.headers.setdefault("Content-Security-Policy", policy)
        return response
