"""Who may call /v1/* and how much: API keys, the site's page token, wrong-credential throttling.

``authenticate`` is the router's ninja ``auth`` callable. It returns the ``Client`` (identity, limits,
cache scope) or raises ``AuthenticationFailed`` (401) / ``RateLimited`` (429), OpenAI-shaped. The
page's token is ``speech.page_tokens``'; the GET stream's client is ``stream_client``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from django.http import HttpRequest

from speech import limits
from speech.clients import PUBLIC_SCOPE, Client, client_address
from speech.conf import get_config
from speech.errors import AuthenticationFailed, PermissionDenied, RateLimited
from speech.page_tokens import PAGE_HEADER, check_page, page_client

if TYPE_CHECKING:
    from speech.engines.base import Engine


@dataclass(frozen=True)
class ApiKey:
    digest: bytes  # sha256 of the key: keys may be configured hashed, and compare in constant time
    name: str
    limits: dict[str, Any]


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
        return page_client(request, address)
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


def _refuse_bad_page(request: HttpRequest, token: str, address: str, invalid: tuple[str, str]) -> None:
    """401 unless ``token`` is valid; ``invalid`` is the message and code for a token that never was."""
    check = check_page(request, token)
    if check == "expired":
        _failed(address, "This page's token has expired: reload the page.", "page_token_expired")
    if check == "invalid":
        _failed(address, *invalid)


def stream_client(request: HttpRequest) -> Client:
    """The client of a GET /speech/stream: the page's token in ``?token=``, from the page's own browser."""
    token = request.GET.get("token", "")
    address = client_address(request)
    _refuse_bad_page(
        request, token, address, ("This stream URL needs the token of the page that made it.", "bad_token")
    )
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        raise AuthenticationFailed("This stream URL is not for use from other sites.", code="cross_site")
    return page_client(request, address)


def check_engine(client: Client, engine: Engine) -> None:
    """Anonymous page visitors never spend the site's upstream money unless the site says so."""
    if not engine.synthesises_locally and not client.upstream:
        raise PermissionDenied(
            "This model is served by a paid upstream engine, which anonymous visitors may not use. "
            "Use the 'piper' model, or sign in.",
            param="model",
            code="upstream_not_allowed",
        )
