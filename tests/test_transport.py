"""The client connection transports: once a turn, straight to the socket, TLS."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    connectProtocol,
    wrapClientTLS,
)
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IPushProducer, ISSLTransport, ISystemHandle
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.ssl import Certificate, PrivateCertificate, optionsForClientTLS
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from chat.sasl import certificate_fingerprint
from chat.tls import ReloadableServerTLS, ensure_dev_certificate, server_options
from chat.traffic import Traffic
from chat.transport import DirectFactory, DirectProtocol, TLSFactory
from tests.test_e2e import self_signed_client

#: More than any socket buffer takes at once.
BIG = 4 * 1024 * 1024


class Peer(Protocol):
    """A client: keeps what it gets and how it ends."""

    def __init__(self) -> None:
        self.received = b""
        self.reason: Failure | None = None
        self.lost: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.reason = reason
        self.lost.callback(None)


class Recorder(Peer):
    """The protocol under a transport, with a streaming producer, as the
    chat protocol has (`chat.limits.SendQueue`)."""

    def __init__(self) -> None:
        super().__init__()
        self.producer = Valve()

    def connectionMade(self) -> None:
        self.transport.registerProducer(self.producer, True)  # type: ignore[union-attr]


@implementer(IPushProducer)
class Valve:
    """A streaming producer noting whether it is paused."""

    def __init__(self) -> None:
        self.paused = False
        self.stopped = False

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False

    def stopProducing(self) -> None:
        self.stopped = True


@implementer(ISystemHandle)
class SocketTransport(StringTransport):
    """A TCP transport stand-in over a real socket: what goes through its
    ``write`` is in ``value()``; a pull producer is told at once that it
    may write, as Twisted's transports do."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock

    def getHandle(self) -> socket.socket:
        return self.sock

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        super().registerProducer(producer, streaming)
        if not streaming:
            producer.resumeProducing()


def read_all(sock: socket.socket) -> bytes:
    """What is waiting on the (non-blocking) *sock*."""
    data = b""
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


class DirectProtocolTests(TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.apps: list[Recorder] = []
        self.factory = DirectFactory(
            Factory.forProtocol(lambda: self.apps[-1]), Traffic(), self.clock
        )

    def connect(self) -> tuple[DirectProtocol, Recorder, Clock, socket.socket]:
        """A connection of the factory over a socket pair (and its other end)."""
        ours, peer = socket.socketpair()
        for sock in (ours, peer):
            sock.setblocking(False)
            self.addCleanup(sock.close)
        clock = self.clock
        app = Recorder()
        self.apps.append(app)
        protocol = self.factory.buildProtocol(None)
        assert isinstance(protocol, DirectProtocol)
        self.transport = SocketTransport(ours)
        protocol.makeConnection(self.transport)
        return protocol, app, clock, peer

    def test_a_turn_goes_out_in_one_send_at_its_end(self) -> None:
        protocol, _, clock, peer = self.connect()
        protocol.write(b"one\r\n")
        protocol.writeSequence([b"two\r\n", b"three\r\n"])
        self.assertEqual(read_all(peer), b"")
        clock.advance(0)
        self.assertEqual(read_all(peer), b"one\r\ntwo\r\nthree\r\n")
        self.assertEqual(self.transport.value(), b"")  # not through Twisted
        self.assertEqual(protocol.factory.traffic.bytes_out, 17)

    def test_a_full_socket_hands_the_rest_over_in_order_and_pauses(self) -> None:
        protocol, app, clock, peer = self.connect()
        data = bytes(range(256)) * (BIG // 256)
        protocol.write(data)
        clock.advance(0)
        self.assertTrue(app.producer.paused)
        queued = self.transport.value()
        self.assertGreater(len(queued), 0)
        # While the transport holds bytes, later writes queue behind them,
        # even once the socket has room again.
        sent = read_all(peer)
        protocol.write(b"after\r\n")
        clock.advance(0)
        self.assertEqual(read_all(peer), b"")
        self.assertEqual(sent + self.transport.value(), data + b"after\r\n")
        # The transport's buffer is empty: straight to the socket again.
        self.transport.clear()
        self.transport.producer.resumeProducing()
        self.assertFalse(app.producer.paused)
        protocol.write(b"direct\r\n")
        clock.advance(0)
        self.assertEqual(read_all(peer), b"direct\r\n")

    def test_closing_sends_the_turn_first(self) -> None:
        protocol, _, _, peer = self.connect()
        protocol.write(b"ERROR :bye\r\n")
        protocol.loseConnection()
        self.assertEqual(read_all(peer), b"ERROR :bye\r\n")
        self.assertTrue(self.transport.disconnecting)
        # A registered producer would keep Twisted's transport open.
        self.assertIsNone(self.transport.producer)

    def test_abort_drops_the_turn(self) -> None:
        protocol, app, clock, peer = self.connect()
        protocol.write(b"never\r\n")
        protocol.abortConnection()
        clock.advance(0)
        self.assertEqual(read_all(peer), b"")
        protocol.connectionLost(Failure(ConnectionError()))
        self.assertTrue(app.producer.stopped)

    def test_a_failing_connection_does_not_hold_back_the_others(self) -> None:
        broken, _, clock, _ = self.connect()
        broken_transport = self.transport
        fine, _, _, peer = self.connect()

        def fail(data: bytes) -> None:
            raise RuntimeError("broken")

        broken.emit = fail  # type: ignore[method-assign]
        broken.write(b"lost\r\n")
        fine.write(b"kept\r\n")
        clock.advance(0)
        self.assertEqual(read_all(peer), b"kept\r\n")
        self.assertTrue(broken_transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_input_is_counted_and_passed_on(self) -> None:
        protocol, app, _, _ = self.connect()
        protocol.dataReceived(b"NICK a\r\nUSER a 0 * :A\r\n")
        self.assertEqual(app.received, b"NICK a\r\nUSER a 0 * :A\r\n")
        traffic = protocol.factory.traffic
        self.assertEqual((traffic.bytes_in, traffic.lines_in), (23, 2))

    def test_without_a_socket_writes_go_to_the_transport_at_once(self) -> None:
        app = Recorder()
        factory = DirectFactory(Factory.forProtocol(lambda: app), Traffic(), Clock())
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.write(b"hello\r\n")
        self.assertEqual(transport.value(), b"hello\r\n")


class Bulk(Recorder):
    """Writes *size* bytes as soon as it is connected, then closes."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def connectionMade(self) -> None:
        super().connectionMade()
        assert self.transport is not None
        self.transport.write(b"x" * self.size)
        self.transport.loseConnection()


class TLSTests(TestCase):
    def start(self, make: Any) -> tuple[TLSFactory, int, Path, list[Recorder]]:
        """A TLS listener on loopback whose connections run *make()*."""
        dev = ensure_dev_certificate(Path(self.mktemp()))
        made: list[Recorder] = []

        def build() -> Recorder:
            made.append(make())
            return made[-1]

        tls = ReloadableServerTLS(server_options(dev.cert, dev.key))
        factory = TLSFactory(tls, Factory.forProtocol(build), Traffic(), reactor)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return factory, port.getHost().port, dev.ca, made

    async def client(
        self, port: int, ca: Path, certificate: PrivateCertificate | None = None
    ) -> Peer:
        authority = Certificate.loadPEM(ca.read_bytes())
        options = optionsForClientTLS(
            "localhost", trustRoot=authority, clientCertificate=certificate
        )
        endpoint = wrapClientTLS(
            options, TCP4ClientEndpoint(reactor, "127.0.0.1", port)
        )
        client = await connectProtocol(endpoint, Peer())
        self.addCleanup(self.close, client)
        return client

    async def close(self, client: Peer) -> None:
        if client.reason is None:
            assert client.transport is not None
            client.transport.loseConnection()
            await client.lost

    async def until(self, condition: Any) -> None:
        """Wait (a bounded number of reactor turns) for *condition()*."""
        for _ in range(2000):
            if condition():
                return
            await deferLater(reactor, 0.005)
        self.fail("condition never became true")

    async def test_handshake_then_secure_lines_both_ways(self) -> None:
        _, port, ca, made = self.start(Recorder)
        client_cert, fingerprint = self_signed_client()
        client = await self.client(port, ca, client_cert)
        client.transport.write(b"PING x\r\n")  # type: ignore[union-attr]
        await self.until(lambda: made and made[0].received)
        server = made[0]
        self.assertEqual(server.received, b"PING x\r\n")
        self.assertTrue(ISSLTransport.providedBy(server.transport))
        self.assertTrue(server.transport.getTcpNoDelay())  # type: ignore[union-attr]
        peer = server.transport.getPeerCertificate()  # type: ignore[union-attr]
        self.assertEqual(certificate_fingerprint(server.transport), fingerprint)
        self.assertIsNotNone(peer)
        server.transport.write(b"PONG x\r\n")  # type: ignore[union-attr]
        await self.until(lambda: client.received)
        self.assertEqual(client.received, b"PONG x\r\n")

    async def test_large_write_before_the_handshake_arrives_whole(self) -> None:
        factory, port, ca, _ = self.start(lambda: Bulk(BIG))
        client = await self.client(port, ca)
        await client.lost
        self.assertEqual(client.received, b"x" * BIG)
        assert client.reason is not None
        self.assertTrue(client.reason.check(ConnectionDone), client.reason)
        self.assertEqual(factory.handshake_failures, 0)
        self.assertEqual(factory.traffic.bytes_out, BIG)

    async def test_backpressure_pauses_and_resumes_the_producer(self) -> None:
        _, port, ca, made = self.start(Recorder)
        client = await self.client(port, ca)
        client.transport.write(b"hi\r\n")  # type: ignore[union-attr]
        await self.until(lambda: made and made[0].received)
        server = made[0]
        client.transport.pauseProducing()  # type: ignore[union-attr]
        chunk = b"y" * 65536
        written = 0
        while not server.producer.paused:
            server.transport.write(chunk)  # type: ignore[union-attr]
            written += len(chunk)
            await deferLater(reactor, 0)
        client.transport.resumeProducing()  # type: ignore[union-attr]
        await self.until(lambda: not server.producer.paused)
        await self.until(lambda: len(client.received) == written)
        self.assertEqual(client.received, b"y" * written)

    async def test_close_notify_from_the_client_closes(self) -> None:
        _, port, ca, made = self.start(Recorder)
        client = await self.client(port, ca)
        client.transport.write(b"QUIT\r\n")  # type: ignore[union-attr]
        await self.until(lambda: made and made[0].received)
        client.transport.loseConnection()  # type: ignore[union-attr]
        await made[0].lost
        await client.lost

    async def test_half_open_handshake_is_counted_and_cleaned_up(self) -> None:
        factory, port, _, made = self.start(Recorder)
        raw = await connectProtocol(
            TCP4ClientEndpoint(reactor, "127.0.0.1", port), Peer()
        )
        raw.transport.write(b"\x16\x03\x01\x02\x00\x01")  # type: ignore[union-attr]
        await self.until(lambda: made)
        raw.transport.loseConnection()  # type: ignore[union-attr]
        await made[0].lost
        self.assertEqual(factory.handshake_failures, 1)

    async def test_garbage_instead_of_a_handshake_is_refused(self) -> None:
        factory, port, _, made = self.start(Recorder)
        raw = await connectProtocol(
            TCP4ClientEndpoint(reactor, "127.0.0.1", port), Peer()
        )
        raw.transport.write(b"NICK plain\r\nUSER a 0 * :over plaintext\r\n")  # type: ignore[union-attr]
        await raw.lost
        await made[0].lost
        self.assertEqual(made[0].received, b"")
        self.assertEqual(factory.handshake_failures, 1)
