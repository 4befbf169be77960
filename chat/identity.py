"""A user's identity changes, told to everyone who sees them.

Commands, services and the accounts module all rename users and log them
in or out; what others are told lives here, below all of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chat.history.record import remember_events
from chat.message import Message
from chat.router import Audience

if TYPE_CHECKING:
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer


def change_nick(conn: ChatProtocol, server: ChatServer, nick: str) -> None:
    """Rename registered *conn* to *nick* and tell it and its peers."""
    server.remember(conn)
    relay = server.relay(Message("NICK", (nick,), conn.hostmask), conn)
    remember_events(server, relay, conn.channels.values())
    server.set_nick(conn, nick)
    conn.relay(relay)
    server.router.publish(relay, Audience.peers(conn))


def account_changed(server: ChatServer, conn: ChatProtocol) -> None:
    """account-notify: ``ACCOUNT <name>`` or ``ACCOUNT *`` to *conn*'s peers
    (and extended-monitor watchers).

    To be called right after ``conn.account`` changes (login or logout).
    """
    server.network.user_changed(conn)
    account = getattr(conn, "account", None) or "*"
    relay = server.relay(Message("ACCOUNT", (account,), conn.hostmask), conn)
    server.router.publish(relay, server.observers_of(conn, "account-notify"))
