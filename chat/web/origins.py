"""Which pages may open a WebSocket: the ``Origin`` check.

Origins are compared as (scheme, host, port) triples, with the scheme's
default port filled in and the host in lower case, so
``https://Chat.Example.org`` and ``https://chat.example.org:443`` are one.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

#: An allowed-origins entry that allows any origin.
ANY = "*"
DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]


def parse_origin(text: str) -> Origin | None:
    """``scheme://host[:port]`` as a triple, or None if it is not one.

    Only http and https origins without path, query or user name count.
    """
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in DEFAULT_PORTS or not host or parts.username is not None:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    return scheme, host, DEFAULT_PORTS[scheme] if port is None else port


def own_origin(scheme: str, host_header: str) -> Origin | None:
    """The origin of a page served over *scheme* for the ``Host`` *host_header*."""
    return parse_origin(f"{scheme}://{host_header}")


def origin_allowed(origin: str, allowed: Iterable[str], own: Origin | None) -> bool:
    """Whether a handshake from *origin* is allowed.

    With no *allowed* entries only the page's *own* origin is; ``*`` in
    *allowed* allows any.  An origin that does not parse (``null`` from a
    sandboxed page or a file) is allowed only by ``*``.
    """
    entries = tuple(allowed)
    if ANY in entries:
        return True
    parsed = parse_origin(origin)
    if parsed is None:
        return False
    if not entries:
        return parsed == own
    return any(parse_origin(entry) == parsed for entry in entries)
