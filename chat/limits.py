"""Limits against abuse: fakelag, send queues and connection accounting.

- `FloodControl` is per-connection "fakelag": a token bucket lets a burst of
  input lines through, then paces them at a steady rate by pausing the
  connection's reading (nothing is dropped, order is kept).  A client whose
  backlog of unread lines grows past a limit is closed with ``Excess Flood``.
- `SendQueue` is registered as the streaming producer of each connection's
  transport.  The transport pauses it when its own buffer is full (64 KiB for
  TCP, TLS included) and resumes it once that buffer is empty; the bytes
  written in between are counted, and once they pass ``sendq_bytes`` and the
  socket's real backlog does too, the connection is dropped with
  ``SendQ exceeded``.
- `ConnectionLimiter` counts open connections in total and per address
  (IPv4 /32, IPv6 /64) and throttles the rate of new connections per
  address; a refused connection gets a `Refusal` protocol that says
  ``ERROR`` and hangs up, keeping no other state.

Exempt addresses (``limits.exempt``, addresses or networks; loopback by
default) skip the per-address connection limits only.  Fakelag is skipped
only by the addresses in ``limits.fakelag_exempt`` (none by default) and by
operators (user mode ``o``), as in Ergo.
Everything timed runs on the server's injected clock, and the counters in
``ChatServer.stats`` (`STAT_NAMES`) count what the limits did.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, cast

from twisted.internet.abstract import FileDescriptor
from twisted.internet.interfaces import (
    IConsumer,
    IDelayedCall,
    IPushProducer,
    IReactorTime,
    ITCPTransport,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from chat import events
from chat.config import Limits
from chat.message import Message

if TYPE_CHECKING:
    from chat.protocol import ChatProtocol

#: The counters kept in ``ChatServer.stats``.
STAT_NAMES = (
    "connections_refused",
    "flood_delays",
    "flood_kills",
    "sendq_kills",
    "messages_relayed",
)
#: Rates below this (per second) are taken as this, so a bucket always refills.
MIN_RATE = 0.001
#: How many wrappers (TLS, metrics...) may sit above a socket transport.
_WRAPPER_DEPTH = 5
#: Connection-rate buckets kept before the first sweep of the idle ones.
_PRUNE_START = 1024

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

log = Logger()


def new_stats() -> dict[str, int]:
    """Zeroed counters, one per name in `STAT_NAMES`."""
    return dict.fromkeys(STAT_NAMES, 0)


# -- addresses ----------------------------------------------------------------


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def address_key(host: str) -> str:
    """The accounting key of a peer: the IPv4 address, the IPv6 /64, or *host*."""
    ip = _ip(host)
    if ip is None:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


@lru_cache(maxsize=16)
def parse_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """Addresses or CIDR networks; raises `ValueError` naming a bad entry."""
    networks: list[Network] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"not an address or network: {entry!r}") from None
    return tuple(networks)


@lru_cache(maxsize=16)
def _exempt_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """The valid entries; a bad one is logged once and left out."""
    networks: list[Network] = []
    for entry in entries:
        try:
            networks += parse_networks((entry,))
        except ValueError as error:
            log.error("Ignoring an exempt entry in [limits]: {error}", error=str(error))
    return tuple(networks)


def is_exempt(host: str, entries: tuple[str, ...]) -> bool:
    """Whether *host* is in one of the exempt addresses or networks."""
    ip = _ip(host)
    if ip is None:
        return False
    return any(ip in network for network in _exempt_networks(entries))


# -- token bucket ---------------------------------------------------------------


class TokenBucket:
    """Up to *capacity* tokens, refilled at *rate* per second.

    A bucket may start above its capacity (*tokens*): the extra is spent
    once and never refilled.
    """

    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(
        self, capacity: float, rate: float, now: float, tokens: float | None = None
    ) -> None:
        self.capacity = capacity
        self.rate = max(rate, MIN_RATE)
        self.tokens = capacity if tokens is None else tokens
        self.updated = now

    def level(self, now: float) -> float:
        """The tokens available at *now*."""
        if self.tokens < self.capacity:
            refilled = self.tokens + (now - self.updated) * self.rate
            self.tokens = min(self.capacity, refilled)
        self.updated = now
        return self.tokens

    def try_take(self, now: float) -> bool:
        """Take a token if one is available."""
        if self.level(now) < 1 - 1e-9:
            return False
        self.tokens -= 1
        return True

    def take(self, now: float) -> float:
        """Take a token; return the seconds until the next one (0: available)."""
        self.tokens = self.level(now) - 1
        if self.tokens >= 1 - 1e-9:
            return 0.0
        return (1 - self.tokens) / self.rate


# -- per connection ---------------------------------------------------------------


def protect(conn: ChatProtocol) -> None:
    """Give a new connection its fakelag (unless fakelag-exempt) and send queue."""
    limits = conn.server.config.limits
    if not is_exempt(conn.address, limits.fakelag_exempt):
        conn.flood = FloodControl(conn, limits, conn.server.clock)
    cast(IConsumer, conn.transport).registerProducer(SendQueue(conn), True)


class FloodControl:
    """Fakelag for one connection: a burst of lines, then a steady pace."""

    def __init__(self, conn: ChatProtocol, limits: Limits, clock: IReactorTime):
        self.conn = conn
        self.clock = clock
        self.max_queued = limits.flood_max_queued
        self.bucket = TokenBucket(
            limits.flood_burst,
            limits.flood_rate,
            clock.seconds(),
            max(limits.flood_burst, limits.flood_connect_burst),
        )
        self._resume: IDelayedCall | None = None
        #: Lines left that an open multiline batch may send unpaced.
        self._unpaced = 0

    def suspend(self, lines: int) -> None:
        """Let the next *lines* lines through unpaced (a multiline batch,
        as Ergo does); `resume` bills them."""
        self._unpaced = lines

    def resume(self, cost: int) -> None:
        """Pace again, charging *cost* lines for what went through."""
        self._unpaced = 0
        now = self.clock.seconds()
        self.bucket.tokens = self.bucket.level(now) - cost

    def line_received(self) -> None:
        """Spend one line of allowance; once it runs out, pause reading."""
        if "o" in self.conn.modes or self._resume is not None:
            return
        if self._unpaced > 0:
            self._unpaced -= 1
            return
        wait = self.bucket.take(self.clock.seconds())
        if wait > 0:
            self.conn.server.stats["flood_delays"] += 1
            self.conn.hold("flood")
            self._resume = self.clock.callLater(wait, self._resume_reading)

    def check_backlog(self, waiting: bytes) -> None:
        """Close the connection if too many lines wait behind the fakelag."""
        if self._resume is None or self.conn.closing:
            return
        lines = waiting.count(b"\n")
        if lines > self.max_queued:
            self.conn.server.stats["flood_kills"] += 1
            events.flood_kill(self.conn, lines)
            self.conn.close("Excess Flood")

    def _resume_reading(self) -> None:
        self._resume = None
        if not self.conn.closing:
            self.conn.release("flood")

    def stop(self) -> None:
        """Forget the pending resume: the connection is gone."""
        if self._resume is not None and self._resume.active():
            self._resume.cancel()
        self._resume = None

    def release(self) -> None:
        """The connection is closing: let its transport read again.

        A TLS goodbye needs the peer's answer to finish; the input itself
        is ignored once the connection is closing.
        """
        if self._resume is not None:
            self.stop()
            self.conn.transport.resumeProducing()  # type: ignore[attr-defined]


def buffered_bytes(transport: object) -> int | None:
    """Bytes waiting in the socket under *transport* (through TLS and protocol
    wrappers), or None when there is no socket transport to ask."""
    for _ in range(_WRAPPER_DEPTH):
        if isinstance(transport, FileDescriptor):
            try:
                pending = len(transport.dataBuffer) - transport.offset
                return pending + transport._tempDataLen
            except (AttributeError, TypeError):
                return None
        transport = getattr(transport, "transport", None)
    return None


@implementer(IPushProducer)
class SendQueue:
    """Counts what a connection writes while its transport's buffer is full.

    ``ChatProtocol.write`` calls `accept` only while ``conn.sendq`` is set,
    that is between the transport's ``pauseProducing`` and
    ``resumeProducing``; the rest of the time writing costs one check.  The
    count is an upper bound (the peer may have read some); once it passes
    the limit, the socket's real backlog (*measure*) decides.
    """

    def __init__(
        self,
        conn: ChatProtocol,
        measure: Callable[[object], int | None] = buffered_bytes,
    ) -> None:
        self.conn = conn
        self.measure = measure
        self.queued = 0
        self._drop: IDelayedCall | None = None

    def pauseProducing(self) -> None:
        # TCP calls this on every write while its buffer stays full.
        if self.conn.sendq is None:
            self.queued = 0
            self.conn.sendq = self

    def resumeProducing(self) -> None:
        self.conn.sendq = None

    def stopProducing(self) -> None:
        self.conn.sendq = None
        if self._drop is not None and self._drop.active():
            self._drop.cancel()
        self._drop = None

    def accept(self, size: int) -> bool:
        """Count *size* more bytes; False (drop them) past the limit.

        The connection is closed on the next turn of the clock, never in
        the middle of a caller's loop over channel members.
        """
        self.queued += size
        limit = self.conn.server.config.limits.sendq_bytes
        if self.queued <= limit:
            return True
        backlog = self.measure(self.conn.transport)
        if backlog is not None and backlog <= limit:
            self.queued = backlog  # it has been reading: count from the truth
            return True
        if self._drop is None:
            self._drop = self.conn.server.clock.callLater(0, self._drop_connection)
        return False

    def _drop_connection(self) -> None:
        self._drop = None
        if not self.conn.closing:
            self.conn.server.stats["sendq_kills"] += 1
            events.sendq_kill(self.conn, self.queued)
            self.conn.close("SendQ exceeded", abort=True)


# -- connections ------------------------------------------------------------------


class ConnectionLimiter:
    """Open connections in total and per address, and the rate of new ones."""

    def __init__(self) -> None:
        self.total = 0
        self._open: dict[str, int] = {}
        self._held: dict[object, str] = {}
        self._rates: dict[str, TokenBucket] = {}
        self._prune_at = _PRUNE_START

    def open_from(self, host: str) -> int:
        """Open connections counted for *host*'s address key."""
        return self._open.get(address_key(host), 0)

    def refusal(self, host: str, limits: Limits, now: float) -> str | None:
        """Why a new connection from *host* is refused, or None to accept it."""
        if self.total >= limits.max_clients:
            return "Server is full"
        if is_exempt(host, limits.exempt) or _ip(host) is None:
            return None  # exempt, or a peer without an address (a UNIX socket)
        key = address_key(host)
        if self._open.get(key, 0) >= limits.max_per_address:
            return "Too many connections from your address"
        bucket = self._rates.get(key)
        if bucket is None:
            if len(self._rates) >= self._prune_at:
                self._prune(now)
            bucket = TokenBucket(limits.connect_burst, limits.connect_rate, now)
            self._rates[key] = bucket
        if not bucket.try_take(now):
            return "Connecting too fast, try again later"
        return None

    def add(self, conn: object, host: str) -> None:
        """Count the accepted connection *conn* from *host*."""
        key = address_key(host)
        self._held[conn] = key
        self._open[key] = self._open.get(key, 0) + 1
        self.total += 1

    def remove(self, conn: object) -> None:
        """Stop counting *conn* (no-op if it was never counted)."""
        key = self._held.pop(conn, None)
        if key is None:
            return
        self.total -= 1
        left = self._open[key] - 1
        if left:
            self._open[key] = left
        else:
            del self._open[key]

    def _prune(self, now: float) -> None:
        """Forget the rate buckets that are full again."""
        self._rates = {
            key: bucket
            for key, bucket in self._rates.items()
            if bucket.level(now) < bucket.capacity
        }
        self._prune_at = max(_PRUNE_START, 2 * len(self._rates))


class Refusal(Protocol):
    """A refused connection: say ``ERROR`` with the reason and hang up."""

    def __init__(self, reason: str, clock: IReactorTime, grace: float) -> None:
        self.reason = reason
        self.clock = clock
        self.grace = grace
        self._abort: IDelayedCall | None = None

    def connectionMade(self) -> None:
        transport = cast(ITCPTransport, self.transport)
        host = getattr(transport.getPeer(), "host", "") or "unknown"
        error = Message("ERROR", (f"Closing Link: {host} ({self.reason})",))
        transport.write(error.to_bytes())
        transport.loseConnection()
        # A peer that never reads (or never finishes a TLS handshake) is cut.
        self._abort = self.clock.callLater(self.grace, transport.abortConnection)

    def dataReceived(self, data: bytes) -> None:
        """Ignore whatever the refused peer sends."""

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._abort is not None and self._abort.active():
            self._abort.cancel()
        self._abort = None
