"""Remote sessions: users of other nodes, as `ChatProtocol`s on this one.

A remote session is registered, has the user's identity and capabilities
(so relays are serialized for its tag profile), and sits in the nick table
like any user.  What it is written goes to the user's own node, which
writes it to the real connection (with this server's name as the source of
server replies made that node's, `own_source`); closing it (KILL, GHOST) asks that node
to close the real connection.  It never reads input here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IAddress

from chat.protocol import ChatProtocol

if TYPE_CHECKING:
    from chat.server import ChatServer

#: Sends a line's bytes, or a request to close, to a node for one user.
Forward = Callable[[str, dict[str, Any]], None]

#: What a node publishes of each of its users.
IDENTITY_FIELDS = (
    "nick",
    "username",
    "realname",
    "host",
    "account",
    "away",
    "secure",
)


def identity_of(conn: ChatProtocol, node_name: str) -> dict[str, Any]:
    """What other nodes need to show and reach local user *conn*."""
    identity: dict[str, Any] = {name: getattr(conn, name) for name in IDENTITY_FIELDS}
    identity["modes"] = "".join(sorted(conn.modes))
    identity["caps"] = sorted(conn.caps)
    identity["connected_at"] = conn.connected_at
    identity["server"] = node_name
    return identity


class RemoteTransport:
    """The transport of a remote session: forwards to the user's node."""

    disconnecting = False

    def __init__(self, session: ChatProtocol, node: str, forward: Forward) -> None:
        self.session = session
        self.node = node
        self.forward = forward

    def write(self, data: bytes) -> None:
        if not self.session.closing:
            self.forward(
                self.node,
                {
                    "e": "out",
                    "nick": self.session.folded_nick,
                    "d": data,
                    "s": self.session.server.name,
                },
            )

    def writeSequence(self, data: list[bytes]) -> None:
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        if self.disconnecting:
            return
        self.disconnecting = True
        reason = self.session.quit_reason or "Disconnected"
        self.forward(
            self.node,
            {"e": "close", "nick": self.session.folded_nick, "reason": reason},
        )

    def abortConnection(self) -> None:
        self.loseConnection()

    def getPeer(self) -> IAddress:
        return IPv4Address("TCP", "0.0.0.0", 0)

    def getHost(self) -> IAddress:
        return IPv4Address("TCP", "0.0.0.0", 0)

    def registerProducer(self, producer: object, streaming: bool) -> None:
        """Nothing to pace here: the user's node does."""

    def unregisterProducer(self) -> None:
        """See `registerProducer`."""

    def pauseProducing(self) -> None:
        """A remote session never reads."""

    def resumeProducing(self) -> None:
        """See `pauseProducing`."""


def own_source(data: str, theirs: str, ours: str) -> str:
    """The lines *data* that server *theirs* wrote for a user of this
    server (*ours*), with *theirs* as a line's source made *ours*: a client
    sees replies come from the server it is connected to.  Lines with
    another source (relayed user messages) pass untouched, unparsed when no
    line has that source."""
    source = f":{theirs} "
    if not theirs or theirs == ours or source not in data:
        return data
    lines = data.split("\n")
    for index, line in enumerate(lines):
        start = line.find(" ") + 1 if line.startswith("@") else 0
        if line.startswith(source, start):
            lines[index] = f"{line[:start]}:{ours} {line[start + len(source) :]}"
    return "\n".join(lines)


def remote_session(
    server: ChatServer, node: str, identity: Mapping[str, Any], forward: Forward
) -> ChatProtocol:
    """A registered session for the user *identity* of node *node*."""
    session = ChatProtocol(server)
    session.transport = RemoteTransport(session, node, forward)  # type: ignore[assignment]
    update_session(session, identity)
    session.home = str(identity.get("server") or node)
    session.node = node
    session.connected_at = session.last_active = session.last_message = float(
        identity.get("connected_at") or server.clock.seconds()
    )
    return session


def update_session(session: ChatProtocol, identity: Mapping[str, Any]) -> None:
    """Give *session* the fields of *identity* but the nick and user modes,
    which go through the server (its nick table and mode counts)."""
    session.username = str(identity.get("username") or "")
    session.realname = str(identity.get("realname") or "")
    session.host = session.address = str(identity.get("host") or "unknown")
    session.account = identity.get("account") or None
    session.away = identity.get("away")
    session.secure = bool(identity.get("secure"))
    for cap in list(session.caps):
        session.set_cap(cap, False)
    for cap in identity.get("caps") or ():
        session.set_cap(str(cap), True)
