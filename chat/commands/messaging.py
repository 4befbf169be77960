"""Messages between users: PRIVMSG, NOTICE and TAGMSG.

Every message gets a ``msgid`` and a time (the `Relay`), client-only tags
(``+name``) travel with it to ``message-tags`` clients, and channel and
private messages go to the history store for CHATHISTORY.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from chat import numerics
from chat.casemap import CHANTYPES, casefold
from chat.channel import MEMBER_MODES, MEMBER_PREFIXES
from chat.commands import command
from chat.history.record import remember_channel, remember_private
from chat.message import Message
from chat.router import Audience

if TYPE_CHECKING:
    from chat.channel import Channel
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer

#: STATUSMSG prefix -> the lowest membership mode that receives it.
_STATUS_MODES = {prefix: mode for mode, prefix in MEMBER_PREFIXES.items()}


@command("PRIVMSG")
def handle_privmsg(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    if "batch" in msg.tags:
        absorb_line(conn, server, msg)
        return
    send_message(conn, server, msg, notice=False)


@command("NOTICE")
def handle_notice(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    if "batch" in msg.tags:
        absorb_line(conn, server, msg)
        return
    send_message(conn, server, msg, notice=True)


def absorb_line(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """A line of a draft/multiline batch (`chat.commands.multiline`)."""
    from chat.commands.multiline import absorb_line as absorb

    absorb(conn, server, msg)


@command("TAGMSG")
def handle_tagmsg(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    send_message(conn, server, msg, notice=False)


def client_tags(msg: Message) -> dict[str, str]:
    """The client-only tags (``+name``) of *msg*, to relay as they are."""
    return {key: value for key, value in msg.tags.items() if key.startswith("+")}


def send_message(
    conn: ChatProtocol, server: ChatServer, msg: Message, notice: bool
) -> None:
    """Deliver a PRIVMSG, NOTICE or TAGMSG to each of its targets.

    NOTICE never causes automatic replies, errors included (RFC 2812 3.3.2).
    """
    tagmsg = msg.command == "TAGMSG"
    if not msg.params or not msg.params[0]:
        if not notice:
            conn.reply(numerics.ERR_NORECIPIENT, f"No recipient given ({msg.command})")
        return
    if not tagmsg and (len(msg.params) < 2 or not msg.params[1]):
        if not notice:
            conn.reply(numerics.ERR_NOTEXTTOSEND, "No text to send")
        return
    targets = list(dict.fromkeys(t for t in msg.params[0].split(",") if t))
    if len(targets) > server.config.limits.max_targets:
        if not notice:
            conn.reply(numerics.ERR_TOOMANYTARGETS, msg.params[0], "Too many targets")
        return
    text = () if tagmsg else (msg.params[1],)
    tags = client_tags(msg)
    conn.last_message = server.clock.seconds()
    echo = "echo-message" in conn.caps
    for target in targets:
        status = ""
        name = target
        while name and name[0] in _STATUS_MODES:
            status, name = name[0], name[1:]
        if name[:1] in CHANTYPES:
            _to_channel(
                conn, server, msg.command, name, status, text, tags, notice, echo
            )
        elif status:
            if not notice:
                conn.reply(numerics.ERR_NOSUCHNICK, target, "No such nick/channel")
        else:
            _to_user(conn, server, msg.command, target, text, tags, notice, echo)


def can_send(conn: ChatProtocol, channel: Channel) -> bool:
    """Whether *conn* may speak in *channel* (+n, +m, bans and mutes)."""
    modes = channel.members.get(conn)
    if modes is None:
        return "n" not in channel.flags and not channel.is_muted(conn)
    if modes:
        return True
    return "m" not in channel.flags and not channel.is_muted(conn)


def is_blocked_ctcp(channel: Channel, text: tuple[str, ...]) -> bool:
    """Whether *text* is a CTCP other than ACTION in a ``+C`` channel."""
    return (
        "C" in channel.flags
        and bool(text)
        and text[0].startswith("\x01")
        and not text[0].startswith("\x01ACTION")
    )


def _receives(member: ChatProtocol, verb: str) -> bool:
    """TAGMSG only goes to clients with ``message-tags`` (IRCv3)."""
    return verb != "TAGMSG" or "message-tags" in member.caps


def _to_channel(
    conn: ChatProtocol,
    server: ChatServer,
    verb: str,
    name: str,
    status: str,
    text: tuple[str, ...],
    tags: Mapping[str, str],
    notice: bool,
    echo: bool,
) -> None:
    channel = server.channels.get(casefold(name))
    if channel is None:
        if not notice:
            conn.reply(numerics.ERR_NOSUCHCHANNEL, name, "No such channel")
        return
    if not can_send(conn, channel) or is_blocked_ctcp(channel, text):
        if not notice:
            conn.reply(
                numerics.ERR_CANNOTSENDTOCHAN, channel.name, "Cannot send to channel"
            )
        return
    params = (status + channel.name, *text)
    relay = server.relay(Message(verb, params, conn.hostmask), conn, **tags)
    allowed = ""
    if status:
        allowed = MEMBER_MODES[: MEMBER_MODES.index(_STATUS_MODES[status]) + 1]
    else:
        remember_channel(server, relay, channel)
    cap = "message-tags" if verb == "TAGMSG" else None
    server.router.publish(
        relay, Audience.channel(channel, skip=conn, cap=cap, status=allowed)
    )
    if echo and _receives(conn, verb):
        conn.relay(relay)


def _to_user(
    conn: ChatProtocol,
    server: ChatServer,
    verb: str,
    target: str,
    text: tuple[str, ...],
    tags: Mapping[str, str],
    notice: bool,
    echo: bool,
) -> None:
    bot = server.services.find(target)
    if bot is not None:
        if verb == "PRIVMSG":
            bot.handle(conn, text[0])
        return
    user = server.find_user(target)
    if user is None:
        if not notice:
            conn.reply(numerics.ERR_NOSUCHNICK, target, "No such nick/channel")
        return
    relay = server.relay(Message(verb, (user.nick, *text), conn.hostmask), conn, **tags)
    remember_private(server, relay, conn, user)
    if _receives(user, verb):
        if user is conn:
            # To oneself: only the echo answers the command (and carries
            # its label); the received copy is an ordinary delivery.
            server.router.write(conn, relay.bytes_for(conn))
        else:
            server.router.deliver(relay, user)
    if echo and _receives(conn, verb):
        conn.relay(relay)
    if verb == "PRIVMSG" and user.away is not None:
        conn.reply(numerics.RPL_AWAY, user.nick, user.away)
