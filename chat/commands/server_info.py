"""Server information: MOTD, LUSERS, VERSION, TIME, INFO and ISUPPORT."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chat import numerics
from chat.commands import command

if TYPE_CHECKING:
    from chat.message import Message
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer

#: ISUPPORT tokens per 005 line, as most servers send them.
TOKENS_PER_LINE = 13

INFO_LINES = (
    "chat-server: a secure, fast IRC server on Twisted.",
    "It speaks IRC (RFC 1459/2812 and IRCv3) over TLS by default.",
)


def send_isupport(conn: ChatProtocol, server: ChatServer) -> None:
    tokens = server.isupport()
    for start in range(0, len(tokens), TOKENS_PER_LINE):
        conn.reply(
            numerics.RPL_ISUPPORT,
            *tokens[start : start + TOKENS_PER_LINE],
            "are supported by this server",
        )


def send_lusers(conn: ChatProtocol, server: ChatServer) -> None:
    """LUSERS: 251 and 266 count the network (every live node of a
    cluster), 255 and 265 this server's own clients."""
    users, local = server.registered_count, server.local_registered
    invisible = server.invisible_count()
    servers = server.server_count
    conn.reply(
        numerics.RPL_LUSERCLIENT,
        f"There are {users - invisible} users and "
        f"{invisible} invisible on {servers} servers",
    )
    conn.reply(
        numerics.RPL_LUSEROP, str(server.operators_online()), "operator(s) online"
    )
    conn.reply(
        numerics.RPL_LUSERUNKNOWN,
        str(server.unregistered_count()),
        "unknown connection(s)",
    )
    conn.reply(numerics.RPL_LUSERCHANNELS, str(len(server.channels)), "channels formed")
    # A node is linked to the rest of its cluster (through Redis) as to one hub.
    linked = 0 if servers == 1 else 1
    conn.reply(numerics.RPL_LUSERME, f"I have {local} clients and {linked} servers")
    conn.reply(
        numerics.RPL_LOCALUSERS,
        str(local),
        str(server.max_local),
        f"Current local users {local}, max {server.max_local}",
    )
    conn.reply(
        numerics.RPL_GLOBALUSERS,
        str(users),
        str(server.max_users),
        f"Current global users {users}, max {server.max_users}",
    )


def send_motd(conn: ChatProtocol, server: ChatServer) -> None:
    if not server.motd:
        conn.reply(numerics.ERR_NOMOTD, "MOTD File is missing")
        return
    conn.reply(numerics.RPL_MOTDSTART, f"- {server.name} Message of the day - ")
    for line in server.motd:
        conn.reply(numerics.RPL_MOTD, f"- {line}")
    conn.reply(numerics.RPL_ENDOFMOTD, "End of /MOTD command.")


def _other_server(conn: ChatProtocol, server: ChatServer, msg: Message) -> bool:
    """Reply 402 when the command names a server that is not this one."""
    if msg.params and msg.params[0].lower() != server.name.lower():
        conn.reply(numerics.ERR_NOSUCHSERVER, msg.params[0], "No such server")
        return True
    return False


@command("MOTD")
def handle_motd(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    if not _other_server(conn, server, msg):
        send_motd(conn, server)


@command("LUSERS")
def handle_lusers(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    send_lusers(conn, server)


@command("VERSION")
def handle_version(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    if _other_server(conn, server, msg):
        return
    conn.reply(
        numerics.RPL_VERSION, server.version, server.name, "IRC server on Twisted"
    )
    send_isupport(conn, server)


@command("TIME")
def handle_time(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    if _other_server(conn, server, msg):
        return
    now = server.clock.seconds()
    conn.reply(
        numerics.RPL_TIME,
        server.name,
        str(int(now)),
        "0",
        time.strftime("%A %B %d %Y -- %H:%M:%S +00:00", time.gmtime(now)),
    )


@command("INFO")
def handle_info(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    if _other_server(conn, server, msg):
        return
    for line in (
        *INFO_LINES,
        f"Version {server.version}",
        f"Up since {server.created_text}",
    ):
        conn.reply(numerics.RPL_INFO, line)
    conn.reply(numerics.RPL_ENDOFINFO, "End of INFO list")
