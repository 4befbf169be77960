"""IRC over WebSocket (ircv3.net/specs/extensions/websocket) with autobahn.

`IRCWebSocket` does the WebSocket side only: the handshake checks (origin,
subprotocol, the address behind trusted proxies) and the framing.  The IRC
side is an ordinary `ChatProtocol` made by ``ChatServer.buildProtocol``
(so the per-address limits apply) and connected to a
`chat.web.transport.LineTransport`: every received message is fed to it as
one CRLF-terminated line, every line it writes goes out as one message.

autobahn checks the frames: UTF-8 in text messages (close 1007), the size
of a message (close 1009), masking, control frames, the closing handshake.
It is used rather than wsproto because it is a Twisted protocol: same
transports and producers as the IRC listeners, mounted in twisted.web by
`WebSocketResource`, no framing code of ours.
"""

from __future__ import annotations

from typing import Any, cast

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IConsumer, ISSLTransport, ITCPTransport
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from txaio.tx import set_global_log_level

from chat.protocol import ChatProtocol
from chat.server import ChatServer
from chat.traffic import Traffic
from chat.web.origins import origin_allowed, own_origin
from chat.web.proxies import forwarded_for, forwarded_scheme
from chat.web.transport import Address, LineTransport, SecureLineTransport

TEXT = "text.ircv3.net"
BINARY = "binary.ircv3.net"
SUBPROTOCOLS = (TEXT, BINARY)
#: The largest message accepted: a whole IRC line with tags, without CRLF.
MAX_MESSAGE = ChatProtocol.MAX_LENGTH
#: Close code of a close started by the server (after its ``ERROR`` line).
NORMAL_CLOSE = 1000
#: Origins longer than this are cut in the log line of a refusal.
LOGGED_ORIGIN = 200

log = Logger()


class IRCWebSocket(WebSocketServerProtocol):
    """One WebSocket client and the `ChatProtocol` behind it."""

    def __init__(self) -> None:
        super().__init__()
        #: The IRC protocol, once the handshake is done (a `Refusal` when
        #: a connection limit says no).
        self.irc: Protocol | None = None
        self.binary = False
        self.secure = False
        self.client: Address | None = None

    @property
    def owner(self) -> IRCWebSocketFactory:
        """The factory that made this connection."""
        return cast(IRCWebSocketFactory, self.factory)

    @property
    def byte_transport(self) -> ITCPTransport:
        """The TCP or TLS transport under the WebSocket."""
        assert self.transport is not None, "not connected"
        return cast(ITCPTransport, self.transport)

    # -- handshake ------------------------------------------------------

    def onConnect(self, request: ConnectionRequest) -> str | None:
        """Check the origin, find the client's address, pick the subprotocol."""
        headers: dict[str, str] = request.headers
        peer = self.byte_transport.getPeer()
        peer_host = getattr(peer, "host", "") or "unknown"
        web = self.owner.server.config.web
        tls = ISSLTransport.providedBy(self.byte_transport)
        scheme = forwarded_scheme(
            peer_host,
            headers.get("x-forwarded-proto"),
            web.trusted_proxies,
            "https" if tls else "http",
        )
        origin = headers.get("origin")
        own = own_origin(scheme, headers.get("host", ""))
        if origin is not None and not origin_allowed(origin, web.allowed_origins, own):
            log.info(
                "Refused a WebSocket from {peer}: origin {origin} is not allowed",
                peer=peer_host,
                origin=origin[:LOGGED_ORIGIN],
            )
            raise ConnectionDeny(ConnectionDeny.FORBIDDEN, "Origin not allowed")
        host = forwarded_for(
            peer_host, headers.get("x-forwarded-for"), web.trusted_proxies
        )
        port = getattr(peer, "port", 0) if host == peer_host else 0
        self.client = (IPv6Address if ":" in host else IPv4Address)("TCP", host, port)
        self.secure = scheme == "https"
        for offered in request.protocols:
            if offered in SUBPROTOCOLS:
                self.binary = offered == BINARY
                return str(offered)
        return None

    def onOpen(self) -> None:
        """Connect the IRC protocol, as a TCP listener would."""
        transport = self.byte_transport
        # twisted.web's channel registered itself as the producer of this
        # transport; the IRC protocol's send queue takes its place.
        cast(IConsumer, transport).unregisterProducer()
        assert self.client is not None
        kind = SecureLineTransport if self.secure else LineTransport
        lines = kind(self, transport, self.client, self.owner.traffic)
        self.owner.connections.add(self)
        self.irc = self.owner.server.buildProtocol(self.client)
        self.irc.makeConnection(lines)

    # -- frames in ------------------------------------------------------

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        """Feed one message to the IRC protocol as one line."""
        irc = self.irc
        if irc is None:
            return
        traffic = self.owner.traffic
        traffic.bytes_in += len(payload)
        traffic.lines_in += 1
        if payload.endswith(b"\n"):
            payload = payload[:-2] if payload.endswith(b"\r\n") else payload[:-1]
        if b"\r" in payload or b"\n" in payload:
            # One message is one line: refuse it, but let fakelag count it.
            if isinstance(irc, ChatProtocol):
                irc.fail("*", "INVALID_MESSAGE", "One line per WebSocket message")
            payload = b""
        irc.dataReceived(payload + b"\r\n")

    def onPing(self, payload: bytes) -> None:
        """Answer, and count the ping as an empty line: fakelag paces pings
        too, as it does IRC's ``PING``."""
        super().onPing(payload)
        if self.irc is not None:
            self.irc.dataReceived(b"\r\n")

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        irc, self.irc = self.irc, None
        if irc is not None:
            error = ConnectionDone() if wasClean else ConnectionLost()
            irc.connectionLost(Failure(error))
        self.owner.forget(self)

    # -- `LineSink`: what the line transport calls ------------------------

    def send_line(self, line: bytes) -> None:
        if self.state != self.STATE_OPEN:
            # Closing (its close frame went out) or closed: nothing more is
            # sent, as on a TCP connection that is disconnecting.  Lines come
            # here then when another user's QUIT is relayed meanwhile.
            return
        if not self.binary:
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                line = line.decode("utf-8", "replace").encode("utf-8")
        self.sendMessage(line, self.binary)

    def close(self) -> None:
        self.sendClose(NORMAL_CLOSE)

    def abort(self) -> None:
        self.dropConnection(abort=True)


class IRCWebSocketFactory(WebSocketServerFactory):
    """Makes `IRCWebSocket` connections into the users of *server*.

    Origins and trusted proxies are read from ``server.config.web`` at each
    handshake, so a reload applies to the next connections.
    """

    protocol = IRCWebSocket

    def __init__(
        self, server: ChatServer, traffic: Traffic | None = None, **kwargs: Any
    ) -> None:
        super().__init__(server="chat-server", protocols=list(SUBPROTOCOLS), **kwargs)
        self.server = server
        self.traffic = traffic or Traffic()
        #: The open WebSocket connections (after their handshake).
        self.connections: set[IRCWebSocket] = set()
        self._idle_waiters: list[Deferred[None]] = []
        self.setProtocolOptions(
            maxFramePayloadSize=MAX_MESSAGE,
            maxMessagePayloadSize=MAX_MESSAGE,
            # Send the close code (1007, 1009...) instead of just dropping.
            failByDrop=False,
            # twisted.web has read the whole request before we see it.
            openHandshakeTimeout=0,
            closeHandshakeTimeout=server.config.timeouts.close_grace,
            # IRC's own PING keeps the connection alive.
            autoPingInterval=0,
            # Our own origin check decides, "null" included.
            allowNullOrigin=True,
            # No autobahn status page at /socket.
            webStatus=False,
        )
        # autobahn says a lot, even about a refused origin or a client's
        # protocol error; our own log lines say what matters.
        set_global_log_level("error")

    def forget(self, connection: IRCWebSocket) -> None:
        """*connection* is closed."""
        self.connections.discard(connection)
        if not self.connections:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def when_idle(self) -> Deferred[None]:
        """Fires once no WebSocket connection is left (for the shutdown)."""
        if not self.connections:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._idle_waiters.append(waiter)
        return waiter

    def abort_all(self) -> None:
        """Drop every WebSocket connection left."""
        for connection in list(self.connections):
            connection.abort()
