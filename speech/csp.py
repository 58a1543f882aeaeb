"""The Content-Security-Policy of the site's HTML pages (the player's, the reader's, the host's own)."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

from speech.conf import get_config


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
