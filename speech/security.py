"""Who may call /v1/* and how much: API keys, the site's own page, wrong-credential throttling; CSP.

``authenticate`` is the router's ninja ``auth`` callable. It returns the ``Client`` (identity, limits,
cache scope) or raises ``AuthenticationFailed`` (401) / ``RateLimited`` (429), OpenAI-shaped.

The site's own page gets no key: the server issues it a page token (``page_token``), signed with
``SECRET_KEY``, expiring after ``PAGE_TOKEN_MAX_AGE`` and bound to a random value kept in the
visitor's session, so a token copied out of the page is useless without that session's cookie. A
login (which rotates the session key) draws a new value: tokens issued before it stop working.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from django.contrib.auth.signals import user_logged_in
from django.core import signing
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponseBase
from django.utils.module_loading import import_string

from speech import limits, proxies
from speech.conf import get_config
from speech.engines.base import get_engine
from speech.errors import AuthenticationFailed, PermissionDenied, RateLimited

PAGE_HEADER = "X-Speech-Page"
PAGE_SALT = "speech.page"
PAGE_SESSION_KEY = "speech_page"
PUBLIC_SCOPE = "public"
STALL_SEND_BUFFER = 64 * 1024  # ~1.3 s of pcm, 16 s of 32 kbit/s mp3: far more than a network path needs here
_RENEWED = "speech_renewed_page_token"  # the request attribute that carries a fresh token to the answer


@dataclass(frozen=True)
class Client:
    """Who is calling: ``id`` names it in limits and usage records; ``scope`` is its audio cache."""

    id: str
    scope: str
    rate: str | None
    max_streams: int
    # May reach engines that do not synthesise here (paid upstreams).
    upstream: bool = True
    # Who may read what its syntheses leave behind (words, subtitles): the API key, the page's session,
    # else the address. Empty: the same as ``id``.
    owner: str = ""
    address: str = ""  # the network identity it called from (client_address), for per-address caps

    @property
    def resource_owner(self) -> str:
        return self.owner or self.id


@dataclass(frozen=True)
class ApiKey:
    digest: bytes  # sha256 of the key: keys may be configured hashed, and compare in constant time
    name: str
    limits: dict[str, Any]


def client_of(request: HttpRequest) -> Client:
    """The ``Client`` that ``authenticate`` (or the GET stream) attached to this request."""
    client: Client = request.auth  # type: ignore[attr-defined]
    return client


def client_address(request: HttpRequest) -> str:
    """The caller's network identity (every limit, cap and record keyed by address comes from here)."""
    return f"ip:{client_ip(request)}"


def client_ip(request: HttpRequest) -> str:
    """The socket peer, or whom a trusted proxy (``SPEECH["TRUSTED_PROXIES"]``) says it forwarded the
    request for. Also django-axes' ``AXES_CLIENT_IP_CALLABLE``, so admin lockouts count the same client."""
    meta = request.META
    return proxies.real_client(meta.get("REMOTE_ADDR", ""), meta.get("HTTP_X_FORWARDED_FOR", ""), trusted_proxies())


def from_trusted_proxy(request: HttpRequest) -> bool:
    """Whether the socket peer is one of ``SPEECH["TRUSTED_PROXIES"]``, whose headers may be believed."""
    return proxies.is_trusted(request.META.get("REMOTE_ADDR", ""), trusted_proxies())


def trusted_proxies() -> tuple[proxies.Network, ...]:
    return proxies.networks(tuple(get_config()["TRUSTED_PROXIES"]))


def authenticate(request: HttpRequest) -> Client:
    client = identify(request)
    limits.check_rate(client)
    return client


def identify(request: HttpRequest) -> Client:
    keys = api_keys()
    address = client_address(request)
    page = request.headers.get(PAGE_HEADER)
    authorization = request.headers.get("Authorization")
    # A valid credential is admitted whatever wrong ones came from its address before (one guesser
    # behind a shared address must not lock out everyone there); wrong ones are counted, and once
    # there are too many from the address, refused with 429 rather than 401 (``_failed``).
    if keys and authorization is not None:
        return _key_client(authorization, keys, address)
    # The page's token earns the page's own limits, open API or not; one that lapsed says "reload the page"
    # rather than quietly making a signed-in visitor anonymous.
    if page is not None:
        _refuse_bad_page(
            request, page, address, ("This page's token is invalid: reload the page.", "invalid_page_token")
        )
        return _page_client(request, address)
    if not keys:  # an open API: keys are ignored
        return _open(address)
    raise AuthenticationFailed(
        "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'.",
        code="missing_api_key",
        headers={"WWW-Authenticate": "Bearer"},
    )


def api_keys() -> list[ApiKey]:
    """``SPEECH["API_KEYS"]``: plain strings, or dicts with ``key`` or ``key_sha256`` and optional
    ``name``, ``rate`` and ``max_streams`` (absent: the site-wide limit)."""
    keys = []
    for entry in get_config()["API_KEYS"]:
        spec: dict[str, Any] = {"key": entry} if isinstance(entry, str) else entry
        digest = bytes.fromhex(spec["key_sha256"]) if "key_sha256" in spec else _sha256(spec["key"])
        name = spec.get("name") or digest.hex()[:16]
        keys.append(ApiKey(digest, name, {k: spec[k] for k in ("rate", "max_streams") if k in spec}))
    return keys


def _sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def _key_client(authorization: str, keys: list[ApiKey], address: str) -> Client:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        _failed(address, "Malformed Authorization header: send 'Authorization: Bearer YOUR_KEY'.", "invalid_api_key")
    digest = _sha256(token.strip())
    found = None
    for key in keys:  # every key is compared, so the time taken does not tell which one matched
        if hmac.compare_digest(digest, key.digest):
            found = key
    if found is None:
        _failed(address, "Incorrect API key provided.", "invalid_api_key")
    config = get_config()
    return Client(
        id=f"key:{found.name}",
        scope=f"key:{found.name}",  # never "public", whatever the key's name
        rate=found.limits.get("rate", config["RATE_LIMIT"]),
        max_streams=found.limits.get("max_streams", config["MAX_STREAMS_PER_CLIENT"]),
        address=address,
    )


def _open(address: str) -> Client:
    config = get_config()
    return Client(address, PUBLIC_SCOPE, config["RATE_LIMIT"], config["MAX_STREAMS_PER_CLIENT"], address=address)


def _check_failures(address: str) -> None:
    rate = get_config()["AUTH_FAILURE_LIMIT"]
    if rate and (retry := limits.exhausted(f"speech:fail:{address}", rate)):
        raise RateLimited(
            f"Too many failed authentication attempts from your address. Try again in {retry} s.",
            code="too_many_failures",
            headers={"Retry-After": str(retry)},
        )


def _failed(address: str, message: str, code: str) -> NoReturn:
    """Count a wrong credential against the address, then refuse it: 429 (uncounted) once the address
    has had too many, else 401."""
    _check_failures(address)
    if rate := get_config()["AUTH_FAILURE_LIMIT"]:
        limits.count(f"speech:fail:{address}", rate)
    raise AuthenticationFailed(message, code=code, headers={"WWW-Authenticate": "Bearer"})


# The site's own page.


def page_allowed(request: HttpRequest) -> bool:
    """``SPEECH["PAGE_ACCESS"]``: "anyone", "authenticated", or the dotted path of ``f(request) -> bool``."""
    access: str = get_config()["PAGE_ACCESS"]
    if access == "anyone":
        return True
    if access == "authenticated":
        return _signed_in(request)
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


@receiver(user_logged_in, dispatch_uid="speech.security.new_page_nonce")
def _new_page_nonce(sender: object, request: HttpRequest | None, **kwargs: object) -> None:
    """A login rotates the session key (``cycle_key``) but keeps the session's data: the page's nonce
    goes with the old key, so tokens issued before the login (to whoever held that session) stop working."""
    session = getattr(request, "session", None)
    if session is not None:
        session.pop(PAGE_SESSION_KEY, None)


def _check_page(request: HttpRequest, token: str) -> Literal["valid", "expired", "invalid"]:
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


def _refuse_bad_page(request: HttpRequest, token: str, address: str, invalid: tuple[str, str]) -> None:
    """401 unless ``token`` is valid; ``invalid`` is the message and code for a token that never was."""
    check = _check_page(request, token)
    if check == "expired":
        _failed(address, "This page's token has expired: reload the page.", "page_token_expired")
    if check == "invalid":
        _failed(address, *invalid)


def renew_page_token(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    """Give the answer to a page token past half its age a fresh token in ``X-Speech-Page``."""
    renewed: str | None = getattr(request, _RENEWED, None)
    if renewed:
        response[PAGE_HEADER] = renewed
    return response


def _page_client(request: HttpRequest, address: str) -> Client:
    config = get_config()
    session = getattr(request, "session", None)
    nonce = str(session.get(PAGE_SESSION_KEY, "")) if session is not None else ""
    page: dict[str, Any] = config["PAGE_LIMITS"]
    signed_in = _signed_in(request)
    user = getattr(request, "user", None)
    return Client(
        id=f"user:{user.pk}" if signed_in and user is not None else f"page:{address}",
        scope=PUBLIC_SCOPE,
        rate=page.get("rate", config["RATE_LIMIT"]),
        max_streams=page.get("max_streams", config["MAX_STREAMS_PER_CLIENT"]),
        upstream=signed_in or config["ANONYMOUS_PAGE_UPSTREAM"],
        # The page's session (its token's nonce), not its address: visitors behind one address are strangers.
        owner="page:" + hashlib.sha256(nonce.encode()).hexdigest()[:32] if nonce else f"page:{address}",
        address=address,
    )


def _signed_in(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)


def check_engine(client: Client, model: str) -> None:
    """Anonymous page visitors never spend the site's upstream money unless the site says so."""
    alias = get_config()["MODELS"].get(model)
    if alias in get_config()["ENGINES"] and not get_engine(alias).synthesises_locally and not client.upstream:
        raise PermissionDenied(
            "This model is served by a paid upstream engine, which anonymous visitors may not use. "
            "Use the 'piper' model, or sign in.",
            param="model",
            code="upstream_not_allowed",
        )


def stream_client(request: HttpRequest) -> Client:
    """The client of a GET /speech/stream: the page's token in ``?token=``, from the page's own browser."""
    token = request.GET.get("token", "")
    address = client_address(request)
    _refuse_bad_page(
        request, token, address, ("This stream URL needs the token of the page that made it.", "bad_token")
    )
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        raise AuthenticationFailed("This stream URL is not for use from other sites.", code="cross_site")
    return _page_client(request, address)


def limit_stalls(request: HttpRequest) -> None:
    """A listener that reads nothing for ``STALL_TIMEOUT`` seconds fails our next write, so its stream
    ends and its slot frees. A kernel send timeout, not ``settimeout``: that would make every read of
    the socket (the hang-up watcher's peek) wait too."""
    sock = request.META.get("gunicorn.socket")
    if sock is not None:
        seconds = get_config()["STALL_TIMEOUT"]
        with contextlib.suppress(OSError):
            timeval = struct.pack("ll", int(seconds), int(seconds % 1 * 1_000_000))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
            # A fixed, small send buffer: the kernel's grows to megabytes, which an unread stream fills
            # for minutes before a write would wait (hangup.drop_stalled counts from then).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STALL_SEND_BUFFER)


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
