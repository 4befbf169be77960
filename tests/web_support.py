"""Helpers for the web listener's tests: raw frames, a site on a Clock, and
real WebSocket clients on loopback.

Unit tests drive the real twisted.web `Site` (static files and the
``/socket`` resource) over a `StringTransport`, with frames built by hand
(`frame`, `read_frames`), so every byte of the framing is under the test's
control.  End-to-end tests use `start_web_server` and `connect_websocket`:
autobahn's client over real loopback TLS, with the same line interface as
`tests.e2e_support.LineClient`.
"""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import txaio
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    connectProtocol,
    wrapClientTLS,
)
from twisted.internet.protocol import connectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from chat.config import Limits, ServerConfig, WebConfig
from chat.server import ChatServer
from chat.web.site import WebSite, web_site
from tests.e2e_support import (
    TLS_LOOPBACK,
    LineClient,
    RunningServer,
    client_tls,
    port_of,
    reactor,
    start_server,
)

TEXT = 0x1
BINARY = 0x2
CLOSE = 0x8
PING = 0x9
PONG = 0xA
CONTINUATION = 0x0

#: Web listeners of `start_web_server`: loopback only, any free port.
WEB_TLS_LOOPBACK = "web:tls:tcp:0:interface=127.0.0.1"
WEB_PLAIN_LOOPBACK = "web:tcp:0:interface=127.0.0.1"


# -- frames --------------------------------------------------------------------


def frame(
    payload: bytes,
    opcode: int = TEXT,
    fin: bool = True,
    mask: bytes = b"\x01\x02\x03\x04",
) -> bytes:
    """One client frame (masked, as RFC 6455 requires of clients)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([0x80 | size])
    elif size < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", size)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", size)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


@dataclass(frozen=True)
class Frame:
    """A frame from the server."""

    opcode: int
    payload: bytes
    fin: bool = True

    @property
    def close_code(self) -> int | None:
        if self.opcode != CLOSE or len(self.payload) < 2:
            return None
        return int(struct.unpack("!H", self.payload[:2])[0])


def read_frames(data: bytes) -> tuple[list[Frame], bytes]:
    """The whole (unmasked) server frames in *data*, and what is left."""
    frames: list[Frame] = []
    while len(data) >= 2:
        fin, opcode = bool(data[0] & 0x80), data[0] & 0x0F
        size, offset = data[1] & 0x7F, 2
        if size == 126:
            if len(data) < 4:
                break
            size, offset = struct.unpack("!H", data[2:4])[0], 4
        elif size == 127:
            if len(data) < 10:
                break
            size, offset = struct.unpack("!Q", data[2:10])[0], 10
        if len(data) < offset + size:
            break
        frames.append(Frame(opcode, data[offset : offset + size], fin))
        data = data[offset + size :]
    return frames, data


def handshake(
    path: str = "/socket",
    host: str = "localhost:8443",
    origin: str | None = "http://localhost:8443",
    protocols: Sequence[str] = ("text.ircv3.net",),
    headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """A WebSocket opening handshake request."""
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    if protocols:
        lines.append(f"Sec-WebSocket-Protocol: {', '.join(protocols)}")
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


# -- a site on a Clock -------------------------------------------------------------


class ByteTransport(StringTransport):
    """A TCP-like `StringTransport`: it allows unregistering a producer twice.

    (autobahn needs a real `TLSMemoryBIOProtocol` under TLS: TLS is tested
    end to end.)"""

    def __init__(self, peer: IPv4Address) -> None:
        super().__init__(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 8443), peerAddress=peer
        )
        self.protocol: Any = None
        self.aborted = False
        self.no_delay = False

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.no_delay = enabled

    def getTcpNoDelay(self) -> bool:
        return self.no_delay

    def unregisterProducer(self) -> None:
        if self.producer is not None:
            super().unregisterProducer()

    def abortConnection(self) -> None:
        self.aborted = True
        super().abortConnection()


class WebClient:
    """One connection to the site under test, driven frame by frame."""

    def __init__(self, site: WebSite, peer: str) -> None:
        address = IPv4Address("TCP", peer, 50000)
        self.transport = ByteTransport(address)
        channel = site.buildProtocol(address)
        self.transport.protocol = channel
        channel.makeConnection(self.transport)
        self._rest = b""
        self.response = b""

    def request(self, data: bytes) -> bytes:
        """Send an HTTP request; the response head (and body) written so far."""
        self.transport.protocol.dataReceived(data)
        data = self.transport.value()
        self.transport.clear()
        head, _, self._rest = data.partition(b"\r\n\r\n")
        self.response = head
        return head

    @property
    def status(self) -> int:
        return int(self.response.split(b" ", 2)[1])

    def header(self, name: str) -> str | None:
        """A header of the response, or None."""
        for line in self.response.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower().encode("ascii"):
                return value.strip().decode("latin-1")
        return None

    def send_raw(self, data: bytes) -> None:
        self.transport.protocol.dataReceived(data)

    def send(self, *lines: str | bytes, opcode: int = TEXT) -> None:
        """Each line as one message."""
        for line in lines:
            data = line.encode("utf-8") if isinstance(line, str) else line
            self.send_raw(frame(data, opcode))

    def frames(self) -> list[Frame]:
        """The frames the server wrote since the last read."""
        frames, self._rest = read_frames(self._rest + self.transport.value())
        self.transport.clear()
        return frames

    def lines(self) -> list[str]:
        """The payloads of the data frames since the last read."""
        return [
            f.payload.decode("utf-8")
            for f in self.frames()
            if f.opcode in (TEXT, BINARY)
        ]

    def lose(self) -> None:
        """The TCP connection drops."""
        self.transport.protocol.connectionLost(Failure(Exception("gone")))


class WebHarness:
    """A `ChatServer` and its web site on a `Clock` (autobahn's timers too),
    with *web* settings and *limits* overrides."""

    def __init__(self, case: TestCase, web: WebConfig | None = None, **limits: Any):
        self.clock = Clock()
        previous = txaio.config.loop
        txaio.config.loop = self.clock
        case.addCleanup(setattr, txaio.config, "loop", previous)
        config = ServerConfig(server_name="irc.test", network="TestNet")
        config = replace(config, web=web or WebConfig(), limits=Limits(**limits))
        self.server = ChatServer(config, self.clock, motd=["Hello"])
        self.static = Path(case.mktemp())
        self.static.mkdir()
        (self.static / "index.html").write_text("<!doctype html><title>chat</title>")
        self.site = web_site(self.server, static=self.static)

    def connect(self, peer: str = "203.0.113.5") -> WebClient:
        return WebClient(self.site, peer)

    def open(self, peer: str = "203.0.113.5", **handshake_args: Any) -> WebClient:
        """A client whose WebSocket handshake succeeded."""
        client = self.connect(peer)
        client.request(handshake(**handshake_args))
        assert client.status == 101, client.response
        return client

    def register(self, nick: str, **handshake_args: Any) -> WebClient:
        """A registered WebSocket user; output cleared."""
        client = self.open(**handshake_args)
        client.send(f"NICK {nick}", f"USER {nick.lower()} 0 * :{nick}")
        lines = client.lines()
        assert any(" 001 " in line for line in lines), lines
        return client


# -- real clients on loopback ----------------------------------------------------


class _Frames:
    """The transport of a `LineClient` inside a WebSocket: lines to messages."""

    def __init__(self, protocol: LineWebSocket) -> None:
        self.protocol = protocol

    def write(self, data: bytes) -> None:
        for line in data.split(b"\r\n"):
            if line:
                self.protocol.sendMessage(line, self.protocol.binary)

    def writeSequence(self, data: Iterable[bytes]) -> None:
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        self.protocol.sendClose(1000)


class LineWebSocket(WebSocketClientProtocol):
    """A WebSocket client speaking IRC through a `LineClient` (``.lines``)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines = LineClient()
        self.binary = False
        self.opened: Deferred[LineWebSocket] = Deferred()
        self.close_code: int | None = None

    def onConnect(self, response: Any) -> None:
        self.binary = response.protocol == "binary.ircv3.net"

    def onOpen(self) -> None:
        self.lines.makeConnection(_Frames(self))  # type: ignore[arg-type]
        self.opened.callback(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.lines.lineReceived(payload)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.close_code = code
        if not self.opened.called:
            self.opened.errback(Failure(ConnectionError(reason or "refused")))
        self.lines.connectionLost(connectionDone)


async def connect_websocket(
    port: int,
    ca_file: Path | None,
    origin: str | None = None,
    protocols: Sequence[str] = ("text.ircv3.net",),
    headers: dict[str, str] | None = None,
) -> LineWebSocket:
    """A WebSocket to 127.0.0.1:*port* (TLS trusting *ca_file* unless None)."""
    scheme = "ws" if ca_file is None else "wss"
    factory = WebSocketClientFactory(
        f"{scheme}://localhost:{port}/socket",
        origin=origin or f"{'http' if ca_file is None else 'https'}://localhost:{port}",
        protocols=list(protocols),
        headers=headers or {},
    )
    factory.protocol = LineWebSocket
    endpoint: Any = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    if ca_file is not None:
        endpoint = wrapClientTLS(client_tls(ca_file), endpoint)
    protocol = await connectProtocol(endpoint, factory.buildProtocol(None))
    return await protocol.opened


def start_web_server(
    case: TestCase, dev_http: bool = False, **settings: Any
) -> RunningServer:
    """The whole service on loopback: an IRC TLS listener, a web TLS listener
    (`web_port`) and with *dev_http* a plaintext one (`http_port`)."""
    listen = [TLS_LOOPBACK, WEB_TLS_LOOPBACK]
    if dev_http:
        listen.append(WEB_PLAIN_LOOPBACK)
    return start_server(case, *listen, **settings)


def web_port(server: RunningServer, secure: bool = True) -> int:
    """The port of *server*'s web listener with (or without) TLS."""
    for listener in server.service.listeners:
        if listener.description == (WEB_TLS_LOOPBACK if secure else WEB_PLAIN_LOOPBACK):
            return port_of(listener.port)
    raise AssertionError("no such web listener")
