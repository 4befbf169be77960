"""Router: the one path of every delivery, and of every byte written.

A relayed message goes to an `Audience`: a description of who receives it
(the members of some channels, some users, everyone with a user mode) with
filters (leave one out, only those with or without a capability, only
members with a status).  `Router.publish` finds the local recipients and
serializes the message once per tag profile; every recipient of a profile
gets the same bytes.  The audience is a description rather than a list of
sockets so that, in cluster mode, another node can find its own members.

Writes are collected per *turn*: while one connection's input is handled
(`begin_turn`/`end_turn`), what anyone is sent waits in an outbox per
connection and goes out in one transport write per connection at the end.
An outbox is the one line a connection was sent in the turn, or a list of
them once there are more: a message to a channel of 500 costs no list per
member.

Durability: a turn that stored a message in history (`stored_in_turn`) is
written out only once the history store says the message is durable
(`HistoryStore.stored`); later output queues behind it, so nobody sees a
message, or anything after it, before it would survive a crash.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from twisted.logger import Logger
from twisted.python.failure import Failure

if TYPE_CHECKING:
    from chat.channel import Channel
    from chat.protocol import ChatProtocol
    from chat.relay import Relay
    from chat.server import ChatServer


class Sink(Protocol):
    """Where the router writes: a connection, or a link to another node."""

    def transmit(self, data: bytes) -> None: ...


#: A connection's output in a turn: its one line, or a list of them.
Box = bytes | list[bytes]
Outboxes = dict[Sink, Box]

log = Logger()


@dataclass(frozen=True, slots=True)
class Audience:
    """Who receives a relay; see the module docstring."""

    channels: tuple[Channel, ...] = ()
    users: tuple[ChatProtocol, ...] = ()
    #: Every registered user with one of these user modes (WALLOPS).
    user_modes: str = ""
    #: Left out even when a channel or user above includes them.
    skip: ChatProtocol | None = None
    #: Only recipients that negotiated this capability.
    cap: str | None = None
    #: Only recipients that did not negotiate this capability.
    lacking: str | None = None
    #: Only channel members with one of these membership modes (STATUSMSG).
    status: str = ""

    @classmethod
    def channel(
        cls,
        channel: Channel,
        skip: ChatProtocol | None = None,
        cap: str | None = None,
        lacking: str | None = None,
        status: str = "",
    ) -> Audience:
        """The members of *channel*."""
        return cls((channel,), (), "", skip, cap, lacking, status)

    @classmethod
    def peers(
        cls,
        user: ChatProtocol,
        include_self: bool = False,
        cap: str | None = None,
        lacking: str | None = None,
    ) -> Audience:
        """Everyone sharing a channel with *user* (and *user*, if asked)."""
        channels = tuple(user.channels.values())
        if include_self:
            return cls(channels, (user,), "", None, cap, lacking)
        return cls(channels, (), "", user, cap, lacking)

    @classmethod
    def to(cls, *users: ChatProtocol, cap: str | None = None) -> Audience:
        """Just *users*."""
        return cls((), users, "", None, cap)


class _Gate:
    """Output held until the history store makes a turn's messages durable."""

    __slots__ = ("open", "outboxes")

    def __init__(self) -> None:
        self.open = False
        self.outboxes: Outboxes = {}


class Router:
    """Delivers relays to audiences and writes connections' output in turns."""

    def __init__(self, server: ChatServer) -> None:
        self.server = server
        self._turn: Outboxes | None = None
        self._stored = False
        self._gates: deque[_Gate] = deque()

    # -- delivery -------------------------------------------------------

    def recipients(self, audience: Audience) -> Iterable[ChatProtocol]:
        """The local connections *audience* describes, filters applied."""
        found = self._gather(audience)
        skip, cap, lacking = audience.skip, audience.cap, audience.lacking
        if skip is None and cap is None and lacking is None:
            return found
        return [
            member
            for member in found
            if member is not skip
            and (cap is None or cap in member.caps)
            and (lacking is None or lacking not in member.caps)
        ]

    def _gather(self, audience: Audience) -> Iterable[ChatProtocol]:
        """The connections *audience* names, before its filters."""
        found: Iterable[ChatProtocol]
        if audience.user_modes:
            modes = audience.user_modes
            found = [
                user
                for user in self.server.nicks.values()
                if user.registered and any(mode in user.modes for mode in modes)
            ]
        elif audience.status:
            status = audience.status
            found = dict.fromkeys(
                member
                for channel in audience.channels
                for member, modes in channel.members.items()
                if any(mode in modes for mode in status)
            )
        elif len(audience.channels) == 1 and not audience.users:
            found = audience.channels[0].members
        else:
            merged: dict[ChatProtocol, None] = {}
            for channel in audience.channels:
                merged.update(dict.fromkeys(channel.members))
            merged.update(dict.fromkeys(audience.users))
            found = merged
        return found

    def publish(
        self, relay: Relay, audience: Audience, local_only: bool = False
    ) -> None:
        """Deliver *relay* to everyone in *audience*.

        The hot loop of a busy channel: one line per tag profile, added to
        each recipient's outbox (or written at once outside a turn).  Users
        of other cluster nodes are gathered by node and get the relay once
        per node (not with *local_only*).
        """
        outboxes = self._outboxes()
        lines: dict[int, bytes] = {}
        remote: dict[str, list[str]] | None = None
        skip = audience.skip
        if audience.cap is None and audience.lacking is None:
            # The common case (a channel message, its sender left out):
            # no list of the other members is built.
            members = self._gather(audience)
        else:
            members, skip = self.recipients(audience), None
        for member in members:
            if member is skip:
                continue
            node = member.node
            if node is not None:
                if not local_only:
                    if remote is None:
                        remote = {}
                    remote.setdefault(node, []).append(member.folded_nick)
                continue
            profile = member.tag_profile
            data = lines.get(profile)
            if data is None:
                data = lines[profile] = relay.bytes_for(member)
            if member.response is not None:
                member.write(data)  # its own labeled response collects it
            elif outboxes is None:
                member.transmit(data)
            else:
                box = outboxes.get(member)
                if box is None:
                    outboxes[member] = data
                elif isinstance(box, bytes):
                    outboxes[member] = [box, data]
                else:
                    box.append(data)
        if remote is not None:
            self.server.network.relay(relay, remote)

    def deliver(self, relay: Relay, user: ChatProtocol) -> None:
        """`publish` *relay* to *user* alone: the private-message path,
        without an `Audience` to build and filter."""
        node = user.node
        if node is not None:
            self.server.network.relay(relay, {node: [user.folded_nick]})
            return
        data = relay.bytes_for(user)
        if user.response is not None:
            user.write(data)  # its own labeled response collects it
        else:
            self.write(user, data)

    def write(self, conn: Sink, data: bytes) -> None:
        """Write *data* to *conn*, in order with what it was already sent.

        A user of another node (a remote session, `ChatProtocol.node` set)
        is written through at once: its transport forwards *data* into the
        turn's output for that node, in order with the relays there."""
        outboxes = self._outboxes()
        if outboxes is None or getattr(conn, "node", None) is not None:
            conn.transmit(data)
            return
        box = outboxes.get(conn)
        if box is None:
            outboxes[conn] = data
        elif isinstance(box, bytes):
            outboxes[conn] = [box, data]
        else:
            box.append(data)

    def _outboxes(self) -> Outboxes | None:
        """Where output goes now: this turn's, the last held, or none."""
        if self._turn is not None:
            return self._turn
        if self._gates:
            return self._gates[-1].outboxes
        return None

    # -- turns ----------------------------------------------------------

    def begin_turn(self) -> bool:
        """Start collecting output; False if a turn is already running."""
        if self._turn is not None:
            return False
        self._turn = {}
        return True

    def stored_in_turn(self) -> None:
        """The running turn kept a message in history: hold its output until
        the message is durable.  Outside a turn this does nothing."""
        if self._turn is not None:
            self._stored = True

    def end_turn(self) -> None:
        """Write what the turn collected, or hold it behind durability."""
        outboxes, self._turn = self._turn, None
        stored, self._stored = self._stored, False
        if outboxes is None:
            return
        if stored:
            durable = self.server.history.stored()
            if not durable.called or self._gates:
                gate = _Gate()
                gate.outboxes = outboxes
                self._gates.append(gate)
                durable.addBoth(self._opened, gate)
                return
        if self._gates:
            held = self._gates[-1].outboxes
            for conn, box in outboxes.items():
                before = held.get(conn)
                if before is None:
                    held[conn] = box
                elif isinstance(before, bytes):
                    held[conn] = [before, *_lines(box)]
                else:
                    before.extend(_lines(box))
            return
        _write_all(outboxes)

    def flush(self, conn: Sink) -> None:
        """Write what the running turn holds for *conn* now (it is closing)."""
        if self._turn is not None:
            box = self._turn.pop(conn, None)
            if box:
                conn.transmit(box if isinstance(box, bytes) else b"".join(box))

    def _opened(self, result: object, gate: _Gate) -> None:
        if isinstance(result, Failure):
            log.failure("History store failed; delivering all the same", result)
        gate.open = True
        while self._gates and self._gates[0].open:
            _write_all(self._gates.popleft().outboxes)


def _write_all(outboxes: Outboxes) -> None:
    last: list[bytes] | None = None
    joined = b""
    for conn, box in outboxes.items():
        if isinstance(box, bytes):
            conn.transmit(box)
            continue
        if box != last:
            # Members of a channel are mostly sent the same lines (the same
            # objects: a cheap comparison): joined once for all of them.
            last, joined = box, b"".join(box)
        conn.transmit(joined)


def _lines(box: Box) -> list[bytes]:
    """The lines of *box*."""
    return [box] if isinstance(box, bytes) else box
