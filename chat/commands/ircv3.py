"""IRCv3 identity changes and the notifications other commands send.

``SETNAME`` (setname) and the operator command ``CHGHOST`` (chghost) change
a user's realname and user@host; `account_changed` (account-notify),
`join_relay` (extended-join) and `notify_invite` (invite-notify) are called
by the commands that log in, join and invite.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from chat import events, numerics
from chat.commands import command
from chat.message import Message
from chat.relay import EXTENDED_JOIN, Relay
from chat.router import Audience

if TYPE_CHECKING:
    from chat.channel import Channel
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer

#: The longest realname SETNAME accepts (``NAMELEN`` in ISUPPORT).
NAME_LENGTH = 128
#: What CHGHOST accepts as a username and as a host.
_USERNAME = re.compile(r"^~?[A-Za-z0-9._-]{1,10}$")
_HOST = re.compile(r"^[A-Za-z0-9.:/-]{1,64}$")


def _notify(server: ChatServer, conn: ChatProtocol, message: Message, cap: str) -> None:
    """Relay *message* about *conn* to its peers, and itself, having *cap*."""
    relay = server.relay(message, conn)
    server.router.publish(relay, server.observers_of(conn, cap, include_self=True))


def join_relay(server: ChatServer, conn: ChatProtocol, channel: Channel) -> Relay:
    """The JOIN of *conn* to *channel*, in its extended-join form as well."""
    relay = server.relay(Message("JOIN", (channel.name,), conn.hostmask), conn)
    extended = Message(
        "JOIN",
        (channel.name, getattr(conn, "account", None) or "*", conn.realname),
        conn.hostmask,
    )
    relay.set_alternate(extended, EXTENDED_JOIN)
    return relay


def notify_invite(
    server: ChatServer,
    relay: Relay,
    channel: Channel,
    inviter: ChatProtocol,
    invitee: ChatProtocol,
) -> None:
    """invite-notify: the INVITE *relay* to *channel*'s operators with the
    capability, the two parties aside (as Ergo does)."""
    operators = [
        member
        for member in channel.members
        if member is not inviter
        and member is not invitee
        and channel.is_operator(member)
    ]
    server.router.publish(relay, Audience.to(*operators, cap="invite-notify"))


@command("SETNAME", min_params=1)
def handle_setname(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``SETNAME :<realname>``: change the realname, tell setname peers."""
    realname = msg.params[0]
    if not realname or len(realname) > NAME_LENGTH:
        conn.fail("SETNAME", "INVALID_REALNAME", "Realname is not valid")
        return
    conn.realname = realname
    _notify(server, conn, Message("SETNAME", (realname,), conn.hostmask), "setname")


@command("CHGHOST", min_params=3)
def handle_chghost(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``CHGHOST <nick> <user> <host>``: an operator changes a user's host."""
    if "o" not in conn.modes:
        conn.reply(
            numerics.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator"
        )
        return
    nick, username, host = msg.params[:3]
    user = server.find_user(nick)
    if user is None:
        conn.reply(numerics.ERR_NOSUCHNICK, nick, "No such nick/channel")
        return
    if not _USERNAME.match(username) or not _HOST.match(host):
        conn.fail("CHGHOST", "INVALID_HOST", nick, "Invalid username or host")
        return
    old = user.hostmask
    change_host(server, user, username, host)
    events.host_changed(conn, user, old)
    text = f"Changed the host of {user.nick} to {username}@{host}"
    if "standard-replies" in conn.caps:
        conn.send(Message("NOTE", ("CHGHOST", "HOST_CHANGED", nick, text), server.name))
    else:
        conn.notice(text)


def change_host(
    server: ChatServer, conn: ChatProtocol, username: str, host: str
) -> None:
    """Give *conn* a new user@host and tell everyone who sees it.

    chghost peers get ``CHGHOST``; the others see the user quit and join
    again (with its channel status restored), as the chghost spec suggests.
    """
    if (username, host) == (conn.username, conn.host):
        return
    old = conn.hostmask
    router = server.router
    chghost = server.relay(Message("CHGHOST", (username, host), old), conn)
    router.publish(chghost, server.observers_of(conn, "chghost", include_self=True))
    quit_relay = server.relay(Message("QUIT", ("Changing host",), old), conn)
    conn.username, conn.host = username, host
    router.publish(quit_relay, Audience.peers(conn, lacking="chghost"))
    for channel in conn.channels.values():
        others = Audience.channel(channel, skip=conn, lacking="chghost")
        router.publish(join_relay(server, conn, channel), others)
        modes = channel.members.get(conn, "")
        if modes:
            mode = Message(
                "MODE",
                (channel.name, "+" + modes, *([conn.nick] * len(modes))),
                server.name,
            )
            router.publish(server.relay(mode), others)
