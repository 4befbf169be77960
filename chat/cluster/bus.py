"""The cluster's message bus: Redis Streams, read from where we stopped.

A node publishes with ``XADD`` (trimmed with ``MAXLEN ~ length``) to
another node's inbox stream or to the stream every node reads, on the
shared command connection.  It reads with one connection of its own, which
does nothing but ``XREAD BLOCK`` on its inbox and the shared stream, from
the last id it processed: when that connection drops (a reconnect, Redis
cutting a slow client, a network cut) it comes back, with growing delays,
and goes on from that id, so nothing is lost and, ids growing, nothing is
applied twice.

Reading goes two ways.  While entries come, each read is `READ`, one Lua
script that, atomically, decides where each stream is read from and reads
on from there:

- a first start begins at the stream's end (what came before is in the
  state the node loads from Redis when it syncs); a stream that does not
  exist (yet, or any more) is read from its beginning when it comes;
- otherwise reading goes on from the last id read;
- a stream whose first entry is newer than the last one we read was
  trimmed past it (more than ``length`` entries came while we were away or
  slow), or is a new one (Redis lost the old): entries we had not read may
  be gone, so it is *lost*: reading starts at its end and the owner
  re-syncs, as after a reap.  Trimming cuts a stream's oldest entries, so
  no unread entry goes without ours going first; when trimming stops just
  after ours we re-sync for nothing, which is harmless.

Once a read finds nothing, we are caught up and the next one is a plain
``XREAD BLOCK``.  Not checked: for it to miss a trimmed entry, more than
``length`` entries would have to come in the one round trip between the
checked read that found nothing and it (millions a second with the
default), which Redis cannot take anyway.

The owner is told the link is up only once the reader has caught up, so
that it syncs (loads the others' state) after applying what it missed, not
before.

Sending loses nothing either.  Each bus numbers what it publishes: an
entry carries ``s``, ``<sender>/<seq>`` (a random id of this bus, drawn at
start, and a sequence that only grows).  An event stays in a queue until
its ``XADD`` is answered; when the command connection drops with ``XADD``s
in flight (or unsent, waiting for a connection), every event not answered
is sent again, in order, once the connection is back, and what is published
meanwhile waits behind them.  An ``XADD`` that Redis had run but whose
answer was lost so comes twice: a reader applies an entry only when its
sequence is above the last one it applied from that sender on that stream,
and only moves its position past the other.  The queue holds at most
``backlog`` events: past that (Redis away for long under load) a publish
fails with `BacklogFullError`, is logged, and the owner is told once
(`BusOwner.sends_lost`) until the queue is empty again.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import txredisapi
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.interfaces import IReactorTCP, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from chat.cluster import RedisAddress

#: Entries one read returns at most.
COUNT = 512
#: The name a node's reader connection shows in ``CLIENT LIST``.
READER_NAME = "chat-bus-"
#: Events published and not yet added (XADD unanswered) a bus keeps.
BACKLOG = 10_000

#: Read each stream (KEYS) on from the last id read (ARGV, one a stream;
#: empty: a first start), at most ARGV's last entries each; atomically, so
#: that a stream trimmed past what we had read is seen.  Answers, per
#: stream, {id, lost, entries}: the id the entries follow.
READ = """
local function parse(id)
    local ms, seq = string.match(id, '^(%d+)-(%d+)$')
    return tonumber(ms), tonumber(seq)
end
local function less(a, b)
    local am, as = parse(a)
    local bm, bs = parse(b)
    return am < bm or (am == bm and as < bs)
end
local limit = ARGV[#ARGV]
local answer = {}
for i, key in ipairs(KEYS) do
    local last, lost, entries = ARGV[i], 0, {}
    if redis.call('EXISTS', key) == 0 then
        last = '0-0'
    else
        local info = redis.call('XINFO', 'STREAM', key)
        local fields = {}
        for j = 1, #info, 2 do
            fields[info[j]] = info[j + 1]
        end
        local top, first = fields['last-generated-id'], fields['first-entry']
        if last == '' then
            last = top
        elseif first and last ~= '0-0' and less(last, first[1]) then
            last, lost = top, 1
        end
        if last ~= top then
            local reply = redis.call('XREAD', 'COUNT', limit, 'STREAMS', key, last)
            if reply then
                entries = reply[1][2]
            end
        end
    end
    answer[i] = {last, lost, entries}
end
return answer
"""

log = Logger()


class BusOwner(Protocol):
    """What the bus tells the node it serves."""

    def link_up(self) -> None:
        """The reader is connected and positioned."""

    def link_down(self) -> None:
        """The reader's connection is gone; it reconnects."""

    def link_lost(self) -> None:
        """Entries we had not read are gone: re-sync."""

    def events(self, entries: Sequence[tuple[str, str]]) -> None:
        """Entries read, (stream, text) in order; one turn for them all."""

    def sends_lost(self) -> None:
        """The send queue was full: events published since are lost."""


class BacklogFullError(Exception):
    """Too many events wait for their XADD: this one is not sent."""


@dataclass
class _Outgoing:
    """An event published and not yet added."""

    stream: str
    text: str
    mark: str
    added: Deferred[Any] = field(default_factory=Deferred)


class StreamBus:
    """Publish to streams; read our own from where we stopped."""

    def __init__(
        self,
        owner: BusOwner,
        reactor: IReactorTCP,
        commands: Any,
        address: RedisAddress,
        name: str,
        streams: tuple[str, ...],
        length: int,
        block: float,
        clock: IReactorTime,
        backlog: int = BACKLOG,
    ) -> None:
        self.owner = owner
        self.reactor = reactor
        self.clock = clock
        #: The shared command connection (txredisapi), for XADD.
        self.commands = commands
        self.address = address
        self.name = name
        self.streams = streams
        self.length = length
        self.block_ms = max(1, int(block * 1000))
        #: The last id read of each stream ("": none yet, a first start).
        self._last = dict.fromkeys(streams, "")
        self._reader: Any = None
        self._factory: txredisapi.RedisFactory | None = None
        self.backlog = backlog
        #: Who we are as a sender: entries carry it with their sequence.
        self.sender = os.urandom(6).hex()
        self._seq = 0
        #: Events not yet added, by sequence (so in order).
        self._unacked: dict[int, _Outgoing] = {}
        #: Bumped when the connection drops: older sends' outcomes are stale.
        self._attempt = 0
        #: A resend is due: new events wait in the queue for it.
        self._broken = False
        self._overflowed = False
        self._stopped = False
        #: The last sequence applied, by (stream, sender).
        self._applied: dict[tuple[str, str], int] = {}

    @property
    def reading(self) -> bool:
        """Whether the reader is connected."""
        return self._reader is not None

    @property
    def unacked(self) -> int:
        """How many events published wait for their XADD's answer."""
        return len(self._unacked)

    def publish(self, stream: str, text: str) -> Deferred[Any]:
        """Add *text* to *stream*, on the command connection; fires once it
        is added, however many times the connection drops meanwhile."""
        if len(self._unacked) >= self.backlog:
            if not self._overflowed:
                self._overflowed = True
                log.warn(
                    "Cluster: {count} events wait for Redis: new ones are "
                    "dropped until there is room",
                    count=len(self._unacked),
                )
                self.owner.sends_lost()
            return fail(BacklogFullError(stream))
        self._seq += 1
        event = _Outgoing(stream, text, f"{self.sender}/{self._seq}")
        self._unacked[self._seq] = event
        if not self._broken:
            self._send(self._seq, event)
        return event.added

    def _send(self, seq: int, event: _Outgoing) -> None:
        adding: Deferred[Any] = self.commands.execute_command(
            "XADD",
            event.stream,
            "MAXLEN",
            "~",
            self.length,
            "*",
            "d",
            event.text,
            "s",
            event.mark,
        )
        adding.addCallbacks(
            self._added,
            self._not_added,
            callbackArgs=(seq,),
            errbackArgs=(seq, self._attempt),
        )

    def _added(self, reply: object, seq: int) -> None:
        event = self._unacked.pop(seq, None)
        if not self._unacked:
            self._overflowed = False
        if event is not None:
            event.added.callback(reply)

    def _not_added(self, failure: Failure, seq: int, attempt: int) -> None:
        if attempt != self._attempt or seq not in self._unacked:
            return  # sent again since, or added by another try
        if self._stopped or not failure.check(txredisapi.ConnectionError):
            # Redis refused it (or we stop): sending it again would not help.
            self._unacked.pop(seq).added.errback(failure)
            return
        log.info(
            "Cluster: {count} events to send again: {error}",
            count=len(self._unacked),
            error=failure.value,
        )
        self._attempt += 1
        self._broken = True
        # After the failures of the other sends in flight (this same turn).
        self.clock.callLater(0, self._resend)

    def _resend(self) -> None:
        """Send every event not added again, in order, then go on."""
        self._broken = False
        if self._stopped:
            for event in self._unacked.values():
                event.added.errback(Failure(txredisapi.ConnectionError("stopped")))
            self._unacked.clear()
            return
        for seq, event in list(self._unacked.items()):
            self._send(seq, event)

    def start(self) -> None:
        factory = _ReaderFactory(self)
        factory.startConnecting(
            TCP4ClientEndpoint(self.reactor, self.address.host, self.address.port)
        )
        self._factory = factory

    def stop(self) -> Deferred[None]:
        self._stopped = True
        factory, self._factory = self._factory, None
        if factory is None:
            return succeed(None)
        stopped: Deferred[None] = factory.disconnect()
        return stopped

    # -- the reader --------------------------------------------------------

    def attached(self, reader: Any) -> None:
        """A reader connection is ready: position it, then read."""
        self._reader = reader
        reading = Deferred.fromCoroutine(self._run(reader))
        reading.addErrback(self._failed, reader)

    def detached(self, reader: Any) -> None:
        if reader is self._reader:
            self._reader = None
            self.owner.link_down()

    def _failed(self, failure: Any, reader: Any) -> None:
        if reader is not self._reader:
            return  # its connection is gone: the next one goes on
        log.warn("Cluster: reading the bus failed: {error}", error=failure.value)
        reader.transport.loseConnection()

    async def _run(self, reader: Any) -> None:
        """Read until the connection goes: checked reads while entries come,
        a blocking read once we are caught up."""
        await reader.execute_command("CLIENT", "SETNAME", READER_NAME + self.name)
        caught_up = False
        behind = True
        while reader is self._reader:
            if behind:
                lost, entries = await self._checked_read(reader)
                if reader is not self._reader:
                    return
                if lost:
                    self.owner.link_lost()
            else:
                entries = await self._blocking_read(reader)
                if reader is not self._reader:
                    return
            if entries:
                self.owner.events(entries)
            behind = bool(entries)
            if not behind and not caught_up:
                caught_up = True
                self.owner.link_up()

    async def _checked_read(self, reader: Any) -> tuple[bool, list[tuple[str, str]]]:
        """Read with `READ`: whether entries were lost, and those read."""
        lasts = [self._last[stream] for stream in self.streams]
        answer = await reader.eval(READ, list(self.streams), [*lasts, COUNT])
        lost = False
        entries: list[tuple[str, str]] = []
        for stream, (last, gone, items) in zip(self.streams, answer, strict=True):
            self._last[stream] = str(last)
            if int(gone):
                log.warn("Cluster: entries of {stream} were lost", stream=stream)
                lost = True
            self._take(stream, items, entries)
        return lost, entries

    async def _blocking_read(self, reader: Any) -> list[tuple[str, str]]:
        """Wait (up to the block time) for entries after the last ones."""
        lasts = [self._last[stream] for stream in self.streams]
        reply = await reader.execute_command(
            "XREAD",
            "COUNT",
            COUNT,
            "BLOCK",
            self.block_ms,
            "STREAMS",
            *self.streams,
            *lasts,
        )
        entries: list[tuple[str, str]] = []
        for stream, items in reply or ():
            self._take(str(stream), items, entries)
        return entries

    def _take(
        self, stream: str, items: Sequence[Any], entries: list[tuple[str, str]]
    ) -> None:
        """Move *stream*'s position past *items*, adding them to *entries*
        (not those a sender had sent already: see the module's doc)."""
        for ident, fields in items:
            self._last[stream] = str(ident)
            values = dict(zip(fields[::2], fields[1::2], strict=True))
            sender, _, number = str(values.get("s", "")).partition("/")
            if number.isdigit():
                seq = int(number)
                if seq <= self._applied.get((stream, sender), 0):
                    continue
                self._applied[stream, sender] = seq
            entries.append((stream, str(values["d"])))


class _ReaderFactory(txredisapi.RedisFactory):
    """One reconnecting connection (with backoff) that tells the bus."""

    def __init__(self, bus: StreamBus) -> None:
        super().__init__(
            None,
            bus.address.db,
            1,
            isLazy=True,
            # A blocked read answers within its block time; past that and a
            # margin the connection is dead (a network cut), so drop it.
            replyTimeout=bus.block_ms / 1000 + 10.0,
            convertNumbers=False,
        )
        self.bus = bus

    def buildProtocol(self, addr: object) -> Any:
        reader = super().buildProtocol(addr)
        reader.whenConnected().addCallback(self.bus.attached)
        reader.whenDisconnected().addCallback(self.bus.detached)
        return reader
