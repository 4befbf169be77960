"""The operator's log: one line per thing that happened, under a stable name.

Each event is a `twisted.logger` event in the ``chat.events`` namespace with
an ``event`` field (a short name that stays the same across releases, see
`EVENTS`) and fields of its own (``address``, ``nick``, ``reason``...): the
text log shows its message, the JSON log (`chat.logging`) every field.

Abuse events (refused connections, failed logins, flood and send-queue
kills) are rate-limited per address on the server's clock: the first
`ABUSE_FIRST` of each kind in a window each get their line, the rest are
counted and summed up in one ``suppressed`` line per address when the
window ends; at most `ABUSE_LINES` abuse lines are written per window in
all, so a storm from many addresses stays bounded too.

Nothing here is given a password or a message body: fields hold names,
addresses, mechanisms and reasons.  Text a client chose (a quit or kill
reason, an attempted name) is shown quoted, with control characters escaped.
Fields whose names start with ``_`` only help the text line (the JSON log
leaves them out).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger, LogLevel

if TYPE_CHECKING:
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer

#: The ``event`` names, with what each records.
EVENTS = {
    "connect": "a client connected (address, port, TLS version or plaintext)",
    "register": "a client completed registration (nick, user, host, account)",
    "disconnect": "a connection ended (nick, address, reason)",
    "refused": "a connection was refused by a limit (address, reason)",
    "flood-kill": "a client was closed for Excess Flood",
    "sendq-kill": "a client was closed for SendQ exceeded",
    "login": "a client logged in to an account (method, account)",
    "login-failed": "a login failed (method, attempted account)",
    "oper": "a client became an IRC operator (operator name)",
    "oper-failed": "an OPER attempt failed (attempted operator name)",
    "kill": "an operator disconnected a user (KILL)",
    "chghost": "an operator changed a user's user name and host (CHGHOST)",
    "wallops": "an operator sent WALLOPS (the text is not logged)",
    "suppressed": "how many abuse events of one kind were not logged",
}
#: Abuse events logged per kind and address in a window before the summary.
ABUSE_FIRST = 5
#: Abuse lines (events and summaries) written per window in all.
ABUSE_LINES = 100
#: Seconds of one rate-limiting window.
ABUSE_WINDOW = 60.0

log = Logger(namespace="chat.events")


def quoted(text: str) -> str:
    """*text* as a quoted literal: control characters cannot reach a terminal."""
    return repr(text)


class EventLog:
    """Writes the operator's events, rate-limiting the abuse ones."""

    def __init__(
        self,
        clock: IReactorTime,
        logger: Logger = log,
        first: int = ABUSE_FIRST,
        lines: int = ABUSE_LINES,
        window: float = ABUSE_WINDOW,
    ) -> None:
        self.clock = clock
        self.logger = logger
        self.first = first
        self.lines = lines
        self.window = window
        #: (event, address) -> [events, events logged] in this window.
        self._counts: dict[tuple[str, str], list[int]] = {}
        self._written = 0
        self._unlisted = 0
        self._window_end: IDelayedCall | None = None
        self._started: float | None = None

    def emit(
        self, event: str, text: str, level: LogLevel = LogLevel.info, **fields: Any
    ) -> None:
        """Log *event* with message *text* (a `twisted.logger` format)."""
        self.logger.emit(level, text, event=event, **fields)

    def abuse(self, event: str, key: str, text: str, **fields: Any) -> None:
        """Log abuse *event* from address *key* (a warning), unless rate-limited.

        The window starts with the first abuse event and ends `window`
        seconds later; a timer runs only once something was held back, to
        write its summary even if the storm stops.
        """
        now = self.clock.seconds()
        if self._started is not None and now - self._started >= self.window:
            self._end_window()
        if self._started is None:
            self._started = now
        counts = self._counts.get((event, key))
        if counts is None:
            if len(self._counts) >= self.lines:
                self._unlisted += 1  # too many addresses to track: one total
                self._summary_due(now)
                return
            counts = self._counts[(event, key)] = [0, 0]
        counts[0] += 1
        if counts[1] < self.first and self._written < self.lines:
            counts[1] += 1
            self._written += 1
            self.emit(event, text, LogLevel.warn, **fields)
        else:
            self._summary_due(now)

    def _summary_due(self, now: float) -> None:
        if self._window_end is None and self._started is not None:
            wait = max(0.0, self._started + self.window - now)
            self._window_end = self.clock.callLater(wait, self._end_window)

    def _end_window(self) -> None:
        """Sum up what was not logged in the window, and start afresh."""
        if self._window_end is not None and self._window_end.active():
            self._window_end.cancel()
        self._window_end = None
        seconds = int(self.window)
        for (event, key), (count, logged) in self._counts.items():
            if count > logged:
                self.emit(
                    "suppressed",
                    "{count} more {of} events from {address} in the last {seconds} s",
                    LogLevel.warn,
                    of=event,
                    address=key,
                    count=count - logged,
                    seconds=seconds,
                )
        if self._unlisted:
            self.emit(
                "suppressed",
                "{count} more abuse events from other addresses in the last "
                "{seconds} s",
                LogLevel.warn,
                of="*",
                address="*",
                count=self._unlisted,
                seconds=seconds,
            )
        self._counts.clear()
        self._written = self._unlisted = 0
        self._started = None

    def stop(self) -> None:
        """Write the pending summary now (the server is stopping)."""
        self._end_window()


# -- the events, one function each ---------------------------------------------


def _who(conn: ChatProtocol) -> dict[str, Any]:
    """The fields naming *conn*: its nick (``*`` before NICK) and address."""
    return {"nick": conn.nick, "address": conn.address}


def connected(conn: ChatProtocol, tls: str | None) -> None:
    """*conn* connected: over TLS version *tls* (handshake done) or plaintext."""
    over = tls or "plaintext"
    conn.server.events.emit(
        "connect",
        "Connection from {address} port {port} ({_over})",
        address=conn.address,
        port=getattr(conn.transport.getPeer(), "port", None),
        tls=tls,
        _over=over,
    )


def registered(conn: ChatProtocol, tls: str | None) -> None:
    """*conn* completed registration."""
    conn.server.events.emit(
        "register",
        "Registered {nick}!{user}@{host} from {address} ({_over}, account {_shown})",
        user=conn.username,
        host=conn.host,
        account=conn.account,
        _shown=conn.account or "none",
        tls=tls,
        _over=tls or "plaintext",
        **_who(conn),
    )


def disconnected(conn: ChatProtocol, reason: str) -> None:
    """*conn*'s connection ended for *reason* (a quit message, a timeout...)."""
    conn.server.events.emit(
        "disconnect",
        "Closed {nick} from {address}: {_shown}",
        reason=reason,
        _shown=quoted(reason),
        registered=conn.registered,
        **_who(conn),
    )


def refused(server: ChatServer, host: str, key: str, reason: str) -> None:
    """A connection from *host* (address key *key*) was refused for *reason*."""
    server.events.abuse(
        "refused",
        key,
        "Refused a connection from {address}: {reason}",
        address=host,
        reason=reason,
    )


def flood_kill(conn: ChatProtocol, waiting: int) -> None:
    """*conn* is closed for Excess Flood with *waiting* lines behind fakelag."""
    conn.server.events.abuse(
        "flood-kill",
        conn.address,
        "Excess Flood: closing {nick} from {address} ({waiting} lines waiting)",
        waiting=waiting,
        **_who(conn),
    )


def sendq_kill(conn: ChatProtocol, queued: int) -> None:
    """*conn* is closed for SendQ exceeded with about *queued* bytes queued."""
    conn.server.events.abuse(
        "sendq-kill",
        conn.address,
        "SendQ exceeded: closing {nick} from {address} ({queued} bytes queued)",
        queued=queued,
        **_who(conn),
    )


def logged_in(conn: ChatProtocol, account: str, method: str) -> None:
    """*conn* logged in to *account* with *method* (``SASL PLAIN``, ...)."""
    conn.server.events.emit(
        "login",
        "Login: {nick} from {address} is now {account} ({method})",
        account=account,
        method=method,
        **_who(conn),
    )


def login_failed(
    conn: ChatProtocol, method: str, account: str | None, why: str = "refused"
) -> None:
    """A login with *method* to *account* (if known) failed for *why*."""
    conn.server.events.abuse(
        "login-failed",
        conn.address,
        "Failed login: {nick} from {address} as {_shown} ({method}: {why})",
        account=account,
        _shown=quoted(account) if account is not None else "unknown",
        method=method,
        why=why,
        **_who(conn),
    )


def opered(conn: ChatProtocol, name: str) -> None:
    """*conn* became an IRC operator as *name*."""
    conn.server.events.emit(
        "oper",
        "OPER: {mask} from {address} is now an operator (as {_shown})",
        LogLevel.warn,
        mask=conn.hostmask,
        operator=name,
        _shown=quoted(name),
        **_who(conn),
    )


def oper_failed(conn: ChatProtocol, name: str | None, why: str) -> None:
    """An OPER attempt as operator *name* (None: not one) failed for *why*."""
    conn.server.events.abuse(
        "oper-failed",
        conn.address,
        "Failed OPER: {mask} from {address} as {_shown} ({why})",
        mask=conn.hostmask,
        operator=name,
        _shown=quoted(name) if name is not None else "an unknown name",
        why=why,
        **_who(conn),
    )


def killed(conn: ChatProtocol, victim: ChatProtocol, reason: str) -> None:
    """Operator *conn* KILLed *victim* for *reason*."""
    conn.server.events.emit(
        "kill",
        "KILL: {mask} killed {victim} ({victim_address}): {_shown}",
        LogLevel.warn,
        mask=conn.hostmask,
        victim=victim.hostmask,
        victim_address=victim.address,
        reason=reason,
        _shown=quoted(reason),
        **_who(conn),
    )


def host_changed(conn: ChatProtocol, user: ChatProtocol, old: str) -> None:
    """Operator *conn* changed *user*'s mask from *old* (CHGHOST)."""
    conn.server.events.emit(
        "chghost",
        "CHGHOST: {mask} changed {old} to {new}",
        LogLevel.warn,
        mask=conn.hostmask,
        old=old,
        new=user.hostmask,
        **_who(conn),
    )


def wallops(conn: ChatProtocol) -> None:
    """Operator *conn* sent WALLOPS (the text is not logged)."""
    conn.server.events.emit(
        "wallops",
        "WALLOPS from {mask} (text not logged)",
        mask=conn.hostmask,
        **_who(conn),
    )
