"""The network a server belongs to: itself alone, or a cluster's nodes.

`ChatServer` tells its `Network` about its local users (registered,
changed, quit) and asks it before giving anyone a nick.  `SingleServer` is
the network of one process; `chat.cluster.node.ClusterNode` shares users and
nicks with the other nodes of a cluster.

`SharedState` is what else must hold network-wide: the client limit
(``max-clients``), account registrations per address, WHOWAS and
ChanServ's registered channels.  `LocalState`
is a single server's; `chat.cluster.shared.RedisState` a cluster's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from twisted.internet.defer import Deferred, succeed

from chat.whowas import matching

if TYPE_CHECKING:
    from chat.message import Message
    from chat.protocol import ChatProtocol
    from chat.relay import Relay
    from chat.server import ChatServer
    from chat.whowas import WhowasEntry


class NickUnavailableError(Exception):
    """The network cannot say whether a nick is free (its link is down)."""


class Network(Protocol):
    """What a server tells, and asks, the rest of its network."""

    def claim_nick(self, conn: ChatProtocol, nick: str) -> Deferred[bool]:
        """Reserve *nick* for *conn* network-wide: False if someone has it;
        fails with `NickUnavailableError` when that cannot be known now."""

    def release_nick(self, conn: ChatProtocol, nick: str) -> None:
        """Local *conn* no longer uses *nick* (renamed, or gone)."""

    def user_registered(self, conn: ChatProtocol) -> None:
        """Local *conn* completed registration."""

    def user_changed(self, conn: ChatProtocol, old_nick: str | None = None) -> None:
        """Local *conn* changed nick (*old_nick*), modes, away or account."""

    def user_quit(self, conn: ChatProtocol, reason: str) -> None:
        """Local registered *conn* is gone."""

    def route(self, conn: ChatProtocol, message: Message) -> bool:
        """Take *message* of local *conn* to run it elsewhere: True if taken."""

    def relay(self, relay: Relay, nicks: Mapping[str, Sequence[str]]) -> None:
        """Deliver *relay* to users of other nodes: node -> folded nicks."""


class SingleServer:
    """A network of one server: a nick free here is free."""

    def claim_nick(self, conn: ChatProtocol, nick: str) -> Deferred[bool]:
        return succeed(True)

    def release_nick(self, conn: ChatProtocol, nick: str) -> None:
        """Nothing was reserved."""

    def user_registered(self, conn: ChatProtocol) -> None:
        """Nobody else to tell."""

    def user_changed(self, conn: ChatProtocol, old_nick: str | None = None) -> None:
        """Nobody else to tell."""

    def user_quit(self, conn: ChatProtocol, reason: str) -> None:
        """Nobody else to tell."""

    def route(self, conn: ChatProtocol, message: Message) -> bool:
        return False

    def relay(self, relay: Relay, nicks: Mapping[str, Sequence[str]]) -> None:
        """There are no other nodes."""


class SharedState(Protocol):
    """Limits and records of the whole network, besides users and nicks."""

    def admit(self, conn: ChatProtocol) -> None:
        """Local *conn* connected within this server's own limits: close it
        if the network has ``max-clients`` already."""

    def left(self, conn: ChatProtocol) -> None:
        """Local *conn* is gone: it no longer counts."""

    def may_register(self, address: str) -> Deferred[bool]:
        """Whether *address* may register an account now, counting one if
        so; fails with `chat.storage.StoreUnavailableError` when that cannot
        be known now."""

    def remember(self, entry: WhowasEntry) -> None:
        """Keep *entry* (kept here already) for WHOWAS on every server."""

    def whowas(self, nick: str, limit: int | None) -> Deferred[list[WhowasEntry]]:
        """The WHOWAS entries of *nick*, newest first, at most *limit*."""

    def channels_changed(self, folded: str) -> None:
        """ChanServ registered, changed or dropped channel *folded* (in the
        shared store): the other servers re-read it."""


class LocalState:
    """The shared state of a network of one server: its own."""

    def __init__(self, server: ChatServer) -> None:
        self.server = server

    def admit(self, conn: ChatProtocol) -> None:
        """`chat.limits.ConnectionLimiter` counted it already."""

    def left(self, conn: ChatProtocol) -> None:
        """See `admit`."""

    def may_register(self, address: str) -> Deferred[bool]:
        return succeed(self.server.accounts.may_register(address))

    def remember(self, entry: WhowasEntry) -> None:
        """`ChatServer.whowas` has it."""

    def whowas(self, nick: str, limit: int | None) -> Deferred[list[WhowasEntry]]:
        return succeed(matching(self.server.whowas, nick, limit))

    def channels_changed(self, folded: str) -> None:
        """Nobody else to tell."""
