"""Who is calling: the ``Client`` a request is served as, and the network address it called from.

``speech.keys`` makes the ``Client`` of an API request (a key, the page's token, or an open API's
address); limits, usage records and the audio cache read it. Addresses are the socket peer's, or
whom a trusted reverse proxy (``SPEECH["TRUSTED_PROXIES"]``) says it forwarded the request for.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest

from speech import proxies
from speech.conf import get_config

PUBLIC_SCOPE = "public"


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


def client_of(request: HttpRequest) -> Client:
    """The ``Client`` that ``keys.authenticate`` (or the GET stream) attached to this request."""
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
