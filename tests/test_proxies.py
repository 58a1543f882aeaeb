"""The client's address behind trusted proxies, and nothing a client writes can change it."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory
from hypothesis import given
from hypothesis import strategies as st

from speech.checks import check_settings
from speech.clients import client_address
from speech.keys import identify
from speech.proxies import networks, real_client

NGINX = networks(("127.0.0.1",))
CHAIN = networks(("10.0.0.0/8", "::1"))


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "trusted", "client"),
    [
        ("127.0.0.1", "203.0.113.7", NGINX, "203.0.113.7"),
        ("127.0.0.1", "", NGINX, "127.0.0.1"),
        # The client prepends whatever it likes; only what the proxy appended counts.
        ("127.0.0.1", "198.51.100.1, 203.0.113.7", NGINX, "203.0.113.7"),
        # From an untrusted peer the header means nothing.
        ("203.0.113.7", "198.51.100.1", NGINX, "203.0.113.7"),
        ("127.0.0.1", "198.51.100.1", (), "127.0.0.1"),
        # Two trusted hops (a load balancer, then nginx), read right to left.
        ("10.0.0.2", "198.51.100.1, 203.0.113.7, 10.0.0.1", CHAIN, "203.0.113.7"),
        # Every hop trusted: the first of them is the client (a backend inside the network).
        ("10.0.0.2", "10.1.2.3, 10.0.0.1", CHAIN, "10.1.2.3"),
        # Garbage a trusted proxy would not write: stop at the last address known to be true.
        ("127.0.0.1", "203.0.113.7, unknown", NGINX, "127.0.0.1"),
        ("127.0.0.1", "203.0.113.7:4711", NGINX, "127.0.0.1"),
        ("::1", "2001:DB8:0::7", CHAIN, "2001:db8::7"),
        ("::ffff:127.0.0.1", "203.0.113.7", NGINX, "203.0.113.7"),
    ],
)
def test_real_client(peer: str, forwarded_for: str, trusted: Any, client: str) -> None:
    assert real_client(peer, forwarded_for, trusted) == client


addresses = st.ip_addresses(v=4).map(str)
anything = st.text(st.characters(codec="latin-1"), max_size=40)


@given(peer=addresses.filter(lambda a: a != "127.0.0.1"), header=anything)
def test_an_untrusted_peer_cannot_name_another_client(peer: str, header: str) -> None:
    assert real_client(peer, header, NGINX) == peer


@given(spoofed=st.lists(anything, max_size=4), client=addresses.filter(lambda a: not a.startswith("10.")))
def test_what_the_client_prepends_is_never_believed(spoofed: list[str], client: str) -> None:
    header = ", ".join([*spoofed, client, "10.0.0.1"])
    assert real_client("10.0.0.2", header, CHAIN) == client


def test_the_address_identity_reads_the_request(settings: Any) -> None:
    request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")
    settings.SPEECH = {}
    assert client_address(request) == "ip:127.0.0.1"
    settings.SPEECH = {"TRUSTED_PROXIES": ["127.0.0.1"]}
    assert client_address(request) == "ip:203.0.113.7"
    assert identify(request).id == "ip:203.0.113.7"


def test_a_malformed_proxy_is_an_error_with_a_hint(settings: Any) -> None:
    settings.SPEECH = {"TRUSTED_PROXIES": ["10.0.0.0/8", "nginx.internal"]}
    (error,) = [message for message in check_settings() if message.id == "speech.E008"]
    assert "nginx.internal" in error.msg
    assert "SPEECH_TRUSTED_PROXIES" in (error.hint or "")
