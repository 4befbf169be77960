"""The network a server belongs to: itself alone, or a cluster's nodes.

`ChatServer` tells its `Network` about its local users (registered,
changed, quit) and asks it before giving anyone a nick.  `SingleServer` is
the network of one process; `chat.cluster.node.ClusterNode` shares users and
nicks with the other nodes of a cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from twisted.internet.defer import Deferred, succeed

if TYPE_CHECKING:
    from chat.message import Message
    from chat.protocol import ChatProtocol
    from chat.relay import Relay


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
