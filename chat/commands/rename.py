"""RENAME (IRCv3 draft/channel-rename): give a channel a new name.

``RENAME <channel> <new name> [:<reason>]``, by a channel operator.
Members with the capability see ``RENAME``; the others see themselves part
the old channel and join the new one, with its topic and names (as Ergo
does).  A channel registered with ChanServ cannot be renamed, nor a channel
take a name in use; history stays under the old name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chat import numerics
from chat.casemap import casefold, valid_channel_name
from chat.commands import command
from chat.commands.channels import send_names, send_topic
from chat.commands.ircv3 import join_relay
from chat.message import Message

if TYPE_CHECKING:
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer

CAP = "draft/channel-rename"


@command("RENAME", min_params=2)
def handle_rename(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``RENAME <channel> <new name> [:<reason>]``."""
    old_name, new_name = msg.params[0], msg.params[1]
    reason = msg.params[2] if len(msg.params) > 2 else ""
    channel = server.find_channel(old_name)
    if channel is None:
        conn.reply(numerics.ERR_NOSUCHCHANNEL, old_name, "No such channel")
        return
    old_name = channel.name
    if not channel.is_operator(conn) and "o" not in conn.modes:
        conn.reply(
            numerics.ERR_CHANOPRIVSNEEDED, old_name, "You're not a channel operator"
        )
        return
    if not valid_channel_name(new_name, server.config.limits.channel_length):
        conn.reply(numerics.ERR_NOSUCHCHANNEL, new_name, "Invalid channel name")
        return
    registered = server.services.chanserv.registered
    if channel.folded in registered or casefold(new_name) in registered:
        conn.fail(
            "RENAME",
            "CANNOT_RENAME",
            old_name,
            new_name,
            "Registered channels cannot be renamed",
        )
        return
    other = server.find_channel(new_name)
    if other is not None and other is not channel:
        conn.fail(
            "RENAME", "CHANNEL_NAME_IN_USE", old_name, new_name, "Channel name in use"
        )
        return
    server.rename_channel(channel, new_name)
    params = (old_name, new_name, reason) if reason else (old_name, new_name)
    rename = server.relay(Message("RENAME", params, conn.hostmask), conn)
    part_reason = f"Channel renamed: {reason}" if reason else "Channel renamed"
    for member in list(channel.members):
        if CAP in member.caps:
            member.relay(rename)
            continue
        member.send(Message("PART", (old_name, part_reason), member.hostmask))
        member.relay(join_relay(server, member, channel))
        if channel.topic:
            send_topic(member, channel)
        if "no-implicit-names" not in member.caps:
            send_names(member, channel)
