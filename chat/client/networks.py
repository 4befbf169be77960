"""Several networks in one client: one `Session` each, one buffer list.

`Networks` owns the sessions in the order they were opened and knows which
one is current.  Buffers are numbered across all of them, grouped by
network (each network's server buffer first, then its channels and
queries), which is what Alt+number, the buffer list and clicks use.
``/connect`` adds a session, ``/server`` moves the current one to another
server, ``/disconnect`` closes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IReactorTCP, IReactorTime, IStreamClientEndpoint

from chat.client.config import ClientConfig
from chat.client.connection import Session
from chat.client.model import Activity, Buffer, Line
from chat.client.security import Security, SecurityError, client_security

#: Opens *session*'s connection with *security* (tests may inject another).
Connector = Callable[[Session, Security], None]


def tcp_connector(reactor: IReactorTCP) -> Connector:
    """Connect to the session's host and port, wrapped in TLS unless --plain."""

    def connect(session: Session, security: Security) -> None:
        config = session.config
        endpoint: IStreamClientEndpoint = HostnameEndpoint(
            reactor, config.host, config.port, 15
        )
        if security.options is not None:
            endpoint = wrapClientTLS(security.options, endpoint)  # type: ignore[arg-type]
        session.start(endpoint)

    return connect


class Networks:
    """The sessions of one client, the current one, and global buffer numbers."""

    def __init__(
        self,
        clock: IReactorTime,
        connector: Connector | None = None,
        security_for: Callable[[ClientConfig], Security] = client_security,
    ) -> None:
        self.clock = clock
        self.connector = connector
        self.security_for = security_for
        self.sessions: list[Session] = []
        self.active = 0
        #: Told whenever any session's state changes (the UI redraws).
        self.listeners: list[Callable[[], None]] = []
        #: Told of every line shown in any session (the bell, notifications).
        self.line_listeners: list[Callable[[Buffer, Line], None]] = []
        #: Called once every session has quit (/quit).
        self.on_quit: Callable[[], None] | None = None

    # -- sessions ---------------------------------------------------------

    def add(self, session: Session, index: int | None = None) -> Session:
        """Take in *session* (at *index*, else last) and relay its changes."""
        session.networks = self
        session.state.listeners.append(self.changed)
        session.state.line_listeners.append(self._line)
        if index is None:
            self.sessions.append(session)
        else:
            self.sessions.insert(index, session)
        self.changed()
        return session

    def open(self, config: ClientConfig, index: int | None = None) -> Session | None:
        """Connect to a new network with *config*; None (and why) if impossible."""
        current = self.current_session if self.sessions else None
        if self.connector is None:
            self._error(current, "This client cannot open more connections")
            return None
        try:
            security = self.security_for(config)
        except SecurityError as error:
            self._error(current, str(error))
            return None
        session = Session(config, self.clock, security=security)
        if security.warning:
            session.state.error(security.warning, now=self.clock.seconds())
        self.add(session, index)
        self.switch_session(self.sessions.index(session))
        self.connector(session, security)
        return session

    def connect(self, host: str, port: int | None, like: Session) -> Session | None:
        """/connect: a new network with *like*'s settings (not its secrets)."""
        config = replace(
            _without_secrets(like.config),
            host=host,
            port=port or like.config.port,
            join=(),
        )
        return self.open(config)

    def move(self, session: Session, host: str, port: int | None) -> Session | None:
        """/server: leave *session*'s server for another, keeping its channels."""
        channels = tuple(b.name for b in session.state.channels() if b.joined)
        config = replace(
            _without_secrets(session.config),
            host=host,
            port=port or session.config.port,
            join=channels or session.config.join,
        )
        moved = self.open(config, self.sessions.index(session))
        if moved is not None:
            self.close(session, f"Changing server to {host}")
        return moved

    def close(self, session: Session, message: str = "Leaving") -> Deferred[None]:
        """Quit *session* and drop it from the buffer list."""
        session.on_quit = None
        done = session.quit(message)
        session.state.listeners.remove(self.changed)
        session.state.line_listeners.remove(self._line)
        if session in self.sessions:
            index = self.sessions.index(session)
            del self.sessions[index]
            if self.active >= index:
                self.active = max(self.active - 1, 0)
        self.changed()
        return done

    def quit(self, message: str = "Leaving") -> None:
        """/quit: quit every network, then call `on_quit`."""
        closing = [session.quit(message) for session in self.sessions]

        def done(_: object) -> None:
            if self.on_quit is not None:
                self.on_quit()

        DeferredList(closing).addCallback(done)

    # -- the current buffer -----------------------------------------------

    @property
    def current_session(self) -> Session:
        return self.sessions[self.active]

    def entries(self) -> list[tuple[Session, Buffer]]:
        """Every buffer of every network, in buffer list order."""
        return [(s, b) for s in self.sessions for b in s.state.buffers]

    def current_index(self) -> int:
        """The global (0-based) number of the current buffer."""
        session = self.current_session
        return self.entries().index((session, session.state.current))

    def switch(self, index: int) -> bool:
        """Make global buffer *index* current; false if there is none."""
        entries = self.entries()
        if not 0 <= index < len(entries):
            return False
        session, buffer = entries[index]
        self.active = self.sessions.index(session)
        return session.state.switch(session.state.buffers.index(buffer))

    def switch_session(self, index: int) -> None:
        self.active = index
        self.current_session.state.switch(self.current_session.state.active)

    def cycle(self, step: int) -> None:
        self.switch((self.current_index() + step) % len(self.entries()))

    def switch_to_activity(self) -> bool:
        """Go to the buffer with the strongest activity, on any network."""
        entries = self.entries()
        best = max(range(len(entries)), key=lambda i: entries[i][1].activity)
        if entries[best][1].activity == Activity.NONE:
            return False
        return self.switch(best)

    # -- relays -----------------------------------------------------------

    def changed(self) -> None:
        for listener in list(self.listeners):
            listener()

    def _line(self, buffer: Buffer, line: Line) -> None:
        for listener in list(self.line_listeners):
            listener(buffer, line)

    def _error(self, session: Session | None, text: str) -> None:
        if session is not None:
            session.state.error(text, session.state.current, now=self.clock.seconds())


def _without_secrets(config: ClientConfig) -> ClientConfig:
    """*config* without the server password, SASL login or client certificate.

    They were meant for one server; another host must not receive them.
    """
    return replace(config, password=None, sasl_user=None, sasl_password=None, cert=None)


def single(session: Session) -> Networks:
    """*session* alone, as a client without /connect."""
    networks = Networks(session.clock)
    networks.add(session)
    return networks


__all__ = ["Connector", "Networks", "single", "tcp_connector"]
