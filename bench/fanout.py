"""CPU per delivery on the fan-out path, on a unit harness (issue 12).

One `ChatServer` on a `Clock`; *members* registered clients in one channel,
each a real `ChatProtocol` behind a `chat.transport.DirectProtocol` over a
real socket pair, as a network connection is.  Each round, one member sends
a PRIVMSG to the channel (one turn of the router) and the clock runs the
end-of-turn flush (one ``send`` per recipient); the other ends are drained
outside the measured time.  A `Clock` stand-in runs the zero-delay calls
without sorting the members' timers, as the reactor's heap would not.  CPU
time (``time.process_time``) is divided by the deliveries: stable while the
machine is shared, unlike wall time.

``PYTHONPATH=ROOT .venv/bin/python bench/fanout.py [--members 500]
[--rounds 2000] [--repeat 5] [--lines 1]`` prints the best of *repeat* figures in µs per
delivery, with and without the ``send`` system calls (a socket-like object
that only counts stands in for the sockets in the second figure), for the
``chat`` package of the checkout ROOT (``.`` or another worktree: two
versions compared in one session).  With ``--lines`` each round's input
holds that many PRIVMSGs (a sender as fast as possible: one turn, many
lines for every member).
"""

from __future__ import annotations

import argparse
import os
import socket
import time
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.base import DelayedCall
from twisted.internet.interfaces import IConsumer, ISystemHandle
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from zope.interface import implementer

import chat
from chat.config import Limits, ServerConfig
from chat.server import ChatServer
from chat.traffic import Traffic
from chat.transport import DirectFactory, DirectProtocol


class _CountingSocket(socket.socket):
    """A socket whose ``send`` takes everything without a system call."""

    def send(self, data: Any, flags: int = 0) -> int:
        return len(data)


@implementer(ISystemHandle, IConsumer)
class _SocketTransport(StringTransport):
    """A TCP transport stand-in over *sock*: pull producers told at once."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(peerAddress=IPv4Address("TCP", "127.0.0.1", 50000))
        self.sock = sock

    def getHandle(self) -> socket.socket:
        return self.sock

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        super().registerProducer(producer, streaming)
        if not streaming:
            producer.resumeProducing()


class _TurnClock(Clock):
    """A `Clock` whose zero-delay calls wait in a list for `run_soon`: the
    `Clock` sorts all its calls (a ping timer per member) on each
    ``callLater``, which the reactor's heap does not."""

    def __init__(self) -> None:
        super().__init__()
        self.soon: list[DelayedCall] = []

    def callLater(self, delay: float, f: Any, *args: Any, **kw: Any) -> DelayedCall:
        if delay:
            return super().callLater(delay, f, *args, **kw)
        call = DelayedCall(
            self.seconds(), f, args, kw, self.soon.remove, lambda c: None, self.seconds
        )
        self.soon.append(call)
        return call

    def run_soon(self) -> None:
        """Run the zero-delay calls, as the reactor does at a turn's end."""
        soon, self.soon = self.soon, []
        for call in soon:
            call.called = 1
            call.func(*call.args, **call.kw)


def _drain(sock: socket.socket) -> None:
    while True:
        try:
            if not sock.recv(1 << 20):
                return
        except BlockingIOError:
            return


def run(members: int, rounds: int, syscalls: bool, lines: int = 1) -> float:
    """CPU µs per delivery for *rounds* inputs of *lines* messages to
    *members*."""
    clock = _TurnClock()
    config = ServerConfig(
        server_name="irc.bench",
        network="Bench",
        limits=Limits(fakelag_exempt=("127.0.0.1",), sendq_bytes=1 << 24),
    )
    server = ChatServer(config, clock, motd=["Hello"])
    factory = DirectFactory(Factory.forProtocol(lambda: None), Traffic(), clock)
    factory.wrappedFactory = server  # type: ignore[assignment]
    conns: list[DirectProtocol] = []
    peers: list[socket.socket] = []
    for i in range(members):
        ours, peer = socket.socketpair()
        ours.setblocking(False)
        peer.setblocking(False)
        if not syscalls:
            ours = _CountingSocket(fileno=ours.detach())
        peers.append(peer)
        conn = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 50000))
        assert isinstance(conn, DirectProtocol)
        conn.makeConnection(_SocketTransport(ours))
        conn.dataReceived(f"NICK u{i}\r\nUSER u{i} 0 * :U\r\nJOIN #c\r\n".encode())
        conns.append(conn)
    clock.advance(0)
    for peer in peers:
        _drain(peer)
    line = (b"PRIVMSG #c :" + b"x" * 80 + b"\r\n") * lines
    spent = 0.0
    drain_every = max(1, 20 // lines)  # before the socket buffers fill
    for n in range(rounds):
        sender = conns[n % 5]
        start = time.process_time()
        sender.dataReceived(line)
        clock.run_soon()
        spent += time.process_time() - start
        if syscalls and n % drain_every == 0:
            for peer in peers:
                _drain(peer)
    for peer in peers:
        peer.close()
    return spent / (rounds * lines * (members - 1)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--lines", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"chat from {os.path.dirname(os.path.dirname(chat.__file__))}")
    for syscalls in (True, False):
        best = min(
            run(args.members, args.rounds, syscalls, args.lines)
            for _ in range(args.repeat)
        )
        label = "with send()" if syscalls else "Python only"
        print(f"{label}: {best:.3f} µs CPU per delivery (N = {args.members})")


if __name__ == "__main__":
    main()
