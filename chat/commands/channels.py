"""Channel commands: JOIN, PART, NAMES (and the rest of the channel family)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chat import numerics
from chat.casemap import casefold, valid_channel_name
from chat.commands import command
from chat.message import Message

if TYPE_CHECKING:
    from chat.channel import Channel
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer

#: Room left for NAMES entries in one 353 line (512 minus prefix and params).
NAMES_LINE_BUDGET = 400


@command("JOIN", min_params=1)
def handle_join(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    if msg.params[0] == "0":
        for channel in list(conn.channels.values()):
            part(conn, server, channel, "Left all channels")
        return
    names = msg.params[0].split(",")
    keys = msg.params[1].split(",") if len(msg.params) > 1 else []
    for index, name in enumerate(names):
        if not name:
            continue
        key = keys[index] if index < len(keys) else ""
        join(conn, server, name, key)


def join(conn: ChatProtocol, server: ChatServer, name: str, key: str = "") -> None:
    """Join *conn* to channel *name*, creating it, or answer why not."""
    limits = server.config.limits
    if not valid_channel_name(name, limits.channel_length):
        conn.reply(numerics.ERR_NOSUCHCHANNEL, name, "No such channel")
        return
    folded = casefold(name)
    if folded in conn.channels:
        return
    if len(conn.channels) >= limits.max_channels:
        conn.reply(
            numerics.ERR_TOOMANYCHANNELS, name, "You have joined too many channels"
        )
        return
    channel = server.channels.get(folded)
    if channel is None:
        channel = server.create_channel(name)
        channel.add(conn, "o")
    else:
        refusal = _join_refusal(conn, channel, key)
        if refusal is not None:
            numeric, text = refusal
            conn.reply(numeric, channel.name, text)
            return
        channel.add(conn)
        channel.invited.discard(conn.folded_nick)
    conn.channels[folded] = channel
    relay = server.relay(Message("JOIN", (channel.name,), conn.hostmask))
    server.deliver(relay, channel.members)
    if channel.topic:
        send_topic(conn, channel)
    send_names(conn, channel)


def _join_refusal(
    conn: ChatProtocol, channel: Channel, key: str
) -> tuple[str, str] | None:
    """Why *conn* may not join *channel*, as (numeric, text), or None."""
    invited = conn.folded_nick in channel.invited
    if channel.key is not None and key != channel.key:
        return numerics.ERR_BADCHANNELKEY, "Cannot join channel (+k)"
    if channel.limit is not None and len(channel.members) >= channel.limit:
        return numerics.ERR_CHANNELISFULL, "Cannot join channel (+l)"
    if "i" in channel.flags and not invited:
        return numerics.ERR_INVITEONLYCHAN, "Cannot join channel (+i)"
    if not invited and channel.is_banned(conn.hostmask):
        return numerics.ERR_BANNEDFROMCHAN, "Cannot join channel (+b)"
    return None


def send_topic(conn: ChatProtocol, channel: Channel) -> None:
    """RPL_TOPIC and RPL_TOPICWHOTIME, or RPL_NOTOPIC."""
    if not channel.topic:
        conn.reply(numerics.RPL_NOTOPIC, channel.name, "No topic is set")
        return
    conn.reply(numerics.RPL_TOPIC, channel.name, channel.topic)
    conn.reply(
        numerics.RPL_TOPICWHOTIME,
        channel.name,
        channel.topic_set_by,
        str(channel.topic_set_at),
    )


def send_names(conn: ChatProtocol, channel: Channel) -> None:
    """RPL_NAMREPLY lines then RPL_ENDOFNAMES for *channel*."""
    member = conn in channel.members
    if member or "s" not in channel.flags:
        symbol = "@" if "s" in channel.flags else "="
        multi = "multi-prefix" in conn.caps
        full = "userhost-in-names" in conn.caps
        entries = [
            channel.prefix(user, multi) + (user.hostmask if full else user.nick)
            for user in channel.members
            if member or "i" not in user.modes
        ]
        line: list[str] = []
        size = 0
        for entry in entries:
            if line and size + len(entry) + 1 > NAMES_LINE_BUDGET:
                conn.reply(numerics.RPL_NAMREPLY, symbol, channel.name, " ".join(line))
                line, size = [], 0
            line.append(entry)
            size += len(entry) + 1
        if line:
            conn.reply(numerics.RPL_NAMREPLY, symbol, channel.name, " ".join(line))
    conn.reply(numerics.RPL_ENDOFNAMES, channel.name, "End of /NAMES list")


@command("NAMES")
def handle_names(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    if not msg.params:
        conn.reply(numerics.RPL_ENDOFNAMES, "*", "End of /NAMES list")
        return
    for name in msg.params[0].split(","):
        channel = server.find_channel(name)
        if channel is None:
            conn.reply(numerics.RPL_ENDOFNAMES, name, "End of /NAMES list")
        else:
            send_names(conn, channel)


@command("PART", min_params=1)
def handle_part(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    reason = msg.params[1] if len(msg.params) > 1 else ""
    for name in msg.params[0].split(","):
        channel = server.find_channel(name)
        if channel is None:
            conn.reply(numerics.ERR_NOSUCHCHANNEL, name, "No such channel")
        elif conn not in channel.members:
            conn.reply(
                numerics.ERR_NOTONCHANNEL, channel.name, "You're not on that channel"
            )
        else:
            part(conn, server, channel, reason)


def part(conn: ChatProtocol, server: ChatServer, channel: Channel, reason: str) -> None:
    """Announce that *conn* leaves *channel*, then remove it."""
    params = (channel.name, reason) if reason else (channel.name,)
    relay = server.relay(Message("PART", params, conn.hostmask))
    server.deliver(relay, channel.members)
    server.leave_channel(conn, channel)
