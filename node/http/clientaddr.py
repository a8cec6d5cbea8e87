"""The client's address for abuse limits: the peer, or — behind ``trusted_proxies`` only — the
address the proxies forwarded.

``X-Forwarded-For`` is believed only when the peer itself is a trusted proxy (anyone else can write
the header). The list is read from the right: each hop appends the address it saw, so the first
address that is not a trusted proxy is the client; everything left of it was written by the client.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _trusted(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in n for n in networks)


def client_address(request: web.Request, trusted_proxies: tuple[str, ...]) -> str:
    """The client's IP address as text (``unknown`` when the transport has none)."""
    peer = request.remote or "unknown"
    networks = _networks(tuple(trusted_proxies))
    if not networks or not _trusted(peer, networks):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage from a proxy we trust: fall back to the proxy itself
    return hops[0] if hops else peer
