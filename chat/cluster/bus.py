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
  state the node loads from Redis when it syncs);
- otherwise it goes on from the last id read;
- a stream trimmed past what we had read (more than ``length`` entries came
  while we were away or slow), or younger than our position (Redis lost
  it), is *lost*: reading starts at its end again and the owner re-syncs,
  as after a reap.  It is told by counts: Redis counts the entries ever
  added to a stream, we count those we read or skipped; more trimmed
  entries than ours means one we had not read was trimmed.

Once a read finds nothing, we are caught up and the next one is a plain
``XREAD BLOCK``.  Not checked: for it to miss a trimmed entry, more than
``length`` entries would have to come in the one round trip between the
checked read that found nothing and it (some hundred thousand a second
with the default), which Redis cannot take anyway.  Needs Redis 7.0 or
newer (``XINFO STREAM`` gives ``entries-added``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import txredisapi
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.interfaces import IReactorTCP
from twisted.logger import Logger

from chat.cluster import RedisAddress

#: Entries one read returns at most.
COUNT = 512
#: The name a node's reader connection shows in ``CLIENT LIST``.
READER_NAME = "chat-bus-"

#: Read each stream (KEYS) on from the last id read and the count of
#: entries read or skipped (ARGV, in pairs; an empty id: a first start),
#: at most ARGV's last entries each; atomically, so a stream trimmed past
#: what we had read is seen exactly.  Answers, per stream, {id, count,
#: lost, entries}: where the entries start and the count before them.
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
    local last, count = ARGV[2 * i - 1], tonumber(ARGV[2 * i])
    local top, added, length = '0-0', 0, 0
    if redis.call('EXISTS', key) == 1 then
        local info = redis.call('XINFO', 'STREAM', key)
        local fields = {}
        for j = 1, #info, 2 do
            fields[info[j]] = info[j + 1]
        end
        if fields['entries-added'] == nil then
            return redis.error_reply('the cluster needs Redis 7.0 or newer')
        end
        top, added, length = fields['last-generated-id'], fields['entries-added'],
            fields['length']
    end
    local lost = 0
    if last == '' then
        last, count = top, added
    elseif added < count or less(top, last) then
        last, count, lost = '0-0', 0, 1
    elseif added - length > count then
        last, count, lost = top, added, 1
    end
    local entries = {}
    if last ~= top then
        local reply = redis.call('XREAD', 'COUNT', limit, 'STREAMS', key, last)
        if reply then
            entries = reply[1][2]
        end
    end
    answer[i] = {last, tostring(count), lost, entries}
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


class _Position:
    """Where a stream is read from."""

    __slots__ = ("count", "last")

    def __init__(self) -> None:
        self.last = ""
        self.count = 0


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
    ) -> None:
        self.owner = owner
        self.reactor = reactor
        #: The shared command connection (txredisapi), for XADD.
        self.commands = commands
        self.address = address
        self.name = name
        self.streams = streams
        self.length = length
        self.block_ms = max(1, int(block * 1000))
        self._positions = {stream: _Position() for stream in streams}
        self._reader: Any = None
        self._factory: txredisapi.RedisFactory | None = None

    @property
    def reading(self) -> bool:
        """Whether the reader is connected."""
        return self._reader is not None

    def publish(self, stream: str, text: str) -> Deferred[Any]:
        """Add *text* to *stream*, on the command connection."""
        adding: Deferred[Any] = self.commands.execute_command(
            "XADD", stream, "MAXLEN", "~", self.length, "*", "d", text
        )
        return adding

    def start(self) -> None:
        factory = _ReaderFactory(self)
        factory.startConnecting(
            TCP4ClientEndpoint(self.reactor, self.address.host, self.address.port)
        )
        self._factory = factory

    def stop(self) -> Deferred[None]:
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
        first = True
        behind = True
        while reader is self._reader:
            if behind:
                lost, entries = await self._checked_read(reader)
                if reader is not self._reader:
                    return
                if lost:
                    self.owner.link_lost()
                if first:
                    first = False
                    self.owner.link_up()
            else:
                entries = await self._blocking_read(reader)
                if reader is not self._reader:
                    return
            if entries:
                self.owner.events(entries)
            behind = bool(entries)

    async def _checked_read(self, reader: Any) -> tuple[bool, list[tuple[str, str]]]:
        """Read with `READ`: whether entries were lost, and those read."""
        args: list[str | int] = []
        for stream in self.streams:
            position = self._positions[stream]
            args += [position.last, position.count]
        answer = await reader.eval(READ, list(self.streams), [*args, COUNT])
        lost = False
        entries: list[tuple[str, str]] = []
        for stream, (last, count, gone, items) in zip(
            self.streams, answer, strict=True
        ):
            position = self._positions[stream]
            position.last, position.count = str(last), int(count)
            if int(gone):
                log.warn("Cluster: entries of {stream} were lost", stream=stream)
                lost = True
            self._take(stream, items, entries)
        return lost, entries

    async def _blocking_read(self, reader: Any) -> list[tuple[str, str]]:
        """Wait (up to the block time) for entries after the last ones."""
        lasts = [self._positions[stream].last for stream in self.streams]
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
        """Move *stream*'s position past *items*, adding them to *entries*."""
        position = self._positions[stream]
        for ident, fields in items:
            position.last = str(ident)
            position.count += 1
            entries.append((stream, str(fields[1])))


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
