"""The client's real address behind trusted reverse proxies.

A proxy appends the address it received the connection from to
``X-Forwarded-For``.  Reading the list from the right, every hop that is a
trusted proxy is skipped; the first address that is not is the client.
Anyone else can write anything in the header, so it is read only when the
TCP peer itself is trusted.
"""

from __future__ import annotations

import ipaddress

from chat.limits import Network, parse_networks


def _trusted(host: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def _address(entry: str) -> str | None:
    """The IP address in one ``X-Forwarded-For`` entry (``[v6]:port`` and
    ``v4:port`` forms included), or None."""
    entry = entry.strip()
    if entry.startswith("[") and "]" in entry:
        entry = entry[1 : entry.index("]")]
    elif entry.count(":") == 1:
        entry = entry.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(entry))
    except ValueError:
        return None


def forwarded_for(peer: str, header: str | None, trusted: tuple[str, ...]) -> str:
    """The client's address: *peer*, or from *header* when *peer* is trusted.

    A malformed entry stops the walk: the last trusted hop is then taken as
    the client, since nothing left of it can be believed.
    """
    networks = parse_networks(trusted)
    if not header or not _trusted(peer, networks):
        return peer
    client = peer
    for entry in reversed(header.split(",")):
        address = _address(entry)
        if address is None:
            break
        client = address
        if not _trusted(address, networks):
            break
    return client


def forwarded_scheme(
    peer: str, header: str | None, trusted: tuple[str, ...], scheme: str
) -> str:
    """The scheme the page was served with: *header*'s (``X-Forwarded-Proto``,
    its first value) when *peer* is a trusted proxy, else *scheme*."""
    if not header or not _trusted(peer, parse_networks(trusted)):
        return scheme
    first = header.split(",", 1)[0].strip().lower()
    return first if first in ("http", "https") else scheme
