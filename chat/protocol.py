"""ChatProtocol: one client connection.

The protocol turns bytes into lines and lines into `Message` objects, keeps
the connection's own state (nick, registration, modes, capabilities) and
hands each message to its command handler.  Everything shared between
connections lives on the `ChatServer` factory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IConsumer,
    IDelayedCall,
    IHandshakeListener,
    ITCPTransport,
    ITransport,
)
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from chat import events, numerics
from chat.casemap import casefold
from chat.commands import COMMANDS
from chat.labeled import Response
from chat.limits import FloodControl, SendQueue, protect
from chat.message import Message, MessageParseError, parse
from chat.multiline import BATCH_COMMANDS, MultilineBatch, end_batch
from chat.relay import PROFILE_CAPS, Relay
from chat.tls import tls_version

if TYPE_CHECKING:
    from chat.channel import Channel
    from chat.sasl import Session
    from chat.server import ChatServer

#: The longest line without tags, terminator included (RFC 1459).
MAX_LINE_BYTES = 512
#: IRCv3 message-tags: up to 8191 bytes of tags (with ``@`` and the space).
MAX_TAG_BYTES = 8191
#: The most parameters a message may have (RFC 1459).
MAX_PARAMS = 15
#: IRCv3 message-tags: a client may send up to 4094 bytes of tag data.
MAX_CLIENT_TAG_DATA = 4094


@implementer(IHandshakeListener)
class ChatProtocol(LineReceiver):
    """One client connection and the state of the user behind it."""

    delimiter = b"\n"
    MAX_LENGTH = MAX_TAG_BYTES + MAX_LINE_BYTES

    log = Logger()
    transport: ITransport

    def __init__(self, server: ChatServer) -> None:
        self.server = server
        self.nick = "*"
        #: The last nick refused while registering (REGISTER * answers for it).
        self.refused_nick: str | None = None
        self.username = ""
        self.realname = ""
        self.host = "unknown"
        self.address = ""
        self.registered = False
        self.password_ok = server.config.password is None
        self.modes: set[str] = set()
        self.channels: dict[str, Channel] = {}
        self.away: str | None = None
        self.caps: set[str] = set()
        self.cap_negotiating = False
        self.tag_profile = 0
        self.connected_at = 0.0
        self.last_active = 0.0
        self.last_message = 0.0
        self.secure = False
        self.closing = False
        self._overflow_rest: bytes | None = None
        self._discarding = False
        self._timer: IDelayedCall | None = None
        self._ping_sent_at: float | None = None
        #: Fakelag (None when exempt) and, while the transport's buffer
        #: is full, the send queue counting what is written: `chat.limits`.
        self.flood: FloodControl | None = None
        self.sendq: SendQueue | None = None
        #: Whether a whole non-empty line ever arrived.
        self.spoke = False
        #: The labeled response being collected while a command runs.
        self.response: Response | None = None
        #: The account logged in to; only `chat.accounts.log_in`/`log_out` set it.
        self.account: str | None = None
        #: The SASL exchange in progress, if any.
        self.sasl: Session | None = None
        #: In cluster mode, the name of the server of a user of another
        #: node (a remote session: `chat.cluster.remote`); None here.
        self.home: str | None = None
        #: The cluster node of a remote session, where its user really is.
        self.node: str | None = None
        #: Why `close` was called, once it was.
        self.quit_reason: str | None = None
        #: Why input is not read now: ``flood`` (fakelag) or ``reply`` (a
        #: command's replies are still on their way); see `hold`.
        self._holds: set[str] = set()
        #: Responses taken with `responder` and not finished yet.
        self._unfinished: list[Response] = []
        self._answer_waiters: list[tuple[Response | None, Deferred[None]]] = []
        #: The draft/multiline batch being received, if any.
        self.multiline: MultilineBatch | None = None
        #: draft/metadata-2: this user's keys and values, and the keys this
        #: connection subscribed to.
        self.metadata: dict[str, str] = {}
        self.metadata_subs: set[str] = set()

    # -- identity -------------------------------------------------------

    @property
    def folded_nick(self) -> str:
        return casefold(self.nick)

    @property
    def hostmask(self) -> str:
        """``nick!user@host``: the source of messages from this user."""
        return f"{self.nick}!{self.username}@{self.host}"

    def set_cap(self, name: str, enabled: bool) -> None:
        """Enable or disable capability *name* for this connection."""
        if enabled:
            self.caps.add(name)
        else:
            self.caps.discard(name)
        self.tag_profile = sum(
            bit for cap, bit in PROFILE_CAPS.items() if cap in self.caps
        )
        if self.registered and self.node is None:
            # Other nodes serialize for this user's capabilities too.
            self.server.network.user_changed(self)

    # -- connection life ------------------------------------------------

    def connectionMade(self) -> None:
        peer = self.transport.getPeer()
        self.address = getattr(peer, "host", "") or "unknown"
        self.host = self.address
        self.secure = self.server.is_secure(self.transport)
        now = self.server.clock.seconds()
        self.connected_at = self.last_active = self.last_message = now
        protect(self)
        self._timer = self.server.clock.callLater(
            self.server.config.timeouts.registration, self._registration_timeout
        )
        self.server.connection_made(self)
        if not self.secure:
            events.connected(self, None)  # over TLS: once the handshake is done

    def handshakeCompleted(self) -> None:
        """The TLS handshake finished (`IHandshakeListener`): log the connection."""
        events.connected(self, tls_version(self.transport))

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.flood is not None:
            self.flood.stop()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if not self.closing:
            self.closing = True
            self.server.connection_lost(self, "Connection closed")

    def _registration_timeout(self) -> None:
        self._timer = None
        if not self.registered:
            # No whole line ever came (a TLS handshake that never started, a
            # slowloris): nothing to say goodbye to, cut at once.
            self.close("Registration timed out", abort=not self.spoke)

    def start_keepalive(self) -> None:
        """Called once registration completes: switch to ping checks."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = self.server.clock.callLater(
            self.server.config.timeouts.ping_interval, self._keepalive
        )

    def _keepalive(self) -> None:
        timeouts = self.server.config.timeouts
        now = self.server.clock.seconds()
        if self._ping_sent_at is not None:
            waited = now - self._ping_sent_at
            if waited >= timeouts.ping_timeout:
                self._timer = None
                self.close(f"Ping timeout: {int(waited)} seconds")
                return
            delay = timeouts.ping_timeout - waited
        else:
            idle = now - self.last_active
            if idle >= timeouts.ping_interval:
                self._ping_sent_at = now
                self.send(Message("PING", (self.server.name,)))
                delay = timeouts.ping_timeout
            else:
                delay = timeouts.ping_interval - idle
        self._timer = self.server.clock.callLater(delay, self._keepalive)

    def close(self, reason: str, abort: bool = False) -> None:
        """Say goodbye with ``ERROR``, tell the others, and disconnect.

        The goodbye gets ``timeouts.close_grace`` seconds to be flushed (a
        peer that never reads, or never finishes its TLS handshake, is cut
        then); *abort* cuts the connection at once.
        """
        if self.closing:
            return
        # What the running turn holds for this connection goes before the goodbye.
        self.server.router.flush(self)
        self.closing = True
        self.quit_reason = reason
        self.server.connection_lost(self, reason)
        self.transport.write(
            Message("ERROR", (f"Closing Link: {self.host} ({reason})",)).to_bytes()
        )
        # A registered producer would keep the transport open.
        cast(IConsumer, self.transport).unregisterProducer()
        transport = cast(ITCPTransport, self.transport)
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if abort:
            transport.abortConnection()
            return
        if self.flood is not None:
            self.flood.release()
        transport.loseConnection()
        self._timer = self.server.clock.callLater(
            self.server.config.timeouts.close_grace, transport.abortConnection
        )

    # -- input ----------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self.closing:
            return
        # What anyone is sent while this input is handled is written once
        # per recipient at the end of the turn, not once per line.
        router = self.server.router
        started = router.begin_turn()
        try:
            self._received(data)
        finally:
            if started:
                router.end_turn()

    def hold(self, reason: str) -> None:
        """Stop handling input lines until `release` of every reason."""
        if not self._holds:
            self.pauseProducing()
        self._holds.add(reason)

    def release(self, reason: str) -> None:
        """Drop *reason* to hold input; once none is left, read on."""
        if reason not in self._holds:
            return
        self._holds.discard(reason)
        if not self._holds and not self.closing:
            self.resumeProducing()

    @property
    def held(self) -> bool:
        """Whether input waits (fakelag, or a reply on its way)."""
        return bool(self._holds)

    def _received(self, data: bytes) -> None:
        if self._discarding:
            end = data.find(b"\n")
            if end < 0:
                return
            self._discarding = False
            data = data[end + 1 :]
        super().dataReceived(data)
        while self._overflow_rest is not None and not self.closing:
            rest, self._overflow_rest = self._overflow_rest, None
            super().dataReceived(rest)
        if self.flood is not None:
            self.flood.check_backlog(self._buffer)

    def lineLengthExceeded(self, line: bytes) -> None:
        """A line beyond every limit: answer 417 and skip to the next line."""
        self.reply(numerics.ERR_INPUTTOOLONG, "Input line was too long")
        end = line.find(b"\n")
        if end < 0:
            self._discarding = True
        else:
            self._overflow_rest = line[end + 1 :]

    def lineReceived(self, line: bytes) -> None:
        if self.closing:
            return
        if self.flood is not None:
            self.flood.line_received()
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line.strip(b" "):
            return
        now = self.server.clock.seconds()
        self.spoke = True
        self.last_active = now
        self._ping_sent_at = None
        body_length = len(line)
        if line.startswith(b"@"):
            space = line.find(b" ")
            body_length = len(line) - space - 1 if space > 0 else 0
            if space - 1 > MAX_CLIENT_TAG_DATA:
                self.reply(numerics.ERR_INPUTTOOLONG, "Input line was too long")
                return
        if body_length > MAX_LINE_BYTES - 2:
            self.reply(numerics.ERR_INPUTTOOLONG, "Input line was too long")
            return
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self._reject_invalid_utf8(line)
            return
        try:
            message = parse(text)
        except MessageParseError as error:
            self.send(
                Message(
                    "FAIL",
                    ("*", "INVALID_MESSAGE", f"Malformed line: {error}"),
                    self.server.name,
                )
            )
            return
        if len(message.params) > MAX_PARAMS:
            self.fail(
                message.command,
                "INVALID_MESSAGE",
                f"Too many parameters (at most {MAX_PARAMS})",
            )
            return
        self.dispatch(message)

    def _reject_invalid_utf8(self, line: bytes) -> None:
        """``FAIL <command> INVALID_UTF8`` (UTF8ONLY), labeled if asked; the
        command and label are read from the line with replacement characters
        (``*`` when there is no telling)."""
        try:
            message: Message | None = parse(line.decode("utf-8", "replace"))
        except MessageParseError:
            message = None
        command = "*"
        if message is not None and message.command.isascii():
            command = message.command if message.command.isalnum() else "*"
        fail = Message(
            "FAIL",
            (command, "INVALID_UTF8", "Message rejected: it is not valid UTF-8"),
            self.server.name,
        )
        label = message.tags.get("label") if message is not None else None
        if label and "labeled-response" in self.caps and "batch" in self.caps:
            fail = fail.with_tags({"label": label})
        self.send(fail)

    def dispatch(self, message: Message, routed: bool = False) -> None:
        """Run the handler for *message*, labeling its replies if asked.

        While a command with a ``label`` tag runs, `write` collects what is
        sent to this connection; `chat.labeled.Response` labels it after.
        One client's lines are handled in order: when the handler answers
        later (it took a `responder`), this connection's next lines wait
        until that answer is finished.  In a cluster, a command about a
        channel runs on that channel's home node (*routed* once it is there).
        """
        if not routed and self.registered and self.server.network.route(self, message):
            # The next lines wait for the routed command's answer, also
            # while its home is still being looked up.
            if self._unfinished and not self.closing:
                self.hold("reply")
            return
        label = message.tags.get("label")
        if not label or "labeled-response" not in self.caps or "batch" not in self.caps:
            self._dispatch(message)
        else:
            self.response = Response(self, label)
            try:
                self._dispatch(message)
            finally:
                response, self.response = self.response, None
                if response is not None and not response.held:
                    response.finish()
        if self._unfinished and not self.closing:
            self.hold("reply")

    def response_finished(self, response: Response) -> None:
        """Called by a held *response* when done: read the next lines."""
        if response in self._unfinished:
            self._unfinished.remove(response)
            if not self._unfinished:
                self.release("reply")
            waiters, self._answer_waiters = self._answer_waiters, []
            for waiter in waiters:
                self.when_answered(*waiter)

    def when_answered(
        self, besides: Response | None = None, done: Deferred[None] | None = None
    ) -> Deferred[None]:
        """Fires once every reply this connection waits for is finished,
        *besides* (the response of a command still being routed)."""
        done = done if done is not None else Deferred()
        if any(response is not besides for response in self._unfinished):
            self._answer_waiters.append((besides, done))
        else:
            done.callback(None)
        return done

    def _dispatch(self, message: Message) -> None:
        """Run the handler for *message*, answering every error in IRC."""
        if self.multiline is not None and message.command not in BATCH_COMMANDS:
            end_batch(self)
            self.fail(
                "BATCH",
                "MULTILINE_INVALID",
                "Command not allowed during a multiline batch",
            )
            return
        command = COMMANDS.get(message.command)
        if command is None:
            if message.command.isdigit():
                return
            self.reply(numerics.ERR_UNKNOWNCOMMAND, message.command, "Unknown command")
            return
        if command.registered and not self.registered:
            self.reply(numerics.ERR_NOTREGISTERED, "You have not registered")
            return
        if len(message.params) < command.min_params:
            self.reply(
                numerics.ERR_NEEDMOREPARAMS, message.command, "Not enough parameters"
            )
            return
        try:
            command.handler(self, self.server, message)
        except Exception:
            self.log.failure(
                "Handler for {command} from {nick} failed",
                command=message.command,
                nick=self.nick,
            )
            self.reply(
                numerics.ERR_UNKNOWNERROR,
                message.command,
                "Internal error while processing the command",
            )

    # -- output ---------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Write already serialized lines to this connection.

        While a labeled command runs they join its response; otherwise the
        router writes them, in a turn with the rest of its output.
        """
        if self.response is not None:
            self.response.write(data)
        else:
            self.server.router.write(self, data)

    def transmit(self, data: bytes) -> None:
        """Hand *data* to the transport, within the send-queue limit.

        Only the router calls this: it decides when output goes out.
        """
        if not self.closing:
            if self.sendq is not None and not self.sendq.accept(len(data)):
                return
            self.transport.write(data)

    def responder(self) -> Response:
        """Take the response to the running command, to finish it later.

        The caller writes its answer to the `Response` and calls
        ``finish()``; an unlabeled command gets a pass-through response.
        """
        response = self.response or Response(self, None)
        response.held = True
        self._unfinished.append(response)
        return response

    def send(self, message: Message) -> None:
        """Serialize and write one message meant for this connection only."""
        self.write(message.to_bytes())

    def relay(self, relay: Relay) -> None:
        """Write a message shared with other recipients, as part of the reply
        to this connection's command (an echo, its own NICK)."""
        self.write(relay.bytes_for(self))

    def reply(self, numeric: str, *params: str) -> None:
        """Send a numeric reply: ``:server NUMERIC nick params...``."""
        self.write(Message(numeric, (self.nick, *params), self.server.name).to_bytes())

    def notice(self, text: str) -> None:
        """Send a server notice to this user."""
        self.send(Message("NOTICE", (self.nick, text), self.server.name))

    def fail(self, command: str, code: str, *context_and_text: str) -> None:
        """Send an IRCv3 standard reply ``FAIL``."""
        self.send(Message("FAIL", (command, code, *context_and_text), self.server.name))
