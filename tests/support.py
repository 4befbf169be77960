"""Helpers for protocol tests: a server on a Clock and fake clients.

Each `FakeClient` is a real `ChatProtocol` built by the server factory and
connected to a `StringTransport`, so tests drive the exact code path a
network connection takes, minus the sockets.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from chat.config import Limits, ServerConfig
from chat.message import Message, parse
from chat.protocol import ChatProtocol
from chat.server import ChatServer

#: Where every test client connects from.
LOOPBACK = ("127.0.0.1", "::1")
#: Default limits, but loopback skips fakelag: for tests that send more
#: lines at once than fakelag lets through, on purpose (it is not the default).
UNPACED = Limits(fakelag_exempt=LOOPBACK)


class FakeClient:
    """One connection to the server under test, driven line by line."""

    def __init__(self, server: ChatServer, host: str = "127.0.0.1") -> None:
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", host, 50000))
        self.conn: ChatProtocol = server.buildProtocol(self.transport.getPeer())
        self.conn.makeConnection(self.transport)

    def send(self, *lines: str) -> None:
        """Send each line with a CRLF terminator."""
        for line in lines:
            self.send_raw(line.encode("utf-8") + b"\r\n")

    def send_raw(self, data: bytes) -> None:
        self.conn.dataReceived(data)

    def raw(self) -> bytes:
        """Everything the server wrote since the last read, then forget it."""
        data = self.transport.value()
        self.transport.clear()
        return data

    def lines(self) -> list[str]:
        return [line for line in self.raw().decode("utf-8").split("\r\n") if line]

    def messages(self) -> list[Message]:
        return [parse(line) for line in self.lines()]

    def commands(self) -> list[str]:
        """The command (or numeric) of each message received since last read."""
        return [message.command for message in self.messages()]

    @property
    def disconnected(self) -> bool:
        return self.transport.disconnecting


class Harness:
    """A `ChatServer` on a `Clock` with helpers to connect clients."""

    def __init__(self, config: ServerConfig | None = None, **overrides: Any) -> None:
        self.clock = Clock()
        config = config or ServerConfig(server_name="irc.test", network="TestNet")
        if overrides:
            config = replace(config, **overrides)
        self.server = ChatServer(config, self.clock, motd=["Hello"])

    def connect(self, host: str = "127.0.0.1") -> FakeClient:
        return FakeClient(self.server, host)

    def register(self, nick: str, host: str = "127.0.0.1") -> FakeClient:
        """A client that completed NICK/USER registration; output cleared."""
        client = self.connect(host)
        client.send(f"NICK {nick}", f"USER {nick.lower()} 0 * :{nick} Real")
        assert client.conn.registered, client.lines()
        client.raw()
        return client

    def channel_of(self, *nicks: str, channel: str = "#chan") -> list[FakeClient]:
        """Register *nicks* and join them all to *channel*; output cleared."""
        clients = [self.register(nick) for nick in nicks]
        for client in clients:
            client.send(f"JOIN {channel}")
        for client in clients:
            client.raw()
        return clients


def hold_history(harness: Harness) -> list[Deferred[None]]:
    """Make *harness*'s history durable only when the test says so: each
    ``stored()`` answers a new Deferred, appended to the list returned."""
    pending: list[Deferred[None]] = []

    def stored() -> Deferred[None]:
        waiter: Deferred[None] = Deferred()
        pending.append(waiter)
        return waiter

    harness.server.history.stored = stored  # type: ignore[method-assign]
    return pending
