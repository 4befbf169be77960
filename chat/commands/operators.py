"""Operator commands: OPER, KILL and WALLOPS.

Operator credentials live in ``config.operators`` (name -> scrypt hash from
``python -m chat.passwords``).  Checking one costs about 100 ms of CPU, so it
runs on the accounts worker thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from chat import events, numerics
from chat.casemap import casefold
from chat.commands import command
from chat.message import Message
from chat.passwords import DEFAULT_N, DEFAULT_P, DEFAULT_R, SCHEME, verify_password
from chat.router import Audience

if TYPE_CHECKING:
    from chat.labeled import Response
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer

log = Logger()

#: Checked when the name is unknown, so that a wrong name costs as much time
#: as a wrong password and names cannot be told apart.  Its digest is all
#: zero bytes: no password is known to produce it.
_DECOY_HASH = f"{SCHEME}${DEFAULT_N}${DEFAULT_R}${DEFAULT_P}${'A' * 22}==${'A' * 43}="


def is_operator(conn: ChatProtocol) -> bool:
    """Whether *conn* is an IRC operator (user mode ``+o``)."""
    return "o" in conn.modes


def _refuse_non_operator(conn: ChatProtocol) -> bool:
    """Reply ERR_NOPRIVILEGES unless *conn* is an operator; True if refused."""
    if is_operator(conn):
        return False
    conn.reply(
        numerics.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator"
    )
    return True


@command("OPER", min_params=2)
def handle_oper(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``OPER <name> <password>``: become an IRC operator.

    An unknown name and a wrong password get the same answer (464) after the
    same amount of work.  The scrypt check runs on the accounts worker (a
    thread), never on the reactor thread.
    """
    name, password = msg.params[0], msg.params[1]
    operators = server.config.operators
    if not operators:
        conn.reply(numerics.ERR_NOOPERHOST, "No O-lines for your host")
        events.oper_failed(conn, None, "no operators configured")
        return
    encoded = operators.get(name)
    response = conn.responder()
    checking: Deferred[bool] = server.accounts.worker(
        verify_password, password, encoded or _DECOY_HASH
    )

    def checked(matched: bool) -> None:
        known = encoded is not None
        if not (known and matched):
            # An unknown name is not logged: it may be a password typed first.
            why = "wrong password" if known else "unknown name"
            events.oper_failed(conn, name if known else None, why)
        _finish_oper(conn, response, name, known and matched)

    def failed(failure: Failure) -> None:
        log.failure("OPER check for {name!r} failed", failure, name=name)
        response.send(
            Message(
                numerics.ERR_UNKNOWNERROR,
                (conn.nick, "OPER", "Internal error while checking the password"),
                server.name,
            )
        )
        response.finish()

    checking.addCallbacks(checked, failed)


def _finish_oper(
    conn: ChatProtocol, response: Response, name: str, matched: bool
) -> None:
    """Answer an OPER attempt once its password has been checked."""
    server_name = conn.server.name
    if not matched:
        response.send(
            Message(
                numerics.ERR_PASSWDMISMATCH,
                (conn.nick, "Password incorrect"),
                server_name,
            )
        )
        response.finish()
        return
    response.send(
        Message(
            numerics.RPL_YOUREOPER,
            (conn.nick, "You are now an IRC operator"),
            server_name,
        )
    )
    if conn.server.set_user_mode(conn, "o", True):
        mode = Message("MODE", (conn.nick, "+o"), conn.nick)
        response.write(mode.to_bytes(force_trailing=True))
    response.finish()
    events.opered(conn, name)


@command("KILL", min_params=2)
def handle_kill(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``KILL <nick> <reason>``: disconnect a user (operators only)."""
    if _refuse_non_operator(conn):
        return
    target = msg.params[0]
    reason = msg.params[1][: server.config.limits.kick_length] or conn.nick
    if casefold(target) == casefold(server.name):
        conn.reply(numerics.ERR_CANTKILLSERVER, "You cant kill a server!")
        return
    victim = server.find_user(target)
    if victim is None:
        conn.reply(numerics.ERR_NOSUCHNICK, target, "No such nick/channel")
        return
    events.killed(conn, victim, reason)
    victim.send(Message("KILL", (victim.nick, reason), conn.hostmask))
    victim.close(f"Killed ({conn.nick} ({reason}))")


@command("WALLOPS", min_params=1)
def handle_wallops(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``WALLOPS <text>``: a message to every operator and ``+w`` user."""
    if _refuse_non_operator(conn):
        return
    text = msg.params[0]
    if not text:
        conn.reply(numerics.ERR_NEEDMOREPARAMS, "WALLOPS", "Not enough parameters")
        return
    relay = server.relay(Message("WALLOPS", (text,), conn.hostmask), conn)
    server.router.publish(relay, Audience(user_modes="wo"))
    events.wallops(conn)
