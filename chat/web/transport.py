"""`LineTransport`: what a `ChatProtocol` writes to, on top of a WebSocket.

The chat protocol writes serialized IRC lines (CRLF-terminated, several at
once) and uses the usual transport calls.  Here each line becomes one
WebSocket message without its CRLF; closing becomes a WebSocket close;
producer registrations and pause/resume go to the byte transport under the
WebSocket, so the send queue and fakelag of `chat.limits` work as they do
on TCP.  `getPeer` is the client's real address (after `chat.web.proxies`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol as Interface
from typing import cast

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import (
    IConsumer,
    IProducer,
    IPushProducer,
    ISSLTransport,
    ITCPTransport,
)
from zope.interface import implementer

from chat.traffic import Traffic

CRLF = b"\r\n"


Address = IPv4Address | IPv6Address


class LineSink(Interface):
    """The WebSocket side of a `LineTransport`."""

    def send_line(self, line: bytes) -> None:
        """Send one IRC line, without CRLF, as one WebSocket message."""

    def close(self) -> None:
        """Start a normal WebSocket close (code 1000)."""

    def abort(self) -> None:
        """Drop the connection at once."""


@implementer(ITCPTransport, IConsumer, IPushProducer)
class LineTransport:
    """The transport of a `ChatProtocol` served over a WebSocket.

    *sink* is the WebSocket, *transport* the byte transport under it (TCP or
    TLS) and *peer* the client's address.
    """

    def __init__(
        self,
        sink: LineSink,
        transport: ITCPTransport,
        peer: Address,
        traffic: Traffic | None = None,
    ) -> None:
        self.sink = sink
        #: The byte transport (also for the send queue's look at the socket).
        self.transport = transport
        self.peer = peer
        self.traffic = traffic
        self.disconnecting = False
        self._partial = b""

    # -- ITransport -------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.disconnecting or not data:
            return
        if self.traffic is not None:
            self.traffic.bytes_out += len(data)
        if self._partial:
            data = self._partial + data
        *lines, self._partial = data.split(CRLF)
        for line in lines:
            self.sink.send_line(line)

    def writeSequence(self, data: Iterable[bytes]) -> None:
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        if not self.disconnecting:
            self.disconnecting = True
            self.sink.close()

    def abortConnection(self) -> None:
        self.disconnecting = True
        self.sink.abort()

    def loseWriteConnection(self) -> None:
        self.loseConnection()

    def getPeer(self) -> Address:
        return self.peer

    def getHost(self) -> Address:
        return self.transport.getHost()

    def getTcpNoDelay(self) -> bool:
        return bool(self.transport.getTcpNoDelay())

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.transport.setTcpNoDelay(enabled)

    def getTcpKeepAlive(self) -> bool:
        return bool(self.transport.getTcpKeepAlive())

    def setTcpKeepAlive(self, enabled: bool) -> None:
        self.transport.setTcpKeepAlive(enabled)

    # -- IConsumer and IPushProducer ------------------------------------------

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        cast(IConsumer, self.transport).registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        cast(IConsumer, self.transport).unregisterProducer()

    def pauseProducing(self) -> None:
        """Stop reading from the client (fakelag)."""
        cast(IPushProducer, self.transport).pauseProducing()

    def resumeProducing(self) -> None:
        cast(IPushProducer, self.transport).resumeProducing()

    def stopProducing(self) -> None:
        self.abortConnection()


@implementer(ISSLTransport)
class SecureLineTransport(LineTransport):
    """A `LineTransport` over TLS (or a trusted proxy that terminated TLS):
    the user is shown as secure, and a TLS client certificate counts."""

    def getPeerCertificate(self) -> object:
        get = getattr(self.transport, "getPeerCertificate", None)
        return get() if get is not None else None
