"""Connection registration: PASS, NICK, USER, PING, PONG, QUIT."""

from __future__ import annotations

import hmac
import re
from typing import TYPE_CHECKING

from twisted.python.failure import Failure

from chat import events, numerics
from chat.casemap import casefold, valid_nick
from chat.commands import command
from chat.commands.metadata import send_metadata_on_welcome
from chat.commands.server_info import send_isupport, send_lusers, send_motd
from chat.identity import change_nick
from chat.message import Message
from chat.network import NickUnavailableError
from chat.sasl import hold_registration
from chat.services import Later

if TYPE_CHECKING:
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer

USER_LENGTH = 10
_USERNAME_JUNK = re.compile(r"[^A-Za-z0-9._-]")
#: The username of a client whose USER name has no allowed character.
FALLBACK_USER = "user"


@command("PASS", min_params=1, registered=False)
def handle_pass(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    if conn.registered:
        conn.reply(numerics.ERR_ALREADYREGISTERED, "You may not reregister")
        return
    expected = server.config.password
    if expected is not None:
        conn.password_ok = hmac.compare_digest(
            msg.params[0].encode("utf-8"), expected.encode("utf-8")
        )


@command("NICK", registered=False)
def handle_nick(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    if not msg.params or not msg.params[0]:
        conn.reply(numerics.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    nick = msg.params[0]
    if not valid_nick(nick, server.config.limits.nick_length):
        conn.reply(numerics.ERR_ERRONEUSNICKNAME, nick, "Erroneous nickname")
        return
    holder = server.nicks.get(casefold(nick))
    # A user of another node may have left just now (the news is on its
    # way): then the network decides, as for a free nick.
    remote = holder is not None and holder is not conn and holder.node is not None
    if server.nick_in_use(nick, conn) and not remote:
        conn.reply(numerics.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
        if not conn.registered:
            conn.refused_nick = nick
        return
    if nick == conn.nick:
        return
    # In a cluster the network decides (the client's next lines wait).
    later = Later(conn)
    claiming = server.network.claim_nick(conn, nick)
    claiming.addCallbacks(
        lambda won: later.run(lambda: _take_nick(conn, server, nick, won)),
        lambda failure: later.run(lambda: _nick_unavailable(conn, nick, failure)),
    )
    later.watch(claiming, lambda: None)


def _take_nick(conn: ChatProtocol, server: ChatServer, nick: str, won: bool) -> None:
    if not won or server.nick_in_use(nick, conn):
        conn.reply(numerics.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
        return
    if not conn.registered:
        server.set_nick(conn, nick)
        try_register(conn, server)
        return
    change_nick(conn, server, nick)
    server.services.nick_changed(conn)


def _nick_unavailable(conn: ChatProtocol, nick: str, failure: Failure) -> None:
    failure.trap(NickUnavailableError)
    conn.reply(
        numerics.ERR_UNAVAILRESOURCE,
        nick,
        "Nick is temporarily unavailable: this server cannot reach the rest "
        "of the network to check it; try again soon",
    )


@command("USER", min_params=4, registered=False)
def handle_user(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    if conn.registered or conn.username:
        conn.reply(numerics.ERR_ALREADYREGISTERED, "You may not reregister")
        return
    if not msg.params[0] or not msg.params[3]:
        # Empty username or realname (modern.ircdocs.horse, USER).
        conn.reply(numerics.ERR_NEEDMOREPARAMS, "USER", "Not enough parameters")
        return
    # A name of no allowed character (all non-ASCII, say) gets a safe one.
    username = _USERNAME_JUNK.sub("", msg.params[0])[:USER_LENGTH] or FALLBACK_USER
    conn.username = "~" + username[: USER_LENGTH - 1]
    conn.realname = msg.params[3]
    try_register(conn, server)


def try_register(conn: ChatProtocol, server: ChatServer) -> None:
    """Finish registration once NICK, USER and CAP negotiation are done."""
    if conn.registered or conn.nick == "*" or not conn.username:
        return
    if conn.cap_negotiating or hold_registration(conn):
        return
    if not conn.password_ok:
        events.login_failed(conn, "PASS", None, "wrong server password")
        conn.reply(numerics.ERR_PASSWDMISMATCH, "Password incorrect")
        conn.close("Bad password")
        return
    server.mark_registered(conn)
    conn.start_keepalive()
    send_welcome(conn, server)
    server.services.nick_changed(conn)


def send_welcome(conn: ChatProtocol, server: ChatServer) -> None:
    """The registration burst: 001-004, ISUPPORT, LUSERS and the MOTD."""
    network = server.config.network
    conn.reply(
        numerics.RPL_WELCOME,
        f"Welcome to the {network} Internet Relay Chat Network {conn.hostmask}",
    )
    conn.reply(
        numerics.RPL_YOURHOST,
        f"Your host is {server.name}, running version {server.version}",
    )
    conn.reply(numerics.RPL_CREATED, f"This server was created {server.created_text}")
    conn.reply(
        numerics.RPL_MYINFO, server.name, server.version, "Biow", "biklmnostv", "bklov"
    )
    send_isupport(conn, server)
    send_metadata_on_welcome(conn, server)
    send_lusers(conn, server)
    send_motd(conn, server)


@command("PING", min_params=1, registered=False)
def handle_ping(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    conn.send(Message("PONG", (server.name, msg.params[0]), server.name))


@command("PONG", registered=False)
def handle_pong(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """Any input counts as activity; PONG needs nothing more."""


@command("QUIT", registered=False)
def handle_quit(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    text = msg.params[0] if msg.params else ""
    conn.close(f"Quit: {text}" if text else "Client Quit")
