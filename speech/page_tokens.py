"""The site's own page: it gets no API key but a page token, and its visitors their own limits.

The server issues the page a token (``page_token``), signed with ``SECRET_KEY``, expiring after
``PAGE_TOKEN_MAX_AGE`` and bound to a random value kept in the visitor's session, so a token copied
out of the page is useless without that session's cookie. A login (which rotates the session key)
draws a new value: tokens issued before it stop working. ``speech.keys`` admits or refuses a
request by the answer of ``check_page``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any, Literal

from django.contrib.auth.signals import user_logged_in
from django.core import signing
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponseBase
from django.utils.module_loading import import_string

from speech.clients import PUBLIC_SCOPE, Client
from speech.conf import get_config

PAGE_HEADER = "X-Speech-Page"
PAGE_SALT = "speech.page"
PAGE_SESSION_KEY = "speech_page"
_RENEWED = "speech_renewed_page_token"  # the request attribute that carries a fresh token to the answer


def page_allowed(request: HttpRequest) -> bool:
    """``SPEECH["PAGE_ACCESS"]``: "anyone", "authenticated", or the dotted path of ``f(request) -> bool``."""
    access: str = get_config()["PAGE_ACCESS"]
    if access == "anyone":
        return True
    if access == "authenticated":
        return signed_in(request)
    check: Callable[[HttpRequest], bool] = import_string(access)
    return bool(check(request))


def page_token(request: HttpRequest) -> str | None:
    """A token for this visitor's page (None when the page may not use speech); starts a session."""
    if not page_allowed(request):
        return None
    nonce = request.session.get(PAGE_SESSION_KEY)
    if not nonce:  # set once: a page view need not write the session again
        nonce = request.session[PAGE_SESSION_KEY] = secrets.token_urlsafe(16)
    return signing.TimestampSigner(salt=PAGE_SALT).sign(nonce)


@receiver(user_logged_in, dispatch_uid="speech.page_tokens.new_page_nonce")
def _new_page_nonce(sender: object, request: HttpRequest | None, **kwargs: object) -> None:
    """A login rotates the session key (``cycle_key``) but keeps the session's data: the page's nonce
    goes with the old key, so tokens issued before the login (to whoever held that session) stop working."""
    session = getattr(request, "session", None)
    if session is not None:
        session.pop(PAGE_SESSION_KEY, None)


def check_page(request: HttpRequest, token: str) -> Literal["valid", "expired", "invalid"]:
    """Whether ``token`` lets this request in. A valid token past half its age earns a fresh one for
    the answer (``renew_page_token``): a page left open keeps working as long as it is used."""
    signer = signing.TimestampSigner(salt=PAGE_SALT)
    max_age: int = get_config()["PAGE_TOKEN_MAX_AGE"]
    try:
        nonce = signer.unsign(token, max_age=max_age)
    except signing.SignatureExpired:
        return "expired"
    except signing.BadSignature:  # forged, or not a token at all
        return "invalid"
    session = getattr(request, "session", None)
    expected = session.get(PAGE_SESSION_KEY) if session is not None else None
    if not (expected and hmac.compare_digest(nonce, str(expected)) and page_allowed(request)):
        return "invalid"
    try:
        signer.unsign(token, max_age=max_age // 2)
    except signing.SignatureExpired:
        setattr(request, _RENEWED, signer.sign(nonce))
    return "valid"


def renew_page_token(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    """Give the answer to a page token past half its age a fresh token in ``X-Speech-Page``."""
    renewed: str | None = getattr(request, _RENEWED, None)
    if renewed:
        response[PAGE_HEADER] = renewed
    return response


def page_client(request: HttpRequest, address: str) -> Client:
    """A visitor of the page (signed in: its user; else its address), with ``SPEECH["PAGE_LIMITS"]``."""
    config = get_config()
    session = getattr(request, "session", None)
    nonce = str(session.get(PAGE_SESSION_KEY, "")) if session is not None else ""
    page: dict[str, Any] = config["PAGE_LIMITS"]
    user_signed_in = signed_in(request)
    user = getattr(request, "user", None)
    return Client(
        id=f"user:{user.pk}" if user_signed_in and user is not None else f"page:{address}",
        scope=PUBLIC_SCOPE,
        rate=page.get("rate", config["RATE_LIMIT"]),
        max_streams=page.get("max_streams", config["MAX_STREAMS_PER_CLIENT"]),
        upstream=user_signed_in or config["ANONYMOUS_PAGE_UPSTREAM"],
        # The page's session (its token's nonce), not its address: visitors behind one address are strangers.
        owner="page:" + hashlib.sha256(nonce.encode()).hexdigest()[:32] if nonce else f"page:{address}",
        address=address,
    )


def signed_in(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)
