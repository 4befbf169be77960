"""Shared helpers for the client tests: a session on a Clock and a fake wire."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import cast

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import (
    IProtocol,
    IProtocolFactory,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from zope.interface import implementer

from chat.client.config import ClientConfig
from chat.client.connection import ClientProtocol, Session
from chat.client.ui import ChatUI

reactor = cast(IReactorTime, _reactor)
#: Seconds an end-to-end test waits for one expected change.
TIMEOUT = 20.0


def make_session(**settings: object) -> Session:
    """A session on a `Clock` with no jitter, for nick ``alice`` by default."""
    values: dict[str, object] = {
        "nick": "alice",
        "host": "irc.test",
        "port": 6697,
        # Never the user's own ignore list or logs (trial runs in _trial_temp).
        "state_dir": Path("client-state"),
    }
    values.update(settings)
    return Session(ClientConfig(**values), Clock(), jitter=lambda: 0.0)  # type: ignore[arg-type]


class Wire:
    """A `ClientProtocol` on a `StringTransport`: feed server lines, read ours."""

    def __init__(self, session: Session | None = None, **settings: object) -> None:
        self.session = session or make_session(**settings)
        self.clock: Clock = self.session.clock  # type: ignore[assignment]
        self.state = self.session.state
        self.protocol = ClientProtocol(self.session)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)

    def feed(self, *lines: str) -> None:
        for line in lines:
            self.protocol.dataReceived(line.encode("utf-8") + b"\r\n")

    def sent(self) -> list[str]:
        """Lines written since the last call."""
        data = self.transport.value().decode("utf-8")
        self.transport.clear()
        return [line for line in data.split("\r\n") if line]

    def register(self, nick: str = "alice", caps: str = "") -> None:
        """Run a plain registration (optionally acking *caps*) through 001."""
        if caps:
            self.feed(f":srv CAP * LS :{caps}", f":srv CAP * ACK :{caps}")
        else:
            self.feed(":srv CAP * LS :")
        self.feed(
            f":srv 001 {nick} :Welcome to the test network {nick}",
            f":srv 005 {nick} PREFIX=(qaohv)~&@%+ CHANTYPES=# :are supported",
        )
        self.sent()

    def lines(self, name: str | None = None) -> list[str]:
        """The texts of a buffer (the server buffer by default)."""
        buffer = self.state.server_buffer if name is None else self.state.find(name)
        assert buffer is not None, f"no buffer {name}"
        return [line.text for line in buffer.lines]


@implementer(IStreamClientEndpoint)
class FakeEndpoint:
    """Fails or succeeds on demand, recording when each attempt was made."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.attempts: list[float] = []
        self.refuse = True
        self.connected: list[tuple[IProtocol, StringTransport]] = []

    def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
        self.attempts.append(self.clock.seconds())
        if self.refuse:
            return fail(ConnectionRefusedError("Connection refused"))
        protocol = factory.buildProtocol(None)
        assert protocol is not None
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.connected.append((protocol, transport))
        return succeed(protocol)


def until(session: Session, check: Callable[[], bool]) -> Deferred[None]:
    """Fires once *check* holds, re-checked whenever the session's state changes."""
    done: Deferred[None] = Deferred()

    def listener() -> None:
        if not done.called and check():
            session.state.listeners.remove(listener)
            done.callback(None)

    session.state.listeners.append(listener)
    listener()
    return done.addTimeout(TIMEOUT, reactor)


def screen_runs(
    ui: ChatUI, cols: int = 120, rows: int = 14
) -> list[list[tuple[str | None, str]]]:
    """The rendered screen as rows of (innermost attribute, text) runs."""
    canvas = ui.render((cols, rows), focus=True)
    return [
        [
            (getattr(attr, "layers", (attr,))[0], text.decode("utf-8"))
            for attr, _, text in row
        ]
        for row in canvas.content()
    ]


def members(session: Session, name: str) -> set[str]:
    buffer = session.state.find(name)
    return set(buffer.members) if buffer else set()


def texts(session: Session, name: str) -> list[str]:
    """The texts of buffer *name* ("server" for the server buffer)."""
    state = session.state
    buffer = state.server_buffer if name == "server" else state.find(name)
    return [line.text for line in buffer.lines] if buffer else []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def eventually(check: Callable[[], bool], what: str) -> None:
    """Re-check every 0.1 s (this drives real processes) until *check* holds."""
    waited = 0.0
    while not check():
        if waited > TIMEOUT:
            raise AssertionError(f"timed out waiting for {what}")
        await deferLater(reactor, 0.1, lambda: None)
        waited += 0.1
