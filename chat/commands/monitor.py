"""MONITOR (IRCv3): tell a user when the nicks they watch come and go."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from chat import numerics
from chat.casemap import casefold, valid_nick
from chat.commands import command
from chat.monitor import MONITOR_LIMIT

if TYPE_CHECKING:
    from chat.message import Message
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer

#: Room for the target list of one 730-732 line.
LINE_BUDGET = 400


def _reply_lists(conn: ChatProtocol, numeric: str, entries: Iterable[str]) -> None:
    """Send *entries* comma-separated in as few *numeric* lines as fit."""
    line: list[str] = []
    size = 0
    for entry in entries:
        if line and size + len(entry) + 1 > LINE_BUDGET:
            conn.reply(numeric, ",".join(line))
            line, size = [], 0
        line.append(entry)
        size += len(entry) + 1
    if line:
        conn.reply(numeric, ",".join(line))


def _status(conn: ChatProtocol, server: ChatServer, nicks: Iterable[str]) -> None:
    """730 for those of *nicks* online, 731 for the others."""
    online: list[str] = []
    offline: list[str] = []
    for nick in nicks:
        user = server.find_user(nick)
        if user is not None:
            online.append(user.hostmask)
        else:
            offline.append(nick)
    _reply_lists(conn, numerics.RPL_MONONLINE, online)
    _reply_lists(conn, numerics.RPL_MONOFFLINE, offline)


@command("MONITOR", min_params=1)
def handle_monitor(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    action = msg.params[0]
    monitors = server.monitors
    targets = [t for t in msg.params[1].split(",") if t] if len(msg.params) > 1 else []
    if action in ("+", "-") and len(msg.params) < 2:
        conn.reply(numerics.ERR_NEEDMOREPARAMS, "MONITOR", "Not enough parameters")
    elif action == "+":
        added: list[str] = []
        for index, nick in enumerate(targets):
            if casefold(nick) in monitors.watched_by(conn):
                continue
            if len(monitors.watched_by(conn)) >= MONITOR_LIMIT:
                conn.reply(
                    numerics.ERR_MONLISTFULL,
                    str(MONITOR_LIMIT),
                    ",".join(targets[index:]),
                    "Monitor list is full.",
                )
                break
            if valid_nick(nick, server.config.limits.nick_length):
                monitors.add(conn, nick)
                added.append(nick)
        _status(conn, server, added)
    elif action == "-":
        for nick in targets:
            monitors.remove(conn, nick)
    elif action.upper() == "C":
        monitors.clear(conn)
    elif action.upper() == "L":
        _reply_lists(conn, numerics.RPL_MONLIST, monitors.watched_by(conn).values())
        conn.reply(numerics.RPL_ENDOFMONLIST, "End of MONITOR list")
    elif action.upper() == "S":
        _status(conn, server, list(monitors.watched_by(conn).values()))
    else:
        conn.reply(numerics.ERR_UNKNOWNCOMMAND, "MONITOR", "Unknown MONITOR action")
