"""The client side of IRC: one connection, and the session around it.

`ClientProtocol` registers (CAP LS 302, SASL, NICK/USER), keeps the lag
measurement going and hands every other message to `Events`.  `Session`
outlives connections: it owns the `ClientState`, knows which channels to
rejoin, and runs a `ClientService` that reconnects with exponential backoff
and jitter on an injected clock.  No urwid here.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IProtocol,
    IProtocolFactory,
    IReactorTime,
    ISSLTransport,
    IStreamClientEndpoint,
    ISystemHandle,
    ITransport,
)
from twisted.internet.protocol import Factory, connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from chat.client.config import ClientConfig, log_path
from chat.client.events import Events
from chat.client.ignore import Ignores
from chat.client.logs import ConversationLogs, file_name
from chat.client.model import (
    Buffer,
    ClientState,
    Kind,
    Line,
    Trust,
    fold_ascii,
    fold_rfc1459,
)
from chat.client.replies import REPLIES
from chat.client.security import (
    CHECKING_SUMMARY,
    REJECTED_SUMMARY,
    Security,
    describe_failure,
    expected_security,
)
from chat.message import Message, MessageParseError, parse

if TYPE_CHECKING:
    from chat.client.networks import Networks

#: Capabilities requested when the server offers them (issue 3).
WANTED_CAPS = (
    "multi-prefix",
    "server-time",
    "echo-message",
    "away-notify",
    "account-notify",
    "extended-join",
    "message-tags",
    "batch",
    "labeled-response",
    "cap-notify",
    "chathistory",
    "draft/chathistory",
    "soju.im/search",
    "draft/multiline",
    "draft/read-marker",
    "sasl",
)
#: draft/multiline limits when the server gives none.
MULTILINE_LINES = 100
MULTILINE_BYTES = 4096

#: Room left for ``:nick!user@host PRIVMSG target :`` when splitting text.
MESSAGE_BYTES = 400

#: SASL numerics that end an attempt without logging in.
SASL_FAILURES = {"902", "904", "905", "906", "908"}


def split_text(text: str, limit: int = MESSAGE_BYTES) -> list[str]:
    """Cut *text* into pieces of at most *limit* UTF-8 bytes, at spaces if possible."""
    pieces: list[str] = []
    while len(text.encode("utf-8")) > limit:
        cut = len(text.encode("utf-8")[:limit].decode("utf-8", "ignore"))
        space = text.rfind(" ", 0, cut)
        if space > cut // 2:
            cut = space
        pieces.append(text[:cut])
        text = text[cut:].lstrip(" ")
    pieces.append(text)
    return pieces


def iso_time(seconds: float) -> str:
    """A Unix time as an IRCv3 ``server-time`` timestamp."""
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(seconds, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


@dataclass
class _Batch:
    kind: str
    params: tuple[str, ...]
    origin: Buffer | None
    messages: list[Message] = field(default_factory=list)


class ClientProtocol(LineReceiver):
    """One connection to an IRC server."""

    delimiter = b"\n"
    MAX_LENGTH = 16384
    transport: ITransport
    log = Logger()

    def __init__(self, session: Session) -> None:
        self.session = session
        self.config: ClientConfig = session.config
        self.clock: IReactorTime = session.clock
        self.registered = False
        self.logged_in = False
        self.caps: set[str] = set()
        self.offered: dict[str, str] = {}
        self.nick = self.config.nick
        self._nick_attempts = 0
        self._caps_requested = False
        self._cap_ended = False
        self._sasl_started = False
        self._batches: dict[str, _Batch] = {}
        self._lag_call: IDelayedCall | None = None
        self._ping_token: str | None = None
        self._ping_sent = 0.0
        self._ping_count = 0
        self._heard = False

    # -- connection life ----------------------------------------------------

    def connectionMade(self) -> None:
        self.session.connection_made(self)
        self.send("CAP", "LS", "302")
        if self.config.password:
            self.send("PASS", self.config.password)
        self.send("NICK", self.nick)
        self.send("USER", self.config.username, "0", "*", self.config.real_name)

    def peer_issuer(self) -> str | None:
        """Who signed the server's certificate chain, as far as it was received."""
        transport = self.transport
        if not (
            ISSLTransport.providedBy(transport) and ISystemHandle.providedBy(transport)
        ):
            return None
        connection = cast(ISystemHandle, transport).getHandle()
        chain = getattr(connection, "get_peer_cert_chain", lambda: None)()
        if not chain:
            return None
        issuer = chain[-1].get_issuer()
        return str(issuer.CN or issuer.O or "an unnamed CA")

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._lag_call is not None and self._lag_call.active():
            self._lag_call.cancel()
        self._lag_call = None
        self.session.connection_lost(self, reason)

    # -- output -------------------------------------------------------------

    def send(
        self, command: str, *params: str, tags: dict[str, str] | None = None
    ) -> None:
        """Write one message to the server."""
        message = Message(command, params, tags=tags or {})
        trailing = command in _FREE_TEXT and len(params) > (command not in _ONE_TEXT)
        self.transport.write(message.to_bytes(trailing))

    # -- input --------------------------------------------------------------

    def lineReceived(self, line: bytes) -> None:
        if not self._heard:
            # Data arrives only after the TLS handshake, certificate checks
            # included, has succeeded.
            self._heard = True
            if ISSLTransport.providedBy(self.transport):
                self.session.secured()
        text = line.rstrip(b"\r").decode("utf-8", "replace")
        if not text.strip():
            return
        try:
            message = parse(text)
        except MessageParseError:
            return
        try:
            self.receive(message)
        except Exception:
            self.log.failure("Could not handle {line!r}", line=text)
            self.session.state.error(
                f"Could not handle a {message.command} message from the server "
                f"(details in {log_path()})",
                now=self.clock.seconds(),
            )

    def receive(self, message: Message) -> None:
        """Route *message* through batches and labels to its handler."""
        if message.command == "BATCH" and message.params:
            self._batch(message)
            return
        batch = self._batches.get(message.tags.get("batch", ""))
        if batch is not None:
            batch.messages.append(message)
            return
        self.dispatch(message, self.session.origin_of(message))

    def dispatch(self, message: Message, origin: Buffer | None) -> None:
        handler = getattr(self, "irc_" + message.command, None)
        if handler is not None:
            handler(message)
            if message.command not in _SHOWN_TOO:
                return
        if self.registered or message.command in _SHOWN_BEFORE_WELCOME:
            self.session.events.handle(message, origin)

    def _batch(self, message: Message) -> None:
        ref = message.params[0]
        if ref.startswith("+") and len(message.params) > 1:
            self._batches[ref[1:]] = _Batch(
                message.params[1],
                message.params[2:],
                self.session.origin_of(message),
            )
            return
        batch = self._batches.pop(ref[1:], None)
        if batch is None:
            return
        parent = self._batches.get(message.tags.get("batch", ""))
        if parent is not None:
            parent.messages.extend(batch.messages)
        elif batch.kind in ("chathistory", "draft/chathistory") and batch.params:
            self.session.events.history(batch.params[0], batch.messages)
        elif batch.kind == "soju.im/search":
            origin = batch.origin or self.session.search_origin
            self.session.events.search_results(batch.messages, origin)
        else:
            for inner in batch.messages:
                self.dispatch(inner, batch.origin)

    # -- registration -------------------------------------------------------

    def irc_CAP(self, message: Message) -> None:
        if len(message.params) < 3:
            return
        sub = message.params[1].upper()
        names = message.params[-1]
        if sub in ("LS", "NEW"):
            for token in names.split():
                name, _, value = token.partition("=")
                self.offered[name] = value
            more = sub == "LS" and len(message.params) > 3 and message.params[2] == "*"
            if sub == "NEW":
                self._request(names.split())
            elif not more and not self._caps_requested:
                self._caps_requested = True
                self._request(list(self.offered))
        elif sub == "ACK":
            for name in names.split():
                if name.startswith("-"):
                    self.caps.discard(name[1:])
                else:
                    self.caps.add(name)
            self.session.caps_changed(self.caps)
            self._after_caps()
        elif sub == "NAK":
            self._after_caps()
        elif sub == "DEL":
            for name in names.split():
                self.caps.discard(name)
                self.offered.pop(name, None)
            self.session.caps_changed(self.caps)

    def _request(self, offered: list[str]) -> None:
        wanted = [cap for cap in WANTED_CAPS if cap in offered and cap not in self.caps]
        if "chathistory" in wanted and "draft/chathistory" in wanted:
            wanted.remove("draft/chathistory")
        if "sasl" in wanted and (self.registered or not self.config.sasl_mechanism):
            wanted.remove("sasl")
        if wanted:
            self.send("CAP", "REQ", " ".join(wanted))
        else:
            self._after_caps()

    def _after_caps(self) -> None:
        if self.registered or self._cap_ended:
            return
        mechanism = self.config.sasl_mechanism
        if "sasl" in self.caps and mechanism and not self._sasl_started:
            offered = self.offered.get("sasl", "")
            if offered and mechanism not in offered.split(","):
                self._login_failed(
                    f"the server offers SASL {offered.replace(',', ', ')}"
                    f" but not {mechanism}"
                )
                return
            self._sasl_started = True
            self.send("AUTHENTICATE", mechanism)
            return
        if mechanism == "PLAIN" and "sasl" not in self.caps:
            self._login_failed("the server does not offer SASL")
            return
        if mechanism == "EXTERNAL" and "sasl" not in self.caps:
            self.session.state.info(
                "The server does not offer SASL; the certificate is used for TLS only",
                now=self.clock.seconds(),
            )
        self._end_caps()

    def _end_caps(self) -> None:
        if not self._cap_ended:
            self._cap_ended = True
            self.send("CAP", "END")

    def irc_AUTHENTICATE(self, message: Message) -> None:
        if message.params[:1] != ("+",):
            return
        if self.config.sasl_mechanism == "PLAIN":
            user = self.config.sasl_user or ""
            secret = f"{user}\0{user}\0{self.config.sasl_password}".encode()
            payload = base64.b64encode(secret).decode("ascii")
        else:
            payload = ""
        chunks = [payload[i : i + 400] for i in range(0, len(payload), 400)]
        if not chunks or len(chunks[-1]) == 400:
            chunks.append("+")
        for chunk in chunks:
            self.send("AUTHENTICATE", chunk)

    def irc_900(self, message: Message) -> None:
        self.logged_in = True

    def irc_903(self, message: Message) -> None:
        self.logged_in = True
        self._end_caps()

    def _sasl_failed(self, message: Message) -> None:
        if self.registered or not self._sasl_started:
            return
        self._login_failed(message.params[-1] if message.params else message.command)

    irc_902 = irc_904 = irc_905 = irc_906 = _sasl_failed

    def _login_failed(self, why: str) -> None:
        self.session.give_up(
            f"SASL login as {self.config.sasl_user or 'certificate'} failed: {why}. "
            "No channels were joined. Check --sasl-user/--sasl-password "
            "(or [sasl] in the config file), then type /reconnect."
        )
        self.send("QUIT", "Login failed")
        self.transport.loseConnection()

    def irc_001(self, message: Message) -> None:
        if message.params:
            self.nick = message.params[0]
        if self.config.sasl_mechanism == "PLAIN" and not self.logged_in:
            self._login_failed("the server finished registration without SASL")
            return
        self.registered = True
        self.session.registered(self, message.source or self.config.host)
        self._schedule_ping(0)

    def irc_005(self, message: Message) -> None:
        state = self.session.state
        for token in message.params[1:-1]:
            key, _, value = token.partition("=")
            if key == "PREFIX" and value.startswith("(") and ")" in value:
                modes, chars = value[1:].split(")", 1)
                if len(modes) == len(chars):
                    state.prefix_modes, state.prefix_chars = modes, chars
            elif key == "CHANTYPES" and value:
                state.chantypes = value
            elif key == "CHANMODES" and value:
                state.chanmodes = tuple(value.split(","))
            elif key == "CASEMAPPING":
                state.fold = fold_ascii if value == "ascii" else fold_rfc1459
            elif key == "NETWORK" and value:
                state.status.server = value

    def irc_433(self, message: Message) -> None:
        """Nick in use during registration: try the next alternative."""
        if self.registered:
            self.session.events.handle(message, self.session.origin_of(message))
            return
        self._nick_attempts += 1
        base = self.config.nick
        if self._nick_attempts <= 2:
            self.nick = base + "_" * self._nick_attempts
        else:
            self.nick = f"{base[:12]}{random.randint(100, 9999)}"
        self.session.state.info(
            f"The nick {message.params[1] if len(message.params) > 1 else base} "
            f"is taken; trying {self.nick}",
            now=self.clock.seconds(),
        )
        self.send("NICK", self.nick)

    irc_432 = irc_433

    def irc_PING(self, message: Message) -> None:
        self.send("PONG", *message.params[:1])

    def irc_PONG(self, message: Message) -> None:
        if self._ping_token is not None and message.params[-1:] == (self._ping_token,):
            self._ping_token = None
            self.session.lag(self.clock.seconds() - self._ping_sent)

    def irc_ERROR(self, message: Message) -> None:
        text = message.params[0] if message.params else "closing"
        self.session.state.error(f"Server says: {text}", now=self.clock.seconds())

    # -- lag ----------------------------------------------------------------

    def _schedule_ping(self, delay: float) -> None:
        self._lag_call = self.clock.callLater(delay, self._ping)

    def _ping(self) -> None:
        now = self.clock.seconds()
        if self._ping_token is not None:
            if now - self._ping_sent >= self.config.ping_timeout:
                self._lag_call = None
                self.session.state.error(
                    f"No answer from the server for {int(now - self._ping_sent)} s; "
                    "reconnecting",
                    now=now,
                )
                self.transport.loseConnection()
                return
            self.session.lag(now - self._ping_sent)
        else:
            self._ping_count += 1
            self._ping_token = f"lag{self._ping_count}"
            self._ping_sent = now
            self.send("PING", self._ping_token)
        self._schedule_ping(self.config.lag_interval)


def _awaits_numerics(command: str, params: tuple[str, ...]) -> bool:
    """Whether *command* is answered with numerics (MODE only when a query)."""
    command = command.upper()
    if command == "MODE":
        return len(params) == 1 or (
            len(params) == 2 and params[1].lstrip("+") in ("b", "e", "I")
        )
    return command in REPLIES


#: Commands whose last parameter is free text, always sent with ``:``.
_FREE_TEXT = frozenset(
    {"PRIVMSG", "NOTICE", "QUIT", "PART", "TOPIC", "AWAY", "KICK", "USER"}
)
_ONE_TEXT = frozenset({"QUIT", "AWAY"})
#: Messages handled here that `Events` also shows.
_SHOWN_TOO = frozenset({"001", "900", "904", "902", "905", "906"})
#: Messages shown before registration completes.
_SHOWN_BEFORE_WELCOME = frozenset(
    {
        "001",
        "433",
        "432",
        "900",
        "902",
        "904",
        "905",
        "906",
        "908",
        "NOTICE",
        "464",
        "465",
    }
)


class ClientFactory(Factory):
    """Builds a `ClientProtocol` for each connection of a `Session`."""

    #: No "Starting factory" lines in client.log at each reconnect.
    noisy = False

    def __init__(self, session: Session) -> None:
        self.session = session

    def buildProtocol(self, addr: IAddress | None) -> ClientProtocol:
        protocol = ClientProtocol(self.session)
        protocol.factory = self
        return protocol


@implementer(IStreamClientEndpoint)
class _ReportingEndpoint:
    """Wraps an endpoint to tell the session why a connection attempt failed."""

    def __init__(self, endpoint: IStreamClientEndpoint, session: Session) -> None:
        self._endpoint = endpoint
        self._session = session

    def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
        self._session.connecting()
        result = self._endpoint.connect(factory)
        result.addErrback(self._session.connect_failed)
        return result


class Session:
    """The client across connections: state, rejoins, reconnects, sending."""

    log = Logger()

    def __init__(
        self,
        config: ClientConfig,
        clock: IReactorTime,
        state: ClientState | None = None,
        jitter: Callable[[], float] = random.random,
        security: Security | None = None,
    ) -> None:
        self.config = config
        #: What the connection promises; the status bar shows how far it got.
        self.security = security or expected_security(config)
        self.clock = clock
        self.state = state or ClientState(
            nick=config.nick,
            scrollback=config.scrollback,
            highlights=config.highlights,
        )
        self.state.status.nick = config.nick
        self.state.status.server = f"{config.host}:{config.port}"
        self._show_trust(Trust.CHECKING)
        self.events = Events(self)
        self.ignores = Ignores(
            config.state_dir / "ignores", lambda text: self.state.fold(text)
        )
        if self.ignores.load_error:
            self.state.error(f"Ignore list: {self.ignores.load_error}")
        #: Where the results of the last /search are shown.
        self.search_origin: Buffer | None = None
        self.logs: ConversationLogs | None = None
        if config.logs_enabled:
            self.logs = ConversationLogs(
                config.state_dir / "logs" / file_name(config.host),
                config.logs_max_bytes,
                config.logs_keep,
                lambda why: self.state.error(why, now=self.clock.seconds()),
            )
            self.state.line_listeners.append(self.logs)
        self.state.read_listeners.append(self.mark_read)
        self.protocol: ClientProtocol | None = None
        self.service: ClientService | None = None
        self.caps: set[str] = set()
        self.rejoin: list[str] = list(config.join)
        #: Channels to show once joined: /join targets, and the first --join.
        self.switch_to: set[str] = {self.state.fold(n) for n in config.join[:1]}
        self.labels: dict[str, Buffer] = {}
        #: Typed commands awaiting numeric replies (without labeled-response),
        #: oldest first, with the buffer each was typed in.
        self.asked: list[tuple[str, Buffer]] = []
        self.disconnected_at: float | None = None
        self.quitting = False
        #: Set by `give_up`: no reconnecting until /reconnect.
        self.gave_up = False
        self.on_quit: Callable[[], None] | None = None
        #: The client's networks, when this session is one of several.
        self.networks: Networks | None = None
        self._label_count = 0
        self._batch_count = 0
        self._policy = backoffPolicy(
            initialDelay=config.reconnect_initial,
            maxDelay=config.reconnect_max,
            factor=2.0,
            jitter=lambda: jitter() * config.reconnect_initial,
        )
        self._endpoint: IStreamClientEndpoint | None = None

    # -- lifecycle ----------------------------------------------------------

    def start(self, endpoint: IStreamClientEndpoint) -> None:
        """Connect through *endpoint*, reconnecting until `quit`."""
        self._endpoint = endpoint
        self.service = ClientService(
            _ReportingEndpoint(endpoint, self),
            ClientFactory(self),
            retryPolicy=self.retry_delay,
            clock=self.clock,
        )
        self.service.startService()

    def reconnect(self) -> None:
        """Start connecting again after `give_up` (the /reconnect command)."""
        if self.protocol is not None:
            self.protocol.transport.loseConnection()
            return
        if self._endpoint is not None and (
            self.service is None or not self.service.running
        ):
            self.gave_up = False
            self.start(self._endpoint)

    def retry_delay(self, attempt: int) -> float:
        """Backoff policy for the `ClientService`; also shown in the status bar."""
        delay = self._policy(attempt - 1)
        self.log.debug(
            "Reconnecting to {host}:{port} in {delay:.1f} s (attempt {attempt})",
            host=self.config.host,
            port=self.config.port,
            delay=delay,
            attempt=attempt,
        )
        self.state.status.state = f"reconnecting in {delay:.0f}s"
        self.state.changed()
        return delay

    def give_up(self, why: str) -> None:
        """Stop reconnecting and say why in plain words."""
        now = self.clock.seconds()
        self.state.status.state = "stopped"
        self.gave_up = True
        self._stop_service()
        self.state.error(why, now=now)
        if self.state.current is not self.state.server_buffer:
            self.state.error(why, self.state.current, now=now)

    def _stop_service(self) -> None:
        if self.service is not None and self.service.running:
            self.service.stopService()

    def quit(self, message: str = "Leaving") -> Deferred[None]:
        """Say goodbye to the server, stop for good, then call `on_quit`."""
        self.quitting = True
        if self.protocol is not None and self.protocol.registered:
            self.protocol.send("QUIT", message)
        stopped: Deferred[None] = succeed(None)
        if self.service is not None and self.service.running:
            stopped = self.service.stopService()
            stopped.addTimeout(3, self.clock)
        stopped.addErrback(lambda _: None)

        def done(_: None) -> None:
            if self.logs is not None:
                self.logs.close()
            if self.on_quit is not None:
                self.on_quit()

        return stopped.addCallback(done)

    # -- called by the protocol -------------------------------------------

    def connecting(self) -> None:
        self.state.status.state = "connecting"
        self.state.changed()

    def connect_failed(self, failure: Failure) -> Failure:
        reason = failure.getErrorMessage() or repr(failure.value)
        self.state.error(
            f"Cannot connect to {self.config.host}:{self.config.port}: {reason}",
            now=self.clock.seconds(),
        )
        return failure

    def connection_made(self, protocol: ClientProtocol) -> None:
        self.protocol = protocol
        self.caps = set()
        self.asked.clear()
        self.state.status.state = "registering"
        self._show_trust(Trust.CHECKING)
        self.state.changed()

    def secured(self) -> None:
        """The server's first line arrived: a verified handshake is complete."""
        self._show_trust(Trust.VERIFIED)
        self.state.changed()

    def _show_trust(self, trust: str) -> None:
        """Set the status bar's security state; unverified states stay so."""
        status = self.state.status
        security = self.security
        if not security.encrypted:
            status.trust, status.security = Trust.PLAIN, security.summary
        elif not security.verifies:
            status.trust, status.security = Trust.UNVERIFIED, security.summary
        elif trust == Trust.VERIFIED:
            status.trust, status.security = trust, security.summary
        elif trust == Trust.UNVERIFIED:
            status.trust, status.security = trust, REJECTED_SUMMARY
        else:
            status.trust, status.security = Trust.CHECKING, CHECKING_SUMMARY

    def registered(self, protocol: ClientProtocol, server: str) -> None:
        state = self.state
        state.nick = protocol.nick
        state.status.nick = protocol.nick
        state.status.state = "connected"
        if state.status.server.startswith(self.config.host + ":"):
            state.status.server = server
        if self.rejoin:
            protocol.send("JOIN", ",".join(self.rejoin))
        state.changed()

    def connection_lost(self, protocol: ClientProtocol, reason: Failure) -> None:
        if self.protocol is not protocol:
            return
        self.protocol = None
        state = self.state
        now = self.clock.seconds()
        state.status.lag = None
        tls_problem = describe_failure(reason, self.config.host, protocol.peer_issuer())
        joined = [b for b in state.channels() if b.joined]
        if protocol.registered:
            self.rejoin = [b.name for b in joined]
        why = (
            "the server's certificate could not be verified"
            if tls_problem
            else reason.getErrorMessage() or "connection closed"
        )
        if self.quitting:
            state.status.state = "disconnected"
            state.changed()
            return
        self.disconnected_at = now
        for buffer in [state.server_buffer, *joined]:
            seen = [line.time for line in buffer.lines if line.kind != Kind.GAP]
            buffer.resume_from = max(seen, default=None)
            buffer.joined = buffer.kind == Buffer.SERVER
            buffer.forget_channel_state()
            state.show(buffer, Line(now, Kind.GAP, f"Disconnected: {why}"))
        if tls_problem is not None:
            self._show_trust(Trust.UNVERIFIED)
            self.give_up(
                tls_problem + " Not retrying; type /reconnect after fixing it."
            )
        else:
            state.status.state = "stopped" if self.gave_up else "disconnected"
            state.changed()

    def caps_changed(self, caps: set[str]) -> None:
        self.caps = set(caps)

    def joined(self, buffer: Buffer) -> None:
        """We are in *buffer*'s channel: switch to it, show the gap, get history."""
        state = self.state
        folded = state.fold(buffer.name)
        if folded in self.switch_to:
            self.switch_to.discard(folded)
            state.switch(state.buffers.index(buffer))
        if not any(state.fold(name) == folded for name in self.rejoin):
            self.rejoin.append(buffer.name)
        since, buffer.resume_from = buffer.resume_from, None
        if self.disconnected_at is not None and since is not None:
            gap = self.clock.seconds() - self.disconnected_at
            state.show(
                buffer,
                Line(
                    self.clock.seconds(),
                    Kind.GAP,
                    f"Rejoined after {gap:.0f} s away; messages sent meanwhile "
                    + (
                        "are loaded from the server's history"
                        if self.history_cap
                        else "were missed"
                    ),
                ),
            )
        if self.history_cap:
            bound = "*" if since is None else f"timestamp={iso_time(since)}"
            self.send(
                "CHATHISTORY",
                "LATEST",
                buffer.name,
                bound,
                str(self.config.history_lines),
            )

    def lag(self, seconds: float) -> None:
        self.state.status.lag = seconds
        self.state.changed()

    # -- called by commands and the UI -------------------------------------

    @property
    def connected(self) -> bool:
        return self.protocol is not None and self.protocol.registered

    @property
    def history_cap(self) -> str | None:
        for cap in ("chathistory", "draft/chathistory"):
            if cap in self.caps:
                return cap
        return None

    def send(self, command: str, *params: str, origin: Buffer | None = None) -> bool:
        """Send a command; *origin* gets its replies (labeled-response)."""
        if self.protocol is None:
            self.state.error("Not connected", origin, now=self.clock.seconds())
            return False
        tags: dict[str, str] | None = None
        if origin is not None and "labeled-response" in self.caps:
            self._label_count += 1
            label = f"c{self._label_count}"
            self.labels[label] = origin
            if len(self.labels) > 1000:  # replies the server never sent
                del self.labels[next(iter(self.labels))]
            tags = {"label": label}
        elif origin is not None and _awaits_numerics(command, params):
            self.asked.append((command.upper(), origin))
            del self.asked[:-20]  # answers the server never sent
        self.protocol.send(command, *params, tags=tags)
        return True

    def origin_of(self, message: Message) -> Buffer | None:
        """The buffer a labeled reply belongs to, if it still exists."""
        label = message.tags.get("label")
        if label is None:
            return self._asker_of(message.command)
        buffer = self.labels.pop(label, None)
        return buffer if buffer in self.state.buffers else None

    def _asker_of(self, numeric: str) -> Buffer | None:
        """The buffer of the oldest typed command that *numeric* answers."""
        for index, (command, buffer) in enumerate(self.asked):
            replies, ends = REPLIES[command]
            if numeric in replies:
                if numeric in ends:
                    del self.asked[index]
                return buffer if buffer in self.state.buffers else None
        return None

    def say(self, target: str, text: str, kind: str = Kind.MESSAGE) -> None:
        """Send a message (split to fit) and show it unless the server echoes it."""
        command = "NOTICE" if kind == Kind.NOTICE else "PRIVMSG"
        buffer = self.state.open(target)
        for piece in split_text(text):
            body = f"\x01ACTION {piece}\x01" if kind == Kind.ACTION else piece
            if not self.send(command, target, body, origin=buffer):
                return
            if "echo-message" not in self.caps:
                line = Line(
                    self.clock.seconds(), kind, piece, self.state.nick, own=True
                )
                self.state.show(buffer, line)

    def mark_read(self, buffer: Buffer) -> None:
        """The user looked at *buffer*: tell the server (draft/read-marker),
        so the user's other clients show it read too."""
        if "draft/read-marker" not in self.caps or buffer.kind == Buffer.SERVER:
            return
        newest = buffer.lines[-1].time if buffer.lines else 0.0
        if newest <= buffer.read_until or self.protocol is None:
            return
        buffer.read_until = newest
        self.protocol.send("MARKREAD", buffer.name, f"timestamp={format_time(newest)}")

    def say_lines(self, target: str, lines: list[str]) -> None:
        """Send pasted *lines* as one message where the server takes
        draft/multiline batches (within its limits), else line by line."""
        limits = self._multiline_limits()
        protocol = self.protocol
        if limits is None or len(lines) < 2 or protocol is None:
            for line in lines:
                self.say(target, line)
            return
        max_lines, max_bytes = limits
        batch: list[str] = []
        size = 0
        for line in lines:
            length = len(line.encode("utf-8"))
            if batch and (len(batch) >= max_lines or size + length > max_bytes):
                self._send_multiline(protocol, target, batch)
                batch, size = [], 0
            batch.append(line)
            size += length
        self._send_multiline(protocol, target, batch)

    def _multiline_limits(self) -> tuple[int, int] | None:
        """``(max-lines, max-bytes)`` of draft/multiline, or None without it."""
        protocol = self.protocol
        if protocol is None or not {"draft/multiline", "batch"} <= self.caps:
            return None
        values = dict(
            item.partition("=")[::2]
            for item in protocol.offered.get("draft/multiline", "").split(",")
            if item
        )
        lines = values.get("max-lines", "")
        size = values.get("max-bytes", "")
        return (
            int(lines) if lines.isdigit() else MULTILINE_LINES,
            int(size) if size.isdigit() else MULTILINE_BYTES,
        )

    def _send_multiline(
        self, protocol: ClientProtocol, target: str, lines: list[str]
    ) -> None:
        if len(lines) == 1:
            self.say(target, lines[0])
            return
        self._batch_count += 1
        ref = f"m{self._batch_count}"
        protocol.send("BATCH", f"+{ref}", "draft/multiline", target)
        for line in lines:
            protocol.send("PRIVMSG", target, line, tags={"batch": ref})
        protocol.send("BATCH", f"-{ref}")
        if "echo-message" not in self.caps:
            buffer = self.state.open(target)
            now = self.clock.seconds()
            for line in lines:
                self.state.show(
                    buffer, Line(now, Kind.MESSAGE, line, self.state.nick, own=True)
                )

    def join(self, channels: str, key: str | None = None) -> None:
        for name in channels.split(","):
            if name:
                self.switch_to.add(self.state.fold(name))
        params = (channels, key) if key else (channels,)
        self.send("JOIN", *params, origin=self.state.current)

    def part(self, buffer: Buffer, reason: str | None = None) -> None:
        self.rejoin = [
            name
            for name in self.rejoin
            if self.state.fold(name) != self.state.fold(buffer.name)
        ]
        params = (buffer.name, reason) if reason else (buffer.name,)
        self.send("PART", *params)

    def request_older(self, buffer: Buffer) -> bool:
        """Ask for history before the oldest line of *buffer* (scrolling up)."""
        if (
            not self.history_cap
            or not self.connected
            or buffer.kind == Buffer.SERVER
            or buffer.history_pending
            or buffer.history_exhausted
        ):
            return False
        oldest = min(line.time for line in buffer.lines)
        bound = f"timestamp={iso_time(oldest)}" if buffer.lines else "*"
        buffer.history_pending = True
        return self.send(
            "CHATHISTORY", "BEFORE", buffer.name, bound, str(self.config.history_lines)
        )


__all__ = ["ClientFactory", "ClientProtocol", "Session"]


def format_time(when: float) -> str:
    """*when* as an IRCv3 timestamp (UTC, milliseconds)."""
    stamp = datetime.fromtimestamp(when, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
