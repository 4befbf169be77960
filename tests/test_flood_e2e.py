"""End to end over loopback: flooders are slowed then cut, slow readers are
dropped with memory bounded, connection limits and handshake timeouts hold.

These run the whole service (`tests.e2e_support.start_server`) on real
sockets, so they measure real time, with generous margins.
"""

from __future__ import annotations

import socket
import time

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import LoopingCall, deferLater
from twisted.trial.unittest import TestCase

from chat.config import Limits, Timeouts
from chat.limits import buffered_bytes
from chat.protocol import ChatProtocol
from chat.server import ChatServer
from tests.e2e_support import (
    PLAIN_LOOPBACK,
    TLS_LOOPBACK,
    RunningServer,
    start_server,
)
from tests.support import LOOPBACK

#: Fakelag for the flood test; loopback is not exempt from anything here.
FLOOD_LIMITS = Limits(
    exempt=(),
    flood_burst=5,
    flood_rate=10.0,
    flood_connect_burst=10,
    flood_max_queued=20,
)
SENDQ = 256 * 1024
#: The slow-reader tests flood on purpose: the sender skips fakelag.
UNPACED_SENDQ = Limits(sendq_bytes=SENDQ, fakelag_exempt=LOOPBACK)


def chat_server(server: RunningServer) -> ChatServer:
    return server.service.server


def server_side(server: RunningServer, nick: str) -> ChatProtocol:
    conn = chat_server(server).find_user(nick)
    assert conn is not None, nick
    return conn


def buffered(conn: ChatProtocol) -> int:
    """Bytes waiting in the server's socket under *conn* (TLS or not)."""
    backlog = buffered_bytes(conn.transport)
    assert backlog is not None, conn.transport
    return backlog


def sleep(seconds: float) -> Deferred[None]:
    return deferLater(reactor, seconds)


class RawConnection(Protocol):
    """A TCP connection that keeps what it receives and notes when it ends."""

    def __init__(self) -> None:
        self.received = b""
        self.lost: Deferred[float] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: object = None) -> None:
        self.lost.callback(time.monotonic())


async def connect_raw(port: int) -> RawConnection:
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    return await connectProtocol(endpoint, RawConnection())


class FloodTests(TestCase):
    async def test_flooder_is_slowed_then_cut_while_others_chat(self) -> None:
        server = start_server(self, PLAIN_LOOPBACK, limits=FLOOD_LIMITS)
        await self.flood(server, tls=False)

    async def test_flooder_over_tls(self) -> None:
        server = start_server(self, TLS_LOOPBACK, limits=FLOOD_LIMITS)
        await self.flood(server, tls=True)

    async def flood(self, server: RunningServer, tls: bool) -> None:
        connect = server.client if tls else server.plain_client
        alice = await connect("alice")
        bob = await connect("bob")
        flooder = await connect("flooder")
        for client in (alice, bob, flooder):
            client.send("JOIN", "#flood")
            await client.wait_for(lambda m: m.command == "366")
        bob.inbox.clear()

        sent = 0

        def flood() -> None:
            nonlocal sent
            for _ in range(4):  # 40 lines a second against a rate of 10
                flooder.send("PRIVMSG", "#flood", f"flood {sent}")
                sent += 1

        pump = LoopingCall(flood)
        pump.start(0.1)
        started = time.monotonic()
        latencies = []
        for n in range(10):
            text = f"alice {n}"
            before = time.monotonic()
            alice.send("PRIVMSG", "#flood", text)
            await bob.wait_for(lambda m, t=text: m.params[-1:] == (t,))
            latencies.append(time.monotonic() - before)
            await sleep(0.1)
        error = await flooder.wait_for(lambda m: m.command == "ERROR")
        cut_after = time.monotonic() - started
        pump.stop()
        await flooder.lost

        self.assertIn("(Excess Flood)", error.params[0])
        quit = await bob.wait_for(lambda m: m.command == "QUIT")
        self.assertEqual(quit.params, ("Excess Flood",))
        floods = [m.params[1] for m in bob.take(lambda m: m.command == "PRIVMSG")]
        # Slowed: about 10 lines a second after the burst, in order, no gaps.
        self.assertEqual(floods, [f"flood {n}" for n in range(len(floods))])
        self.assertGreater(len(floods), 10)  # more than the burst got through
        self.assertLess(len(floods), 10 + 10 * cut_after + 5)
        self.assertLess(len(floods), sent / 2)
        # Then cut, while alice's messages kept arriving promptly.
        self.assertLess(cut_after, 15)
        over = " (TLS)" if tls else ""
        print(
            f"\nflood{over}: {sent} lines sent, {len(floods)} relayed in"
            f" {cut_after:.2f} s before Excess Flood;"
            f" alice's worst latency {max(latencies):.3f} s"
        )
        self.assertLess(max(latencies), 0.5)
        stats = chat_server(server).stats
        self.assertEqual(stats["flood_kills"], 1)
        self.assertGreater(stats["flood_delays"], 5)

    async def test_loopback_flooder_is_cut_with_default_limits(self) -> None:
        # The case: 3,000 lines at full speed from the same machine.
        server = start_server(self, PLAIN_LOOPBACK)
        bob = await server.plain_client("bob")
        flooder = await server.plain_client("flooder")
        for client in (bob, flooder):
            client.send("JOIN", "#flood")
            await client.wait_for(lambda m: m.command == "366")
        bob.inbox.clear()
        for n in range(3000):
            flooder.send("PRIVMSG", "#flood", f"flood {n}")
        error = await flooder.wait_for(lambda m: m.command == "ERROR")
        self.assertIn("(Excess Flood)", error.params[0])
        await bob.wait_for(lambda m: m.command == "QUIT")
        floods = bob.take(lambda m: m.command == "PRIVMSG")
        self.assertLess(len(floods), Limits().flood_connect_burst + 10)
        self.assertEqual(chat_server(server).stats["flood_kills"], 1)

    async def test_connection_limit_per_address(self) -> None:
        limits = Limits(exempt=(), max_per_address=2)
        server = start_server(self, PLAIN_LOOPBACK, limits=limits)
        kept = [await connect_raw(server.plain_port) for _ in range(2)]
        refused = await connect_raw(server.plain_port)
        await refused.lost
        self.assertEqual(
            refused.received,
            b"ERROR :Closing Link: 127.0.0.1 (Too many connections from your address)"
            b"\r\n",
        )
        self.assertEqual(chat_server(server).stats["connections_refused"], 1)
        self.assertEqual(len(chat_server(server).connections), 2)
        for connection in kept:
            connection.transport.loseConnection()
            await connection.lost

    async def test_connection_limit_over_tls(self) -> None:
        limits = Limits(exempt=(), max_per_address=1)
        server = start_server(self, TLS_LOOPBACK, limits=limits)
        kept = await server.client("kept")
        refused = await server.client()
        error = await refused.wait_for(lambda m: m.command == "ERROR")
        self.assertIn("(Too many connections from your address)", error.params[0])
        await refused.lost
        kept.send("PING", "still")
        await kept.wait_for(lambda m: m.command == "PONG")


class SlowReaderTests(TestCase):
    async def never_reads(self, server: RunningServer, tls: bool) -> None:
        connect = server.client if tls else server.plain_client
        alice = await connect("alice")
        reader = await connect("reader")
        for client in (alice, reader):
            client.send("JOIN", "#big")
            await client.wait_for(lambda m: m.command == "366")
        conn = server_side(server, "reader")
        tcp = getattr(reader.transport, "transport", reader.transport)  # under TLS
        sock = tcp.getHandle()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.transport.pauseProducing()  # the reader stops reading

        line = "x" * 400
        peak = sent = 0
        while not conn.closing and sent < 64 * 1024 * 1024:
            for _ in range(50):
                alice.send("PRIVMSG", "#big", line)
            sent += 50 * (len(line) + 20)
            await alice.sync(f"s{sent}")
            if not conn.closing:
                peak = max(peak, buffered(conn))
        await sleep(0.05)
        stats = chat_server(server).stats
        self.assertEqual(stats["sendq_kills"], 1)
        self.assertNotIn(conn, chat_server(server).connections)
        self.assertIsNone(chat_server(server).find_user("reader"))
        # Memory bounded: the server never held much more than the limit.
        self.assertLess(peak, SENDQ + 128 * 1024)
        self.assertGreater(sent, SENDQ)
        print(f"\nslow reader: dropped after {sent} bytes sent, peak {peak} buffered")
        quit = await alice.wait_for(lambda m: m.command == "QUIT")
        self.assertEqual(quit.params, ("SendQ exceeded",))
        # And alice, who reads, is still served.
        await alice.sync("after")
        reader.transport.resumeProducing()
        await reader.lost

    async def test_reader_that_never_reads_is_dropped(self) -> None:
        server = start_server(self, PLAIN_LOOPBACK, limits=UNPACED_SENDQ)
        await self.never_reads(server, tls=False)

    async def test_reader_that_never_reads_is_dropped_over_tls(self) -> None:
        server = start_server(self, TLS_LOOPBACK, limits=UNPACED_SENDQ)
        await self.never_reads(server, tls=True)


class HandshakeTimeoutTests(TestCase):
    async def test_tcp_connection_that_never_starts_tls_is_closed(self) -> None:
        timeouts = Timeouts(registration=0.5, close_grace=30)
        server = start_server(self, TLS_LOOPBACK, timeouts=timeouts)
        silent = await connect_raw(server.tls_port)
        opened = time.monotonic()
        await sleep(0.3)
        self.assertFalse(silent.lost.called)
        self.assertEqual(len(chat_server(server).connections), 1)
        closed = await silent.lost
        print(f"\nno TLS handshake: closed after {closed - opened:.2f} s")
        # The server's timer starts when it accepts, a little before `opened`.
        self.assertGreaterEqual(closed - opened, 0.4)
        self.assertLess(closed - opened, 1.5)
        self.assertEqual(chat_server(server).connections, set())

    async def test_slowloris_is_closed(self) -> None:
        timeouts = Timeouts(registration=0.5, close_grace=0.5)
        server = start_server(self, PLAIN_LOOPBACK, timeouts=timeouts)
        slow = await connect_raw(server.plain_port)
        opened = time.monotonic()
        drip = LoopingCall(lambda: slow.transport.write(b"N"))
        drip.start(0.05)
        closed = await slow.lost
        drip.stop()
        # The server's timer starts when it accepts, a little before `opened`.
        self.assertGreaterEqual(closed - opened, 0.4)
        self.assertLess(closed - opened, 1.5)
        self.assertEqual(chat_server(server).connections, set())
