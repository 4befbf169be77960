"""Client connection transports: once a turn, straight to the socket; TLS.

Every client connection runs through one of these wrappers, between
Twisted's TCP transport and the chat protocol:

- `DirectProtocol` (plaintext) counts the IRC bytes and lines into the
  shared `Traffic`.  What it is given during a reactor turn waits in a list
  and goes out in one piece when the turn ends (`TurnFlusher`: one
  ``callLater(0)`` for all connections), written on the connection's socket
  itself while the TCP transport has nothing buffered: a relayed line costs
  its share of one ``send`` system call, not a trip through Twisted's
  buffer and an ``epoll_ctl`` to watch for writability and another to stop.
  Once the socket refuses bytes, the rest goes to the TCP transport, which
  sends it when the socket drains; until then every write goes there too
  (order is kept), and the chat protocol's streaming producer is paused
  (`chat.limits.SendQueue` counts what is written meanwhile) and resumed
  when the buffer is empty.  The TCP transport reports that through a pull
  producer registered on it (``IConsumer``), so no private attribute of
  Twisted is touched.  Output being gathered already, Nagle is off
  (``TCP_NODELAY``): it would only wait for the peer's delayed ACK.
- `TLSProtocol` does the same with TLS in between: a pyOpenSSL
  ``Connection`` over memory BIOs, the context given by
  `chat.tls.ReloadableServerTLS` (TLS 1.2 and newer, any client
  certificate accepted for CertFP, a new certificate on ``SIGHUP``).  A
  turn's output becomes its TLS records (one, up to 16 KiB) at its end.
  It provides ``ISSLTransport``, so the server knows the connection is
  secure, and ``getPeerCertificate``.  Closing sends ``close_notify`` and
  then closes the TCP connection (no wait for the peer's); a close asked
  for before the handshake is done waits for it, so that what was written
  (a refusal's ``ERROR``) is sent.

The standard library's ``ssl.SSLObject`` is not used: it cannot accept a
client certificate that no configured CA signed, which CertFP needs.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from contextlib import suppress
from typing import Any, cast

from OpenSSL import SSL, crypto
from twisted.internet.interfaces import (
    IConsumer,
    IHandshakeListener,
    IProtocolFactory,
    IPullProducer,
    IPushProducer,
    IReactorTime,
    ISSLTransport,
    ISystemHandle,
    ITCPTransport,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from zope.interface import implementer

from chat.tls import ReloadableServerTLS
from chat.traffic import Traffic

#: Plaintext asked of the TLS connection at a time.
_RECV_SIZE = 65536
#: Ciphertext read from the TLS connection's memory BIO at a time, at least.
_BIO_READ_SIZE = 16384
#: Room for the TLS record overhead of one write (header, tag, padding).
_RECORD_ROOM = 512

log = Logger()


class TurnFlusher:
    """Writes the connections' output once per reactor turn.

    What a connection is given during a turn waits in its list; the first
    write of a turn asks for one ``callLater(0)`` shared by all, which runs
    as the turn ends, before the reactor polls again.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.waiting: list[DirectProtocol] = []

    def add(self, protocol: DirectProtocol) -> None:
        """Flush *protocol* at the end of this turn."""
        if not self.waiting:
            self.clock.callLater(0, self.flush)
        self.waiting.append(protocol)

    def flush(self) -> None:
        waiting, self.waiting = self.waiting, []
        for protocol in waiting:
            try:
                protocol.flush()
            except Exception:
                # One broken connection must not keep the others' output.
                log.failure("Writing to {peer} failed", peer=protocol.getPeer())
                protocol.abortConnection()


@implementer(IPullProducer)
class _Drain:
    """Registered on the TCP transport: told each time its buffer empties."""

    __slots__ = ("owner",)

    def __init__(self, owner: DirectProtocol) -> None:
        self.owner = owner

    def resumeProducing(self) -> None:
        self.owner.drained()

    def stopProducing(self) -> None:
        pass


@implementer(ITCPTransport, ISystemHandle, IConsumer, IPushProducer)
class DirectProtocol(ProtocolWrapper):
    """Plaintext: counts traffic, writes once a turn, to the socket if it can."""

    factory: DirectFactory
    transport: Any

    def makeConnection(self, transport: Any) -> None:
        self._socket: socket.socket | None = None
        self._direct = False
        self._drain: _Drain | None = None
        #: This turn's output, and who flushes it at the end of the turn
        #: (None without a socket: written at once).
        self._out: list[bytes] = []
        self._flusher: TurnFlusher | None = None
        #: The chat protocol's producer, paused while the socket is full.
        self._producer: IPushProducer | None = None
        self._traffic = self.factory.traffic
        Protocol.makeConnection(self, transport)
        self.factory.registerProtocol(self)
        if ISystemHandle.providedBy(transport) and IConsumer.providedBy(transport):
            handle = transport.getHandle()
            if isinstance(handle, socket.socket):
                self._socket = handle
                self._flusher = self.factory.flusher
                self._drain = _Drain(self)
                # A pull producer is told at once, and whenever the buffer
                # empties from then on, that it may write: `drained`.
                transport.registerProducer(self._drain, False)
                if ITCPTransport.providedBy(transport):
                    # Output is gathered per turn already: Nagle's wait for
                    # the peer's (delayed) ACK would only add latency.
                    transport.setTcpNoDelay(True)
        self.wrappedProtocol.makeConnection(self)

    # -- output -----------------------------------------------------------

    def write(self, data: bytes) -> None:
        out = self._out
        if out:
            out.append(data)
        elif self._flusher is not None:
            out.append(data)
            self._flusher.add(self)
        else:
            self._traffic.bytes_out += len(data)
            self.emit(data)

    def writeSequence(self, data: Iterable[bytes]) -> None:
        self.write(b"".join(data))

    def flush(self) -> None:
        """Write what this turn gave, in one piece (and count it)."""
        out = self._out
        if not out:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self._traffic.bytes_out += len(data)
        self.emit(data)

    def send_bytes(self, data: bytes) -> None:
        """Send *data* on the socket if nothing waits, else queue it in order."""
        if self._direct:
            try:
                sent = cast(socket.socket, self._socket).send(data)
            except OSError:
                # Full, or broken: the TCP transport finds out which.
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
            self._direct = False
            if self._producer is not None:
                self._producer.pauseProducing()
        self.transport.write(data)

    #: Put *data* on the wire: plaintext as it is (TLS encrypts it first).
    emit = send_bytes

    def drained(self) -> None:
        """The TCP transport's buffer is empty: write straight through again."""
        if self.disconnecting or self._socket is None:
            return
        self._direct = True
        if self._producer is not None:
            self._producer.resumeProducing()

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        if self._producer is not None:
            raise RuntimeError("a producer is already registered")
        self._producer = producer
        if not self._direct and self._socket is not None:
            producer.pauseProducing()

    def unregisterProducer(self) -> None:
        self._producer = None

    # -- reading, closing -----------------------------------------------

    def pauseProducing(self) -> None:
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        self.transport.resumeProducing()

    def stopProducing(self) -> None:
        self.transport.stopProducing()

    def loseConnection(self) -> None:
        if self.disconnecting:
            return
        self.flush()
        self.disconnecting = 1
        self._stop_direct()
        self.transport.loseConnection()

    def abortConnection(self) -> None:
        self.disconnecting = 1
        self._out.clear()
        self._stop_direct()
        self.transport.abortConnection()

    def _stop_direct(self) -> None:
        """From now on everything goes through the TCP transport, which
        closes once its buffer is empty (a registered producer would keep
        it open)."""
        self._direct = False
        if self._drain is not None:
            self._drain = None
            self.transport.unregisterProducer()

    # -- input ----------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        traffic = self._traffic
        traffic.bytes_in += len(data)
        traffic.lines_in += data.count(b"\n")
        self.wrappedProtocol.dataReceived(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._direct = False
        self._socket = None
        self._drain = None
        self._out.clear()
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.stopProducing()
        super().connectionLost(reason)


@implementer(ISSLTransport)
class TLSProtocol(DirectProtocol):
    """TLS over pyOpenSSL's memory BIOs, its records written as `DirectProtocol`
    writes plaintext; connections closed before the handshake are counted."""

    factory: TLSFactory

    def makeConnection(self, transport: Any) -> None:
        self._tls: SSL.Connection | None = self.factory.tls.serverConnectionForTLS(self)
        self._tls.set_accept_state()
        self._handshake_done = False
        #: What the chat protocol wrote before the handshake completed.
        self._early: list[bytes] = []
        #: Closed before the handshake completed: close once it has, after
        #: sending what was written (a refusal's ``ERROR``, say).
        self._close_after_handshake = False
        super().makeConnection(transport)

    def getHandle(self) -> SSL.Connection | None:
        """The TLS connection, as Twisted's TLS transport gives it."""
        return self._tls

    def getPeerCertificate(self) -> crypto.X509 | None:
        """The client's certificate, or None when it gave none."""
        if self._tls is None:
            return None
        return self._tls.get_peer_certificate()

    # -- input ----------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        tls = self._tls
        if tls is None or self.disconnecting:
            return
        tls.bio_write(data)
        if not self._handshake_done and not self._handshake(tls):
            return
        plain: list[bytes] = []
        closed = False
        while True:
            try:
                plain.append(tls.recv(_RECV_SIZE))
            except SSL.WantReadError:
                break
            except SSL.ZeroReturnError:
                closed = True
                break
            except SSL.Error:
                self._flush(tls)  # the alert, if any
                self.abortConnection()
                return
        self._flush(tls)
        if plain:
            super().dataReceived(b"".join(plain))
        if closed:
            self.loseConnection()

    def _handshake(self, tls: SSL.Connection) -> bool:
        """Advance the handshake; True once it is complete."""
        try:
            tls.do_handshake()
        except SSL.WantReadError:
            self._flush(tls)
            return False
        except SSL.Error:
            # A protocol version below 1.2, garbage, a bad certificate...:
            # send the alert and hang up.
            self._flush(tls)
            DirectProtocol.loseConnection(self)
            return False
        self._handshake_done = True
        self._flush(tls)
        if IHandshakeListener.providedBy(self.wrappedProtocol):
            self.wrappedProtocol.handshakeCompleted()
        if self._early:
            early, self._early = b"".join(self._early), []
            self._encrypt(tls, early)
        if self._close_after_handshake:
            self.loseConnection()
            return False
        return True

    # -- output ---------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._tls is None or self.disconnecting or self._close_after_handshake:
            return
        super().write(data)

    def emit(self, data: bytes) -> None:
        tls = self._tls
        if tls is None:
            return
        if self._handshake_done:
            self._encrypt(tls, data)
        else:
            self._early.append(data)

    def _encrypt(self, tls: SSL.Connection, data: bytes) -> None:
        total = len(data)
        try:
            sent = tls.send(data)
            if sent < total:
                # One record at a time (partial writes): the rest follows.
                view = memoryview(data)
                while sent < total:
                    sent += tls.send(view[sent:])
        except SSL.Error:
            self.abortConnection()
            return
        self._flush(tls, total + _RECORD_ROOM)

    def _flush(self, tls: SSL.Connection, size: int = _BIO_READ_SIZE) -> None:
        """Send the ciphertext waiting in the memory BIO."""
        size = max(size, _BIO_READ_SIZE)
        while True:
            try:
                out = tls.bio_read(size)
            except SSL.WantReadError:
                return
            self.send_bytes(out)
            if len(out) < size:
                return

    # -- closing --------------------------------------------------------

    def loseConnection(self) -> None:
        tls = self._tls
        if self.disconnecting or tls is None:
            return
        if not self._handshake_done:
            self._close_after_handshake = True
            return
        self.flush()
        with suppress(SSL.Error):
            tls.shutdown()  # close_notify
        self._flush(tls)
        super().loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self._handshake_done:
            self.factory.handshake_failures += 1
        self._tls = None
        self._early = []
        super().connectionLost(reason)


class DirectFactory(WrappingFactory):
    """Wraps each connection of *wrapped* in a `DirectProtocol`."""

    protocol: type[DirectProtocol] = DirectProtocol
    noisy = False

    def __init__(
        self,
        wrapped: IProtocolFactory,
        traffic: Traffic,
        clock: IReactorTime,
    ) -> None:
        super().__init__(wrapped)
        self.traffic = traffic
        self.flusher = TurnFlusher(clock)


class TLSFactory(DirectFactory):
    """TLS around *wrapped* (`TLSProtocol`), counting failed handshakes."""

    protocol = TLSProtocol

    def __init__(
        self,
        tls: ReloadableServerTLS,
        wrapped: IProtocolFactory,
        traffic: Traffic,
        clock: IReactorTime,
    ) -> None:
        super().__init__(wrapped, traffic, clock)
        self.tls = tls
        self.handshake_failures = 0
