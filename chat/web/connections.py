"""`ConnectionCap`: open connections per address on a web listener.

A WebSocket counts against ``limits.max_per_address`` like any IRC
connection once it is upgraded (``ChatServer.buildProtocol``).  Before that
it is an HTTP connection, and so are the page's own fetches; this cap keeps
one address from holding an unbounded number of them open.  It allows what
a browser needs on top of the IRC limit (`BROWSER_CONNECTIONS`), and does
not apply to ``limits.exempt`` nor to ``web.trusted-proxies`` (everyone
behind a proxy comes from its address).  A connection over the cap is
closed at once, before any TLS handshake.
"""

from __future__ import annotations

from typing import cast

from twisted.internet.interfaces import IAddress, IProtocolFactory, ITCPTransport
from twisted.internet.protocol import Protocol
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory

from chat.limits import address_key, is_exempt
from chat.server import ChatServer

#: Connections a browser opens to one site (HTTP/1.1: six) and a spare.
BROWSER_CONNECTIONS = 8


class _Refused(Protocol):
    """A connection over the cap: cut at once."""

    def connectionMade(self) -> None:
        cast(ITCPTransport, self.transport).abortConnection()


class ConnectionCap(WrappingFactory):
    """Wraps a web listener's factory; refuses an address's extra connections."""

    noisy = False

    def __init__(self, wrapped: IProtocolFactory, server: ChatServer) -> None:
        super().__init__(wrapped)
        self.server = server
        self.open: dict[str, int] = {}
        self._keys: dict[ProtocolWrapper, str] = {}

    def cap(self) -> int:
        """Open connections allowed per address."""
        return self.server.config.limits.max_per_address + BROWSER_CONNECTIONS

    def buildProtocol(self, addr: IAddress | None) -> ProtocolWrapper:
        host = getattr(addr, "host", "")
        config = self.server.config
        unlimited = is_exempt(host, config.limits.exempt) or is_exempt(
            host, config.web.trusted_proxies
        )
        key = address_key(host)
        if not unlimited and self.open.get(key, 0) >= self.cap():
            self.server.stats["connections_refused"] += 1
            return self.protocol(self, _Refused())
        protocol = super().buildProtocol(addr)
        if not unlimited:
            self._keys[protocol] = key
            self.open[key] = self.open.get(key, 0) + 1
        return protocol

    def unregisterProtocol(self, p: ProtocolWrapper) -> None:
        super().unregisterProtocol(p)
        key = self._keys.pop(p, None)
        if key is None:
            return
        left = self.open[key] - 1
        if left:
            self.open[key] = left
        else:
            del self.open[key]
