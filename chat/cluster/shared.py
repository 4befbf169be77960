"""RedisState: the `chat.network.SharedState` of a cluster node.

It puts together the network-wide client limit, login throttles and
registrations per address (`chat.cluster.counters`), WHOWAS
(`chat.cluster.whowas`) and ChanServ's registered channels: a node that
registers, changes or drops one in the shared database publishes
``{"e": "chanserv", "c": <folded name>}`` and every other node reads that
channel again; a node whose link to Redis comes back reads them all again
(it may have missed some).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall

from chat.cluster.counters import ClientCounter, SharedLogins, SharedRegistrations
from chat.cluster.whowas import SharedWhowas

if TYPE_CHECKING:
    from chat.cluster.node import ClusterNode
    from chat.protocol import ChatProtocol
    from chat.whowas import WhowasEntry

#: Publishes an event to every node.
Publish = Callable[[dict[str, Any]], object]


class RedisState:
    """What a cluster shares besides users, nicks and channels."""

    def __init__(self, node: ClusterNode, publish: Publish) -> None:
        self.node = node
        self.server = node.server
        self.publish = publish
        self.clients = ClientCounter(node)
        self.whowas_log = SharedWhowas(node)
        self.registrations = SharedRegistrations(node)
        self._tick = LoopingCall(self._refresh)
        self._tick.clock = node.server.clock
        self._was_linked = False

    def start(self) -> None:
        """Become the server's shared state; share its login throttles."""
        server = self.server
        server.shared = self
        accounts = server.accounts
        accounts.logins = SharedLogins(
            self.node, accounts.max_failures, accounts.failure_window
        )
        self._tick.start(self.node.lease / 4, now=False)

    def stop(self) -> None:
        """The node stops: its clients stop counting."""
        if self._tick.running:
            self._tick.stop()
        self.clients.forget()

    def _refresh(self) -> None:
        """Every quarter lease: this node's client count; after the link
        came back, ChanServ's list."""
        linked = self.node.linked
        if linked:
            self.clients.refresh()
            if not self._was_linked:
                self.server.services.chanserv.reload_all()
        self._was_linked = linked

    # -- SharedState ---------------------------------------------------------

    def admit(self, conn: ChatProtocol) -> None:
        self.clients.admit(conn)

    def left(self, conn: ChatProtocol) -> None:
        self.clients.left(conn)

    def may_register(self, address: str) -> Deferred[bool]:
        return self.registrations.may_register(address)

    def remember(self, entry: WhowasEntry) -> None:
        self.whowas_log.remember(entry)

    def whowas(self, nick: str, limit: int | None) -> Deferred[list[WhowasEntry]]:
        return self.whowas_log.lookup(nick, limit)

    def channels_changed(self, folded: str) -> None:
        if self.node.linked:
            self.publish({"e": "chanserv", "n": self.node.node_name, "c": folded})

    def event(self, event: dict[str, Any]) -> None:
        """A ``chanserv`` event of another node: read that channel again."""
        self.server.services.chanserv.reload(str(event["c"]))
