"""The client's real address behind reverse proxies the site trusts (``SPEECH["TRUSTED_PROXIES"]``).

Each proxy appends the address it received the request from to ``X-Forwarded-For``. Read from the
right, every entry added by a trusted proxy is true; the first address that is not a trusted proxy is
the client, and anything to its left is whatever that client chose to send. From an untrusted peer
the header is ignored. (django-xff trusts a depth without checking who the peer is, django-ipware
also believes a dozen other headers: neither keeps a directly connected client from choosing its
own address.)
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    """``("10.0.0.1", "192.168.0.0/16")`` -> networks; a ``ValueError`` names an entry that is neither."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in trusted)


def real_client(peer: str, forwarded_for: str, trusted: Iterable[Network]) -> str:
    """The address the nearest untrusted hop connected from; ``peer`` unless it is a trusted proxy."""
    trusted = tuple(trusted)
    client = peer
    hops = [hop.strip() for hop in forwarded_for.split(",")] if forwarded_for else []
    while is_trusted(client, trusted) and hops:
        hop = hops.pop()
        try:
            client = str(ipaddress.ip_address(hop))
        except ValueError:  # not an address: nothing further left can be believed either
            break
    return client


def is_trusted(address: str, trusted: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:  # a dual-stack socket's IPv4 peer
        ip = ip.ipv4_mapped
    return any(ip in network for network in trusted)
